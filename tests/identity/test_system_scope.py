"""Cloud-wide admin power needs the system scope or the admin project:
`admin` on any other project is that project's admin only."""
import json
import uuid

import pytest
from django.conf import settings

from identity import tokens

pytestmark = pytest.mark.live

COMPUTE = {"OpenStack-API-Version": "compute 2.60"}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def admin_token(cloud):
    return cloud.token("stratus")


@pytest.fixture(scope="module")
def project_admin(cloud, admin_token):
    """A user with `admin` on an ordinary project, and its token there."""
    import requests

    def call(method, path, **kwargs):
        response = requests.request(method, cloud.url + path, headers={"X-Auth-Token": admin_token},
                                    timeout=30, **kwargs)
        assert response.status_code < 300, response.text
        return response

    project = call("POST", "/identity/v3/projects", json={"project": {"name": unique("proj")}}).json()["project"]
    password = uuid.uuid4().hex
    user = call("POST", "/identity/v3/users",
                json={"user": {"name": unique("padmin"), "password": password}}).json()["user"]
    admin_role = call("GET", "/identity/v3/roles?name=admin").json()["roles"][0]["id"]
    call("PUT", f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{admin_role}")
    response = requests.post(cloud.url + "/identity/v3/auth/tokens", timeout=30, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"id": user["id"], "password": password}}},
        "scope": {"project": {"id": project["id"]}}}})
    assert response.status_code == 201, response.text
    return {"user": user, "password": password, "project": project, "token": response.headers["X-Subject-Token"],
            "body": response.json()["token"]}


def system_token(api, user_name="admin", password=None):
    response = api.post("/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user_name, "domain": {"id": "default"}, "password": password or settings.ADMIN_PASSWORD}}},
        "scope": {"system": {"all": True}}}})
    return response


def cloud_wide_reads(api, token):
    """Status codes of what only a cloud admin may do."""
    return {
        "users": api.get("/identity/v3/users", token=token).status_code,
        "projects": api.get("/identity/v3/projects", token=token).status_code,
        "all servers": api.get("/compute/v2.1/servers/detail?all_tenants=1", token=token,
                               headers=COMPUTE).status_code,
    }


def create_flavor(api, token):
    name = unique("flavor")
    response = api.post("/compute/v2.1/flavors", token=token, headers=COMPUTE, json={"flavor": {
        "name": name, "ram": 64, "vcpus": 1, "disk": 1}})
    if response.status_code == 200:
        api.delete(f"/compute/v2.1/flavors/{response.json()['flavor']['id']}", token=token, headers=COMPUTE)
    return response.status_code


def test_admin_on_an_ordinary_project_is_that_projects_admin_only(api, project_admin):
    token = project_admin["token"]
    assert cloud_wide_reads(api, token) == {"users": 403, "projects": 403, "all servers": 403}
    assert create_flavor(api, token) == 403
    denied = api.get("/identity/v3/users", token=token).json()
    assert denied["error"]["code"] == 403
    # Its own project is still its to see, and its own servers.
    own = api.get(f"/identity/v3/projects/{project_admin['project']['id']}", token=token)
    assert own.status_code == 200
    assert api.get("/compute/v2.1/servers/detail", token=token, headers=COMPUTE).status_code == 200
    # The admin project stays invisible to it.
    admin_project = api.get("/identity/v3/auth/projects", token=token).json()["projects"]
    assert [p["id"] for p in admin_project] == [project_admin["project"]["id"]]
    assert project_admin["body"]["is_admin_project"] is False


def test_the_stratus_admin_and_a_system_token_are_cloud_admins(api, admin_token):
    assert cloud_wide_reads(api, admin_token) == {"users": 200, "projects": 200, "all servers": 200}
    assert create_flavor(api, admin_token) == 200
    body = api.get("/identity/v3/auth/tokens", token=admin_token,
                   headers={"X-Subject-Token": admin_token}).json()["token"]
    assert body["project"]["name"] == "admin" and body["is_admin_project"] is True

    issued = system_token(api)
    assert issued.status_code == 201, issued.text
    body = issued.json()["token"]
    assert body["system"] == {"all": True}
    assert "project" not in body and "domain" not in body and "is_admin_project" not in body
    assert [role["name"] for role in body["roles"]] == ["admin"]
    assert {entry["type"] for entry in body["catalog"]} >= {"identity", "compute", "image"}
    system = issued.headers["X-Subject-Token"]
    assert cloud_wide_reads(api, system) == {"users": 200, "projects": 200, "all servers": 200}
    assert create_flavor(api, system) == 200


def test_a_system_token_is_refused_what_needs_a_project(api):
    system = system_token(api).headers["X-Subject-Token"]
    group = api.post("/compute/v2.1/os-server-groups", token=system, headers=COMPUTE,
                     json={"server_group": {"name": "g", "policies": ["affinity"]}})
    assert group.status_code == 403 and "project-scoped" in group.json()["forbidden"]["message"]
    image = api.post("/image/v2/images", token=system, json={"name": "x", "disk_format": "qcow2",
                                                             "container_format": "bare"})
    assert image.status_code == 403
    # Reading across projects is what it is for.
    assert api.get("/compute/v2.1/servers/detail?all_tenants=1", token=system, headers=COMPUTE).status_code == 200
    assert api.get("/image/v2/images", token=system).status_code == 200


def test_a_user_without_a_system_role_cannot_scope_to_the_system(api, project_admin):
    response = system_token(api, project_admin["user"]["name"], project_admin["password"])
    assert response.status_code == 401
    bad = api.post("/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": settings.ADMIN_PASSWORD}}},
        "scope": {"system": {"all": "yes"}}}})
    assert bad.status_code == 400 and "'auth.scope.system'" in bad.json()["error"]["message"]


def test_system_scope_with_the_cli(cloud, tmp_path):
    token = cloud.openstack("token", "issue", "-f", "json", cloud="stratus-system")
    assert token["id"] and token["system"] == "all" and "project_id" not in token
    assert cloud.openstack("user", "list", "-f", "json", cloud="stratus-system")

    # --os-system-scope on a cloud that names no project.
    config = tmp_path / "clouds.yaml"
    config.write_text(
        "clouds:\n  operator:\n    auth:\n"
        f"      auth_url: {cloud.url}/identity\n      username: admin\n      password: {settings.ADMIN_PASSWORD}\n"
        "      user_domain_name: Default\n    region_name: RegionOne\n")
    token = cloud.openstack("--os-system-scope", "all", "token", "issue", "-f", "json", cloud="operator",
                            env={"OS_CLIENT_CONFIG_FILE": str(config)})
    assert token["system"] == "all" and "project_id" not in token


def test_system_role_assignments_with_the_cli(cloud, api, project_admin):
    name = project_admin["user"]["name"]
    cloud.openstack("role", "add", "--system", "all", "--user", name, "admin")
    rows = cloud.openstack("role", "assignment", "list", "--system", "all", "--names", "-f", "json")
    assert {"Role": "admin", "User": f"{name}@Default", "System": "all"}.items() <= next(
        row for row in rows if row["User"] == f"{name}@Default").items()
    issued = system_token(api, name, project_admin["password"])
    assert issued.status_code == 201
    system = issued.headers["X-Subject-Token"]
    assert api.get("/identity/v3/users", token=system).status_code == 200

    cloud.openstack("role", "remove", "--system", "all", "--user", name, "admin")
    rows = cloud.openstack("role", "assignment", "list", "--system", "all", "--names", "-f", "json")
    assert f"{name}@Default" not in [row["User"] for row in rows]
    assert system_token(api, name, project_admin["password"]).status_code == 401
    # The token that carried the role no longer works; the user's project token does.
    assert api.get("/identity/v3/users", token=system).status_code == 401
    assert api.get(f"/identity/v3/projects/{project_admin['project']['id']}",
                   token=project_admin["token"]).status_code == 200


@pytest.mark.django_db
def test_tokens_of_the_previous_payload_are_invalid():
    tokens.keys.setup()  # this test may run before any bootstrap made the keys
    now = __import__("time").time()
    version_1 = [1, "u1", "default", ["password"], "p1", None, ["admin"], now, now + 3600, ["a"], None, True]
    token = tokens.keys.fernet().encrypt(json.dumps(version_1).encode()).decode().rstrip("=")
    assert tokens.validate_token(token) is None
    fresh, _ = tokens.issue_token(user_id="u1", user_domain_id="default", methods=["password"], project_id="p1",
                                  project_domain_id="default", roles=["admin"])
    credentials = tokens.validate_token(fresh)
    assert credentials.project_id == "p1" and not credentials.is_admin and credentials.has_role("admin")
