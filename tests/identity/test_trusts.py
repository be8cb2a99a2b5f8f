"""OS-TRUST: a trustor delegates some of their roles on a project to a
trustee, who gets tokens scoped to the trust; with the `openstack` CLI for
what it covers (trust create, list, show, delete), raw HTTP for the rest."""
import concurrent.futures
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.identity.test_api import admin_token, issue, make_user, password_auth, unique  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live

TRUSTS = "/identity/v3/OS-TRUST/trusts"


def cli_env(cloud, name, password, project_name):
    return {"OS_AUTH_URL": f"{cloud.url}/identity/v3", "OS_USERNAME": name, "OS_PASSWORD": password,
            "OS_PROJECT_NAME": project_name, "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3", "OS_CLOUD": ""}


class Person:
    def __init__(self, api, made):
        self.id, self.name, self.password, self.project_id, self.project_name = made
        self.api = api

    def token(self, project=True):
        response = issue(self.api, password_auth(self.name, self.password, self.project_name if project else None))
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]


@pytest.fixture
def people(api, make_user, admin_token):
    """(trustor holding `member` and a second role on their project, trustee, a third user, that role's name)."""
    trustor, trustee, stranger = (Person(api, make_user()) for _ in range(3))
    role = api.post("/identity/v3/roles", token=admin_token, json={"role": {"name": unique("delegable")}}).json()["role"]
    assert api.put(f"/identity/v3/projects/{trustor.project_id}/users/{trustor.id}/roles/{role['id']}",
                   token=admin_token).status_code == 204
    return trustor, trustee, stranger, role


def create_trust(api, trustor, trustee, roles, token=None, **extra):
    body = {"trustor_user_id": trustor.id, "trustee_user_id": trustee.id, "project_id": trustor.project_id,
            "impersonation": False, "roles": [{"name": name} for name in roles], **extra}
    return api.post(TRUSTS, token=token or trustor.token(), json={"trust": body})


def trust_token(api, trustee, trust_id, token=None):
    if token:
        identity = {"methods": ["token"], "token": {"id": token}}
    else:
        identity = {"methods": ["password"], "password": {"user": {
            "name": trustee.name, "domain": {"name": "Default"}, "password": trustee.password}}}
    return issue(api, {"auth": {"identity": identity, "scope": {"OS-TRUST:trust": {"id": trust_id}}}})


def validate(api, token, by=None):
    """GET /v3/auth/tokens of `token`, asked with the token `by` (itself by default)."""
    return api.get("/identity/v3/auth/tokens", token=by or token, headers={"X-Subject-Token": token})


def test_cli_creates_lists_shows_and_deletes_a_trust(api, cloud, people):
    trustor, trustee, stranger, role = people
    env = cli_env(cloud, trustor.name, trustor.password, trustor.project_name)
    expires = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(microsecond=0, tzinfo=None)
    created = cloud.openstack("trust", "create", "--project", trustor.project_id, "--role", role["name"],
                              "--impersonate", "--expiration", expires.isoformat(), trustor.id, trustee.id,
                              "-f", "json", cloud="", env=env)
    assert created["trustor_user_id"] == trustor.id and created["trustee_user_id"] == trustee.id
    assert created["project_id"] == trustor.project_id and created["is_impersonation"] is True
    assert created["expires_at"].startswith(expires.isoformat())
    trust_id = created["id"]

    listed = cloud.openstack("trust", "list", "-f", "json", cloud="", env=env)
    assert [row["ID"] for row in listed] == [trust_id]
    shown = cloud.openstack("trust", "show", trust_id, "-f", "json", cloud="", env=env)
    assert shown["id"] == trust_id and role["name"] in str(shown["roles"])
    # The trustee sees it too; a stranger does not, not even through the CLI.
    trustee_env = cli_env(cloud, trustee.name, trustee.password, trustee.project_name)
    assert cloud.openstack("trust", "show", trust_id, "-f", "json", cloud="", env=trustee_env)["id"] == trust_id
    stranger_env = cli_env(cloud, stranger.name, stranger.password, stranger.project_name)
    assert cloud.openstack("trust", "list", "-f", "json", cloud="", env=stranger_env) == []
    cloud.openstack("trust", "show", trust_id, cloud="", env=stranger_env, expect_fail=True)

    cloud.openstack("trust", "delete", trust_id, cloud="", env=env)
    assert api.get(f"{TRUSTS}/{trust_id}", token=trustor.token()).status_code == 404


def test_the_cli_gets_a_trust_scoped_token_with_os_trust_id(api, cloud, people):
    trustor, trustee, _, _ = people
    trust_id = create_trust(api, trustor, trustee, ["member"]).json()["trust"]["id"]
    env = cli_env(cloud, trustee.name, trustee.password, "")
    del env["OS_PROJECT_NAME"], env["OS_PROJECT_DOMAIN_NAME"]
    env["OS_TRUST_ID"] = trust_id
    issued = cloud.openstack("token", "issue", "-f", "json", cloud="", env=env)
    assert issued["project_id"] == trustor.project_id and issued["user_id"] == trustee.id
    body = validate(api, issued["id"]).json()["token"]
    assert body["OS-TRUST:trust"]["id"] == trust_id and [r["name"] for r in body["roles"]] == ["member"]
    # The trust's token works in the trustor's project with the real clients.
    network = cloud.openstack("network", "create", unique("trusted"), "-f", "json", cloud="", env=env)
    assert network["project_id"] == trustor.project_id
    cloud.openstack("network", "delete", network["id"], cloud="", env=env)


def test_trust_body_roles_and_role_checks_are_keystones(api, people):
    trustor, trustee, _, role = people
    created = create_trust(api, trustor, trustee, [role["name"]], remaining_uses=5)
    assert created.status_code == 201, created.text
    trust = created.json()["trust"]
    assert trust["remaining_uses"] == 5 and trust["expires_at"] is None and trust["impersonation"] is False
    assert trust["allow_redelegation"] is False and trust["redelegation_count"] == 0
    assert [r["id"] for r in trust["roles"]] == [role["id"]]
    assert trust["links"]["self"].endswith(f"/v3/OS-TRUST/trusts/{trust['id']}")
    token = trustor.token()
    roles = api.get(f"{TRUSTS}/{trust['id']}/roles", token=token).json()["roles"]
    assert [(r["id"], r["name"]) for r in roles] == [(role["id"], role["name"])]
    assert roles[0]["links"]["self"].endswith(f"/v3/roles/{role['id']}")
    assert api.get(f"{TRUSTS}/{trust['id']}/roles/{role['id']}", token=token).json()["role"]["name"] == role["name"]
    assert api.head(f"{TRUSTS}/{trust['id']}/roles/{role['id']}", token=token).status_code == 200
    member_id = api.get("/identity/v3/roles?name=member", token=token).json()["roles"][0]["id"]
    assert api.get(f"{TRUSTS}/{trust['id']}/roles/{member_id}", token=token).status_code == 404
    assert api.head(f"{TRUSTS}/{trust['id']}/roles/{member_id}", token=token).status_code == 404
    # Filters: one's own as trustor or trustee; another's is Keystone's 403.
    assert [t["id"] for t in api.get(f"{TRUSTS}?trustor_user_id={trustor.id}", token=token).json()["trusts"]] \
        == [trust["id"]]
    assert [t["id"] for t in api.get(f"{TRUSTS}?trustee_user_id={trustee.id}",
                                     token=trustee.token()).json()["trusts"]] == [trust["id"]]
    assert api.get(f"{TRUSTS}?trustor_user_id={trustor.id}", token=trustee.token()).status_code == 403


@pytest.mark.parametrize("change, status, field", [
    ({"impersonation": "yes"}, 400, "impersonation"),
    ({"impersonation": None}, 400, "impersonation"),
    ({"expires_at": "bad.123Z"}, 400, "expires_at"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, 400, "expires_at"),
    ({"remaining_uses": 0}, 400, "remaining_uses"),
    ({"remaining_uses": "3"}, 400, "remaining_uses"),
    ({"allow_redelegation": True, "remaining_uses": 2}, 400, "remaining_uses"),
    ({"roles": []}, 400, "roles"),
    ({"roles": [{"name": "no-such-role"}]}, 404, "no-such-role"),
    ({"trustee_user_id": "missing"}, 404, "missing"),
    ({"project_id": "missing"}, 404, "missing"),
    ({"surprise": 1}, 400, "surprise"),
    ({"allow_redelegation": True, "redelegation_count": 4}, 403, "redelegation"),
])
def test_bad_trust_bodies_are_refused_naming_the_field(api, people, change, status, field):
    trustor, trustee, _, role = people
    body = {"trustor_user_id": trustor.id, "trustee_user_id": trustee.id, "project_id": trustor.project_id,
            "impersonation": False, "roles": [{"name": role["name"]}], **change}
    response = api.post(TRUSTS, token=trustor.token(), json={"trust": body})
    assert response.status_code == status, response.text
    assert field in response.json()["error"]["message"]
    assert api.get(TRUSTS, token=trustor.token()).json()["trusts"] == []


def test_a_trust_delegates_only_the_trustors_own_roles_and_only_as_themself(api, people, admin_token):
    trustor, trustee, stranger, role = people
    # Roles beyond the trustor's: admin on their project, a role held elsewhere.
    assert create_trust(api, trustor, trustee, ["admin"]).status_code == 403
    # A trust in someone else's name, even by a cloud admin.
    forged = create_trust(api, trustor, trustee, [role["name"]], token=stranger.token())
    assert forged.status_code == 403
    assert create_trust(api, trustor, trustee, [role["name"]], token=admin_token).status_code == 403
    # A project the trustor holds nothing on.
    other_project = create_trust(api, trustor, trustee, ["member"], token=trustor.token(),
                                 project_id=stranger.project_id)
    assert other_project.status_code == 403
    assert api.get(f"{TRUSTS}?trustor_user_id={trustor.id}", token=admin_token).json()["trusts"] == []


def test_another_users_trust_is_a_404_everywhere(api, people):
    trustor, trustee, stranger, role = people
    trust_id = create_trust(api, trustor, trustee, [role["name"]]).json()["trust"]["id"]
    token = stranger.token()
    for path in (f"{TRUSTS}/{trust_id}", f"{TRUSTS}/{trust_id}/roles", f"{TRUSTS}/{trust_id}/roles/{role['id']}"):
        assert api.get(path, token=token).status_code == 404, path
    assert api.delete(f"{TRUSTS}/{trust_id}", token=token).status_code == 404
    assert api.delete(f"{TRUSTS}/{trust_id}", token=trustee.token()).status_code == 403  # the trustor's to delete
    assert api.get(f"{TRUSTS}/{trust_id}", token=trustor.token()).status_code == 200
    # Scoping to a trust one is not the trustee of.
    refused = trust_token(api, stranger, trust_id)
    assert refused.status_code == 403 and "X-Subject-Token" not in refused.headers
    assert trust_token(api, trustor, trust_id).status_code == 403


@pytest.mark.parametrize("impersonation", [False, True])
def test_a_trust_scoped_token_carries_the_trust_and_only_its_roles(api, people, impersonation):
    trustor, trustee, _, role = people
    trust_id = create_trust(api, trustor, trustee, [role["name"]],
                            impersonation=impersonation).json()["trust"]["id"]
    issued = trust_token(api, trustee, trust_id)
    assert issued.status_code == 201, issued.text
    body = issued.json()["token"]
    assert body["OS-TRUST:trust"] == {"id": trust_id, "impersonation": impersonation,
                                      "trustor_user": {"id": trustor.id}, "trustee_user": {"id": trustee.id}}
    assert body["user"]["id"] == (trustor.id if impersonation else trustee.id)
    assert body["project"]["id"] == trustor.project_id
    assert [r["name"] for r in body["roles"]] == [role["name"]]  # not the trustor's `member`
    assert body["catalog"]
    token = issued.headers["X-Subject-Token"]
    assert validate(api, token).json()["token"]["OS-TRUST:trust"]["id"] == trust_id
    # Without `member` the token cannot write the project's resources.
    assert api.post("/network/v2.0/networks", token=token, json={"network": {"name": "x"}}).status_code == 403
    # It cannot be rescoped, nor make an application credential.
    assert issue(api, {"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
                                "scope": {"project": {"id": trustee.project_id}}}}).status_code == 403
    acting = body["user"]["id"]
    assert api.post(f"/identity/v3/users/{acting}/application_credentials", token=token,
                    json={"application_credential": {"name": "from-trust"}}).status_code == 403


def test_a_trust_with_member_lets_the_trustee_work_in_the_trustors_project(api, people):
    trustor, trustee, _, _ = people
    trust_id = create_trust(api, trustor, trustee, ["member"]).json()["trust"]["id"]
    token = trust_token(api, trustee, trust_id, token=trustee.token(project=False)).headers["X-Subject-Token"]
    made = api.post("/network/v2.0/networks", token=token, json={"network": {"name": unique("net")}})
    assert made.status_code == 201, made.text
    assert made.json()["network"]["project_id"] == trustor.project_id
    assert api.delete(f"/network/v2.0/networks/{made.json()['network']['id']}", token=token).status_code == 204


def test_remaining_uses_are_spent_once_each_even_at_once(api, people):
    trustor, trustee, _, role = people
    trust_id = create_trust(api, trustor, trustee, [role["name"]], remaining_uses=3).json()["trust"]["id"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda _: trust_token(api, trustee, trust_id).status_code, range(8)))
    assert statuses == [201, 201, 201] + [403] * 5
    assert api.get(f"{TRUSTS}/{trust_id}", token=trustor.token()).json()["trust"]["remaining_uses"] == 0


def test_an_expired_trust_gives_no_token_and_its_tokens_end_with_it(api, people):
    trustor, trustee, _, role = people
    soon = (datetime.now(timezone.utc) + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    trust = create_trust(api, trustor, trustee, [role["name"]], expires_at=soon).json()["trust"]
    issued = trust_token(api, trustee, trust["id"])
    assert issued.status_code == 201
    assert issued.json()["token"]["expires_at"][:19] == trust["expires_at"][:19]
    time.sleep(3.5)
    token = issued.headers["X-Subject-Token"]
    assert validate(api, token, by=trustee.token()).status_code == 404
    assert api.get("/compute/v2.1/flavors", token=token).status_code == 401
    assert trust_token(api, trustee, trust["id"]).status_code == 404
    assert api.get(f"{TRUSTS}/{trust['id']}", token=trustor.token()).status_code == 404


def test_deleting_a_trust_revokes_its_tokens(api, people):
    trustor, trustee, _, role = people
    trust_id = create_trust(api, trustor, trustee, [role["name"]]).json()["trust"]["id"]
    token = trust_token(api, trustee, trust_id).headers["X-Subject-Token"]
    trustee_own = trustee.token()
    assert api.delete(f"{TRUSTS}/{trust_id}", token=trustor.token()).status_code == 204
    assert validate(api, token, by=trustee_own).status_code == 404
    assert api.get("/compute/v2.1/flavors", token=token).status_code == 401
    assert trust_token(api, trustee, trust_id).status_code == 404
    assert validate(api, trustee_own).status_code == 200  # the trustee's own token is untouched


def test_the_trustor_losing_the_role_revokes_and_refuses_the_trust(api, people, admin_token):
    trustor, trustee, _, role = people
    trust_id = create_trust(api, trustor, trustee, [role["name"]], impersonation=False).json()["trust"]["id"]
    token = trust_token(api, trustee, trust_id).headers["X-Subject-Token"]
    assert api.delete(f"/identity/v3/projects/{trustor.project_id}/users/{trustor.id}/roles/{role['id']}",
                      token=admin_token).status_code == 204
    assert validate(api, token, by=trustee.token()).status_code == 404
    refused = trust_token(api, trustee, trust_id)
    assert refused.status_code == 403, refused.text
    # Disabling the trustor refuses it too.
    assert api.put(f"/identity/v3/projects/{trustor.project_id}/users/{trustor.id}/roles/{role['id']}",
                   token=admin_token).status_code == 204
    assert trust_token(api, trustee, trust_id).status_code == 201
    assert api.patch(f"/identity/v3/users/{trustor.id}", token=admin_token,
                     json={"user": {"enabled": False}}).status_code == 200
    assert trust_token(api, trustee, trust_id).status_code == 403


def test_a_trust_token_makes_another_trust_only_by_redelegation(api, people):
    trustor, trustee, stranger, role = people
    plain = create_trust(api, trustor, trustee, [role["name"], "member"]).json()["trust"]["id"]
    token = trust_token(api, trustee, plain).headers["X-Subject-Token"]
    onward = {"trustor_user_id": trustee.id, "trustee_user_id": stranger.id, "project_id": trustor.project_id,
              "impersonation": False, "roles": [{"name": role["name"]}]}
    refused = api.post(TRUSTS, token=token, json={"trust": onward})
    assert refused.status_code == 403 and "redelegation" in refused.json()["error"]["message"]

    chain = create_trust(api, trustor, trustee, [role["name"]], allow_redelegation=True,
                         redelegation_count=1).json()["trust"]
    assert chain["redelegation_count"] == 1
    token = trust_token(api, trustee, chain["id"]).headers["X-Subject-Token"]
    # Not beyond the trust: a role it does not delegate, impersonation, depth.
    assert api.post(TRUSTS, token=token, json={"trust": {**onward, "roles": [{"name": "member"}]}}).status_code == 403
    assert api.post(TRUSTS, token=token, json={"trust": {**onward, "impersonation": True}}).status_code == 403
    assert api.post(TRUSTS, token=token, json={"trust": {**onward, "allow_redelegation": True,
                                                         "redelegation_count": 1}}).status_code == 403
    second = api.post(TRUSTS, token=token, json={"trust": onward})
    assert second.status_code == 201, second.text
    second = second.json()["trust"]
    assert second["redelegated_trust_id"] == chain["id"] and second["redelegation_count"] == 0
    stranger_token = trust_token(api, stranger, second["id"])
    assert stranger_token.status_code == 201, stranger_token.text
    assert [r["name"] for r in stranger_token.json()["token"]["roles"]] == [role["name"]]
    # Deleting the first trust takes the redelegated one and its tokens with it.
    assert api.delete(f"{TRUSTS}/{chain['id']}", token=trustor.token()).status_code == 204
    assert validate(api, stranger_token.headers["X-Subject-Token"], by=stranger.token()).status_code == 404
    assert trust_token(api, stranger, second["id"]).status_code == 404


def test_admin_lists_every_trust_and_no_request_is_a_500(api, people, admin_token):
    trustor, trustee, _, role = people
    trust_id = create_trust(api, trustor, trustee, [role["name"]]).json()["trust"]["id"]
    assert trust_id in [t["id"] for t in api.get(TRUSTS, token=admin_token).json()["trusts"]]
    token = trustor.token()
    for body in (None, [], {"trust": []}, {"trust": {"roles": "x"}}):
        assert api.post(TRUSTS, token=token, json=body).status_code == 400
    assert api.get(f"{TRUSTS}/{uuid.uuid4().hex}", token=token).status_code == 404
    assert trust_token(api, trustee, 5).status_code == 400
    assert trust_token(api, trustee, uuid.uuid4().hex).status_code == 404
