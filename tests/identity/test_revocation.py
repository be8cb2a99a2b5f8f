"""Which tokens a change revokes: those that carried the permission it took
away, and no others. Against the live server, through the API, the CLI and
the Django admin."""
import uuid

import pytest
from django.db import IntegrityError, transaction

from identity import tokens
from identity.models import RevocationEvent

UNAUTHORIZED = "The request you have made requires authentication."


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Users:
    """Makes users with roles on fresh projects, and their tokens."""

    def __init__(self, api, admin_token):
        self.api, self.admin_token = api, admin_token
        self.roles = {role["name"]: role["id"] for role in
                      api.get("/identity/v3/roles", token=admin_token).json()["roles"]}

    def project(self, **fields):
        response = self.api.post("/identity/v3/projects", token=self.admin_token,
                                 json={"project": {"name": unique("proj"), **fields}})
        assert response.status_code == 201, response.text
        return response.json()["project"]

    def user(self, **fields):
        password = uuid.uuid4().hex
        response = self.api.post("/identity/v3/users", token=self.admin_token,
                                 json={"user": {"name": unique("user"), "password": password, **fields}})
        assert response.status_code == 201, response.text
        user = response.json()["user"]
        user["password"] = password
        return user

    def grant(self, target, actor, role="member", target_kind="projects", actor_kind="users"):
        path = f"/identity/v3/{target_kind}/{target['id']}/{actor_kind}/{actor['id']}/roles/{self.roles[role]}"
        assert self.api.put(path, token=self.admin_token).status_code == 204
        return path

    def token(self, user, project=None, domain=None):
        body = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"id": user["id"], "password": user["password"]}}}}}
        if project is not None:
            body["auth"]["scope"] = {"project": {"id": project["id"]}}
        elif domain is not None:
            body["auth"]["scope"] = {"domain": {"id": domain["id"]}}
        response = self.api.post("/identity/v3/auth/tokens", json=body)
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]

    def member(self, role="member", **project_fields):
        """(user, project, token) of a new user with `role` on a new project."""
        project, user = self.project(**project_fields), self.user()
        self.grant(project, user, role)
        return user, project, self.token(user, project)

    def works(self, token):
        response = self.api.get("/identity/v3/auth/tokens", token=token, headers={"X-Subject-Token": token})
        assert response.status_code in (200, 401), response.text
        return response.status_code == 200


@pytest.fixture
def users(api, cloud):
    return Users(api, cloud.token("stratus"))


@pytest.fixture
def bystanders(cloud, users):
    """Tokens no change in a test touches: the admin's, demo's, and a user's
    with a role on a project of their own."""
    _, _, token = users.member()
    return {"admin": cloud.token("stratus"), "demo": cloud.token("stratus-demo"), "user": token}


def assert_still_valid(users, bystanders):
    for name, token in bystanders.items():
        assert users.works(token), f"{name}'s token was revoked by an unrelated change"


# ---------------------------------------------------------------- item 1: deletes revoke only their own tokens

@pytest.mark.live
def test_project_delete_with_the_cli_revokes_only_that_projects_tokens(cloud, users, bystanders):
    name = unique("proj")
    cloud.openstack("project", "create", name, "-f", "json")
    user = users.user()
    project = {"id": cloud.openstack("project", "show", name, "-f", "json")["id"]}
    users.grant(project, user)
    on_project = users.token(user, project)
    unscoped = users.token(user)

    cloud.openstack("project", "delete", name)

    assert not users.works(on_project)
    assert users.works(unscoped)
    assert_still_valid(users, bystanders)
    # The admin's next request after the delete works (the CLI's own, freshly issued token too).
    assert cloud.openstack("project", "list", "-f", "json")


@pytest.mark.live
def test_user_delete_revokes_only_that_users_tokens(cloud, api, users, bystanders):
    user, _, token = users.member()
    assert api.delete(f"/identity/v3/users/{user['id']}", token=users.admin_token).status_code == 204
    assert not users.works(token)
    assert_still_valid(users, bystanders)


@pytest.mark.live
def test_application_credential_delete_revokes_only_its_tokens(api, users, bystanders):
    user, _, token = users.member()
    created = api.post(f"/identity/v3/users/{user['id']}/application_credentials", token=token,
                       json={"application_credential": {"name": "ci"}}).json()["application_credential"]
    issued = api.post("/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": created["id"], "secret": created["secret"]}}}})
    assert issued.status_code == 201
    credential_token = issued.headers["X-Subject-Token"]

    assert api.delete(f"/identity/v3/users/{user['id']}/application_credentials/{created['id']}",
                      token=token).status_code == 204

    assert not users.works(credential_token)
    assert users.works(token)  # the user's own token did not come from the credential
    assert_still_valid(users, bystanders)


@pytest.mark.django_db
def test_a_revocation_that_names_nothing_cannot_be_written():
    for empty in ({}, {"project_id": None}, {"user_id": None, "domain_id": ""}):
        with pytest.raises(ValueError):
            tokens.revoke(**empty)
    with pytest.raises(IntegrityError), transaction.atomic():
        RevocationEvent.objects.create(issued_before=RevocationEvent._meta.get_field("revoked_at").default())
    assert not RevocationEvent.objects.filter(user_id=None, project_id=None, domain_id=None, audit_id=None,
                                              application_credential_id=None).exists()
