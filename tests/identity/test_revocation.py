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


# ---------------------------------------------------------------- item 3: every loss of a permission, wherever made

@pytest.mark.live
def test_disabling_a_domain_revokes_its_users_and_projects_tokens(api, users, bystanders):
    domain = api.post("/identity/v3/domains", token=users.admin_token,
                      json={"domain": {"name": unique("dom")}}).json()["domain"]
    # A user of the domain on a project of the domain, on the domain itself, and on a project elsewhere;
    # and an outsider on a project of the domain.
    insider, project = users.user(domain_id=domain["id"]), users.project(domain_id=domain["id"])
    users.grant(project, insider)
    users.grant(domain, insider, "admin", target_kind="domains")
    elsewhere = users.project()
    users.grant(elsewhere, insider)
    outsider = users.user()
    users.grant(project, outsider)
    revoked = [users.token(insider, project), users.token(insider, domain=domain),
               users.token(insider, elsewhere), users.token(outsider, project)]
    outsiders_own = users.project()
    users.grant(outsiders_own, outsider)
    kept = users.token(outsider, outsiders_own)

    assert api.patch(f"/identity/v3/domains/{domain['id']}", token=users.admin_token,
                     json={"domain": {"enabled": False}}).status_code == 200

    assert [users.works(token) for token in revoked] == [False] * 4
    assert users.works(kept)
    assert_still_valid(users, bystanders)


@pytest.mark.live
def test_deleting_a_group_revokes_what_it_granted_its_members(cloud, users, bystanders):
    member, other_project, own_token = users.member()
    project = users.project()
    group = cloud.openstack("group", "create", unique("grp"), "-f", "json")
    cloud.openstack("group", "add", "user", group["id"], member["id"])
    users.grant(project, group, "reader", actor_kind="groups")
    through_group = users.token(member, project)

    cloud.openstack("group", "delete", group["id"])

    assert not users.works(through_group)
    assert users.works(own_token)  # its own role elsewhere is untouched
    assert_still_valid(users, bystanders)


@pytest.mark.live
def test_leaving_a_group_revokes_its_roles_with_the_cli(cloud, users, bystanders):
    member, _, own_token = users.member()
    project = users.project()
    group = cloud.openstack("group", "create", unique("grp"), "-f", "json")
    cloud.openstack("group", "add", "user", group["id"], member["id"])
    users.grant(project, group, "reader", actor_kind="groups")
    through_group = users.token(member, project)

    cloud.openstack("group", "remove", "user", group["id"], member["id"])

    assert not users.works(through_group)
    assert_still_valid(users, bystanders)


@pytest.mark.live
def test_deleting_a_role_revokes_its_holders_through_groups_too(cloud, users, bystanders):
    role = cloud.openstack("role", "create", unique("role"), "-f", "json")
    users.roles[role["name"]] = role["id"]
    direct, through_group, unrelated = users.user(), users.user(), users.user()
    project = users.project()
    group = cloud.openstack("group", "create", unique("grp"), "-f", "json")
    cloud.openstack("group", "add", "user", group["id"], through_group["id"])
    users.grant(project, direct, role["name"])
    users.grant(project, group, role["name"], actor_kind="groups")
    users.grant(project, unrelated, "member")
    revoked = [users.token(direct, project), users.token(through_group, project)]
    kept = users.token(unrelated, project)

    cloud.openstack("role", "delete", role["id"])

    assert [users.works(token) for token in revoked] == [False, False]
    assert users.works(kept)
    assert_still_valid(users, bystanders)


@pytest.mark.live
def test_removing_a_group_grant_revokes_only_that_project(cloud, users, bystanders):
    member, own_project, own_token = users.member()
    project = users.project()
    group = cloud.openstack("group", "create", unique("grp"), "-f", "json")
    cloud.openstack("group", "add", "user", group["id"], member["id"])
    cloud.openstack("role", "add", "--project", project["id"], "--group", group["id"], "reader")
    through_group = users.token(member, project)

    cloud.openstack("role", "remove", "--project", project["id"], "--group", group["id"], "reader")

    assert not users.works(through_group)
    assert users.works(own_token)
    assert_still_valid(users, bystanders)


# Through the Django admin: the operator's change forms revoke as the API does.

@pytest.fixture
def operator(committed_db):
    from tests.identity.admin_forms import operator_client

    return operator_client()


@pytest.mark.live
def test_admin_editing_a_role_assignment_revokes_what_it_granted(users, bystanders, operator):
    from identity.models import RoleAssignment
    from tests.identity.admin_forms import post_change_form

    user, project, token = users.member()
    other = users.project()
    assignment = RoleAssignment.objects.get(user_id=user["id"], project_id=project["id"])
    response = post_change_form(operator, f"/admin/identity/roleassignment/{assignment.id}/change/",
                                {"project": other["id"]})
    assert response.status_code == 302, response.content[-2000:]
    assert RoleAssignment.objects.get(id=assignment.id).project_id == other["id"]

    assert not users.works(token)
    assert users.works(users.token(user, other))
    assert_still_valid(users, bystanders)


@pytest.mark.live
def test_admin_disabling_a_user_revokes_their_tokens(users, bystanders, operator):
    from tests.identity.admin_forms import post_change_form

    user, _, token = users.member()
    response = post_change_form(operator, f"/admin/identity/user/{user['id']}/change/", unchecked=["enabled"])
    assert response.status_code == 302, response.content[-2000:]
    assert not users.works(token)
    assert_still_valid(users, bystanders)


@pytest.mark.live
def test_admin_disabling_a_project_revokes_its_tokens(users, bystanders, operator):
    from tests.identity.admin_forms import post_change_form

    user, project, token = users.member()
    elsewhere = users.project()
    users.grant(elsewhere, user)
    kept = users.token(user, elsewhere)
    response = post_change_form(operator, f"/admin/identity/project/{project['id']}/change/", unchecked=["enabled"])
    assert response.status_code == 302, response.content[-2000:]
    assert not users.works(token)
    assert users.works(kept)
    assert_still_valid(users, bystanders)


@pytest.mark.live
def test_changes_from_a_shell_revoke_too(users, bystanders, committed_db):
    """What `manage.py shell` does goes through the same rule."""
    from identity.models import Group, User

    member, project, _ = users.member()
    group = Group.objects.create(name=unique("grp"), domain_id="default")
    group.users.add(User.objects.get(id=member["id"]))
    other = users.project()
    users.grant(other, {"id": group.id}, "reader", actor_kind="groups")
    through_group = users.token(member, other)
    own = users.token(member, project)

    User.objects.get(id=member["id"]).groups.clear()

    assert not users.works(through_group)
    assert users.works(own)
    assert_still_valid(users, bystanders)


@pytest.mark.live
def test_admin_removing_a_group_member_revokes_only_that_member(users, bystanders, operator):
    from identity.models import Group, User
    from tests.identity.admin_forms import post_change_form

    leaving, staying, project = users.user(), users.user(), users.project()
    group = Group.objects.create(name=unique("grp"), domain_id="default")
    group.users.add(*User.objects.filter(id__in=[leaving["id"], staying["id"]]))
    users.grant(project, {"id": group.id}, "reader", actor_kind="groups")
    leaving_token, staying_token = users.token(leaving, project), users.token(staying, project)

    response = post_change_form(operator, f"/admin/identity/group/{group.id}/change/", {"users": [staying["id"]]})
    assert response.status_code == 302, response.content[-2000:]
    assert list(group.users.values_list("id", flat=True)) == [staying["id"]]

    assert not users.works(leaving_token)
    assert users.works(staying_token)
    assert_still_valid(users, bystanders)


@pytest.mark.live
def test_taking_a_role_from_an_application_credential_revokes_its_tokens(api, users, bystanders, committed_db):
    from identity.models import ApplicationCredential, Role

    user, project, token = users.member()
    created = api.post(f"/identity/v3/users/{user['id']}/application_credentials", token=token,
                       json={"application_credential": {"name": "ci"}}).json()["application_credential"]
    issued = api.post("/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": created["id"], "secret": created["secret"]}}}})
    credential_token = issued.headers["X-Subject-Token"]

    ApplicationCredential.objects.get(id=created["id"]).roles.remove(Role.objects.get(name="member", domain=None))

    assert not users.works(credential_token)
    assert users.works(token)
    assert_still_valid(users, bystanders)


@pytest.mark.live
def test_a_queryset_update_that_takes_a_permission_away_revokes_too(users, bystanders, committed_db):
    """QuerySet.update() sends no signals: on the columns the rule tracks it
    saves row by row, so a bulk change from a shell or a script revokes."""
    from identity.models import Project, RoleAssignment, User

    disabled, _, disabled_token = users.member()
    moved_out, project, moved_token = users.member()
    kept, kept_project, kept_token = users.member()

    assert User.objects.filter(id=disabled["id"]).update(enabled=False) == 1
    RoleAssignment.objects.filter(user_id=moved_out["id"]).update(project_id=kept_project["id"])
    Project.objects.filter(id=kept_project["id"]).update(description="only words")  # takes nothing away

    assert not users.works(disabled_token)
    assert not users.works(moved_token)
    assert users.works(kept_token)
    assert_still_valid(users, bystanders)
