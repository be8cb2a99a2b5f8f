"""Identity v3 on the wire: Keystone's bodies, status codes and errors,
against the live server."""
import json
import uuid

import pytest

pytestmark = pytest.mark.live

UNAUTHORIZED = "The request you have made requires authentication."


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def password_auth(user, password, project=None, domain="Default"):
    body = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"name": domain}, "password": password}}}}}
    if project:
        body["auth"]["scope"] = {"project": {"name": project, "domain": {"name": domain}}}
    return body


@pytest.fixture
def admin_token(cloud):
    return cloud.token("stratus")


@pytest.fixture
def make_user(api, admin_token):
    """A user with `role` on a new project; returns (user_id, name, password, project_id, project_name)."""

    def make(role="member"):
        project_name, name, password = unique("proj"), unique("user"), uuid.uuid4().hex
        project = api.post("/identity/v3/projects", token=admin_token,
                           json={"project": {"name": project_name}}).json()["project"]
        user = api.post("/identity/v3/users", token=admin_token,
                        json={"user": {"name": name, "password": password}}).json()["user"]
        role_id = api.get(f"/identity/v3/roles?name={role}", token=admin_token).json()["roles"][0]["id"]
        assert api.put(f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{role_id}",
                       token=admin_token).status_code == 204
        return user["id"], name, password, project["id"], project_name

    return make


def issue(api, body):
    return api.post("/identity/v3/auth/tokens", json=body)


def test_version_discovery(api):
    root = api.get("/identity/")
    assert root.status_code == 300
    version = root.json()["versions"]["values"][0]
    assert version["id"].startswith("v3") and version["status"] == "stable"
    assert version["links"][0]["href"].endswith("/identity/v3/")
    assert api.get("/identity/v3").json()["version"]["id"] == version["id"]


def test_wrong_password_and_unknown_user_get_the_same_401(api, make_user):
    _, name, _, _, _ = make_user()
    wrong = issue(api, password_auth(name, "wrong"))
    unknown = issue(api, password_auth(unique("nobody"), "wrong"))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": {"code": 401, "message": UNAUTHORIZED, "title": "Unauthorized"}}
    assert "X-Subject-Token" not in wrong.headers


def test_token_body_and_validation(api, make_user):
    user_id, name, password, project_id, project_name = make_user()
    response = issue(api, password_auth(name, password, project_name))
    assert response.status_code == 201
    token = response.headers["X-Subject-Token"]
    body = response.json()["token"]
    assert body["user"]["id"] == user_id and body["project"]["id"] == project_id
    assert [role["name"] for role in body["roles"]] == ["member"]
    assert body["methods"] == ["password"] and body["audit_ids"]
    assert {entry["type"] for entry in body["catalog"]} >= {"identity", "compute"}

    validated = api.get("/identity/v3/auth/tokens", token=token, headers={"X-Subject-Token": token})
    assert validated.status_code == 200
    assert validated.json()["token"]["project"]["id"] == project_id
    assert api.head("/identity/v3/auth/tokens", token=token, headers={"X-Subject-Token": token}).status_code == 200


def test_rescoping_with_a_token_keeps_its_expiry(api, make_user):
    _, name, password, project_id, _ = make_user()
    unscoped = issue(api, {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": name, "domain": {"id": "default"}, "password": password}}}, "scope": "unscoped"}})
    assert unscoped.status_code == 201 and "project" not in unscoped.json()["token"]
    first = unscoped.json()["token"]
    rescoped = issue(api, {"auth": {"identity": {"methods": ["token"], "token": {
        "id": unscoped.headers["X-Subject-Token"]}}, "scope": {"project": {"id": project_id}}}})
    assert rescoped.status_code == 201
    body = rescoped.json()["token"]
    assert body["project"]["id"] == project_id
    assert body["expires_at"] == first["expires_at"]
    assert body["audit_ids"][1] == first["audit_ids"][0]


def test_scope_to_a_project_without_a_role_is_refused(api, make_user):
    _, name, password, _, _ = make_user()
    response = issue(api, password_auth(name, password, "admin"))
    assert response.status_code == 401


@pytest.mark.parametrize("body, field", [
    ({}, "auth"),
    ({"auth": {}}, "auth.identity"),
    ({"auth": {"identity": {"methods": "password"}}}, "auth.identity.methods"),
    ({"auth": {"identity": {"methods": ["password"]}}}, "auth.identity.password"),
    ({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "x", "password": "y"}}}}},
     "auth.identity.password.user.domain"),
    ({"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": "admin", "domain": {"id": "default"}, "password": 5}}}}},
     "auth.identity.password.user.password"),
])
def test_malformed_auth_bodies_name_the_field(api, body, field):
    response = issue(api, body)
    assert response.status_code == 400
    assert f"'{field}'" in response.json()["error"]["message"]


def test_malformed_json_is_a_400(api, admin_token):
    for path in ("/identity/v3/auth/tokens", "/identity/v3/projects"):
        response = api.post(path, token=admin_token, data="{not json",
                            headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == 400


@pytest.mark.parametrize("body, field", [
    ({"project": {}}, "name"),
    ({"project": {"name": "x" * 300}}, "name"),
    ({"project": {"name": "ok", "enabled": "maybe"}}, "enabled"),
    ({"project": "flat"}, "project"),
    ({"name": "no envelope"}, "project"),
])
def test_bad_project_bodies_name_the_field_and_create_nothing(api, admin_token, body, field):
    before = len(api.get("/identity/v3/projects", token=admin_token).json()["projects"])
    response = api.post("/identity/v3/projects", token=admin_token, json=body)
    assert response.status_code == 400
    assert f"'{field}'" in response.json()["error"]["message"]
    assert len(api.get("/identity/v3/projects", token=admin_token).json()["projects"]) == before


@pytest.mark.parametrize("collection, member", [("projects", "project"), ("users", "user"),
                                                ("roles", "role"), ("groups", "group"), ("domains", "domain")])
def test_duplicate_names_are_a_409(api, admin_token, collection, member):
    name = unique(member)
    first = api.post(f"/identity/v3/{collection}", token=admin_token, json={member: {"name": name}})
    assert first.status_code == 201
    second = api.post(f"/identity/v3/{collection}", token=admin_token, json={member: {"name": name}})
    assert second.status_code == 409
    assert name in second.json()["error"]["message"]


def test_tampered_and_garbage_tokens_are_a_401(api, admin_token):
    flipped = admin_token[:-5] + ("A" if admin_token[-5] != "A" else "B") + admin_token[-4:]
    for token in (flipped, "garbage", "x" * 400):
        response = api.get("/identity/v3/auth/catalog", token=token)
        assert response.status_code == 401
        assert response.json()["error"]["message"] == UNAUTHORIZED


def test_no_token_is_a_401(api):
    response = api.get("/identity/v3/users")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Keystone")


def test_password_change_revokes_old_tokens(api, make_user):
    user_id, name, password, _, project_name = make_user()
    token = issue(api, password_auth(name, password, project_name)).headers["X-Subject-Token"]
    response = api.post(f"/identity/v3/users/{user_id}/password", token=token,
                        json={"user": {"original_password": password, "password": "new-" + password}})
    assert response.status_code == 204
    assert api.get("/identity/v3/auth/catalog", token=token).status_code == 401
    assert issue(api, password_auth(name, password, project_name)).status_code == 401
    assert issue(api, password_auth(name, "new-" + password, project_name)).status_code == 201


def test_removing_a_role_revokes_the_users_tokens_on_that_project(api, admin_token, make_user):
    user_id, name, password, project_id, project_name = make_user()
    token = issue(api, password_auth(name, password, project_name)).headers["X-Subject-Token"]
    role_id = api.get("/identity/v3/roles?name=member", token=admin_token).json()["roles"][0]["id"]
    grant = f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"
    assert api.head(grant, token=admin_token).status_code == 204
    assert api.delete(grant, token=admin_token).status_code == 204
    assert api.head(grant, token=admin_token).status_code == 404
    assert api.get("/identity/v3/auth/catalog", token=token).status_code == 401
    assert issue(api, password_auth(name, password, project_name)).status_code == 401


def test_disabling_a_project_refuses_its_tokens(api, admin_token, make_user):
    _, name, password, project_id, project_name = make_user()
    token = issue(api, password_auth(name, password, project_name)).headers["X-Subject-Token"]
    assert api.patch(f"/identity/v3/projects/{project_id}", token=admin_token,
                     json={"project": {"enabled": False}}).json()["project"]["enabled"] is False
    assert api.get("/identity/v3/auth/catalog", token=token).status_code == 401
    assert issue(api, password_auth(name, password, project_name)).status_code == 401


def test_group_role_gives_access_and_shows_as_effective(api, admin_token, make_user):
    _, _, _, project_id, project_name = make_user()
    name, password = unique("grouped"), uuid.uuid4().hex
    user = api.post("/identity/v3/users", token=admin_token,
                    json={"user": {"name": name, "password": password}}).json()["user"]
    group = api.post("/identity/v3/groups", token=admin_token,
                     json={"group": {"name": unique("group")}}).json()["group"]
    reader = api.get("/identity/v3/roles?name=reader", token=admin_token).json()["roles"][0]["id"]
    assert api.put(f"/identity/v3/groups/{group['id']}/users/{user['id']}", token=admin_token).status_code == 204
    assert api.put(f"/identity/v3/projects/{project_id}/groups/{group['id']}/roles/{reader}",
                   token=admin_token).status_code == 204

    response = issue(api, password_auth(name, password, project_name))
    assert response.status_code == 201
    assert [role["name"] for role in response.json()["token"]["roles"]] == ["reader"]

    rows = api.get(f"/identity/v3/role_assignments?effective&include_names&user.id={user['id']}",
                   token=admin_token).json()["role_assignments"]
    assert len(rows) == 1
    assert rows[0]["user"]["name"] == name and rows[0]["role"]["name"] == "reader"
    assert rows[0]["scope"]["project"]["name"] == project_name
    assert "membership" in rows[0]["links"]


def test_domain_scoped_token(api):
    from django.conf import settings

    response = issue(api, {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": settings.ADMIN_PASSWORD}}},
        "scope": {"domain": {"id": "default"}}}})
    assert response.status_code == 201
    body = response.json()["token"]
    assert body["domain"]["id"] == "default" and "project" not in body
    assert [role["name"] for role in body["roles"]] == ["admin"]
    domains = api.get("/identity/v3/auth/domains", token=response.headers["X-Subject-Token"]).json()["domains"]
    assert [domain["id"] for domain in domains] == ["default"]


def test_other_users_read_as_404_and_self_is_visible(api, cloud, admin_token):
    demo = cloud.token("stratus-demo")
    admin_id = api.get("/identity/v3/users?name=admin", token=admin_token).json()["users"][0]["id"]
    response = api.get(f"/identity/v3/users/{admin_id}", token=demo)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"Could not find user: {admin_id}."
    demo_id = api.get("/identity/v3/users?name=demo", token=admin_token).json()["users"][0]["id"]
    assert api.get(f"/identity/v3/users/{demo_id}", token=demo).json()["user"]["name"] == "demo"
    # A member cannot create projects, nor grant roles.
    assert api.post("/identity/v3/projects", token=demo, json={"project": {"name": "x"}}).status_code == 403


def test_expired_application_credential_is_refused(api, make_user):
    user_id, name, password, _, project_name = make_user()
    token = issue(api, password_auth(name, password, project_name)).headers["X-Subject-Token"]
    past = api.post(f"/identity/v3/users/{user_id}/application_credentials", token=token, json={
        "application_credential": {"name": "old", "expires_at": "2001-01-01T00:00:00Z"}})
    assert past.status_code == 400 and "'expires_at'" in past.json()["error"]["message"]

    created = api.post(f"/identity/v3/users/{user_id}/application_credentials", token=token, json={
        "application_credential": {"name": "ci", "roles": [{"name": "admin"}]}})
    assert created.status_code == 400 and "'roles[0]'" in created.json()["error"]["message"]

    created = api.post(f"/identity/v3/users/{user_id}/application_credentials", token=token, json={
        "application_credential": {"name": "ci"}}).json()["application_credential"]
    auth = {"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
        "id": created["id"], "secret": created["secret"]}}}}
    app_token = issue(api, auth)
    assert app_token.status_code == 201
    assert app_token.json()["token"]["application_credential"]["restricted"] is True
    listed = api.get(f"/identity/v3/users/{user_id}/application_credentials", token=token).json()
    assert "secret" not in listed["application_credentials"][0]
    # A restricted credential cannot make another one.
    again = api.post(f"/identity/v3/users/{user_id}/application_credentials",
                     token=app_token.headers["X-Subject-Token"],
                     json={"application_credential": {"name": "child"}})
    assert again.status_code == 403
    # Deleting it revokes the tokens it issued.
    assert api.delete(f"/identity/v3/users/{user_id}/application_credentials/{created['id']}",
                      token=token).status_code == 204
    assert api.get("/identity/v3/auth/catalog", token=app_token.headers["X-Subject-Token"]).status_code == 401
    assert issue(api, auth).status_code == 401


GARBAGE = [None, [], "text", 0, {"x": {"y": []}}, {"auth": "x"}, {"auth": {"identity": []}},
           {"auth": {"identity": {"methods": ["password"], "password": []}}},
           {"auth": {"identity": {"methods": ["token"], "token": {"id": 7}}}},
           {"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": [], "password": "x"}}}}}]


@pytest.mark.parametrize("path", ["/identity/v3/auth/tokens", "/identity/v3/projects", "/identity/v3/users",
                                  "/identity/v3/roles", "/identity/v3/regions", "/identity/v3/endpoints",
                                  "/identity/v3/services", "/identity/v3/groups", "/identity/v3/domains"])
def test_garbage_bodies_never_produce_a_500(api, admin_token, path):
    for body in GARBAGE:
        response = api.post(path, token=admin_token, data=json.dumps(body),
                            headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text)


def test_every_response_carries_a_request_id(api, admin_token):
    ids = set()
    for response in (api.get("/identity/v3/projects", token=admin_token), api.get("/identity/v3/nothing-here"),
                     api.get("/identity/v3/users")):
        request_id = response.headers["X-Openstack-Request-Id"]
        assert request_id.startswith("req-")
        ids.add(request_id)
    assert len(ids) == 3


def test_unknown_url_is_a_json_404(api):
    response = api.get("/identity/v3/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 404
