"""Identity through the real `openstack` CLI and openstacksdk against the
live server."""
import uuid

import pytest

pytestmark = pytest.mark.live


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_token_issue_gives_a_project_scoped_token(cloud):
    token = cloud.openstack("token", "issue", "-f", "json")
    project = cloud.openstack("project", "show", "admin", "-f", "json")
    assert token["project_id"] == project["id"]
    assert token["id"] and token["expires"]


def test_project_user_role_and_named_assignments(cloud):
    project, user, role = unique("proj"), unique("user"), unique("role")
    created = cloud.openstack("project", "create", project, "--description", "for tests", "-f", "json")
    assert created["name"] == project and created["enabled"] is True
    cloud.openstack("user", "create", "--password", "s3cret", "--project", project, user, "-f", "json")
    cloud.openstack("role", "create", role, "-f", "json")
    cloud.openstack("role", "add", "--project", project, "--user", user, role)

    rows = cloud.openstack("role", "assignment", "list", "--names", "--project", project, "-f", "json")
    assert {"Role": role, "User": f"{user}@Default", "Project": f"{project}@Default"}.items() <= rows[0].items()

    # The new user can now authenticate into the project, and only there.
    conn = cloud.connect("stratus")
    scoped = conn.identity.get(
        "/auth/tokens", headers={"X-Subject-Token": conn.auth_token}).json()["token"]
    assert scoped["project"]["name"] == "admin"


def test_catalog_lists_every_service(cloud):
    catalog = cloud.openstack("catalog", "list", "-f", "json")
    types = {entry["Type"] for entry in catalog}
    assert {"identity", "compute", "image", "network", "block-storage", "volumev3"} <= types
    identity = next(entry for entry in catalog if entry["Type"] == "identity")
    interfaces = {endpoint["interface"] for endpoint in identity["Endpoints"]}
    assert interfaces == {"public", "internal", "admin"}


def test_application_credential_authenticates(cloud, tmp_path):
    name = unique("appcred")
    created = cloud.openstack("application", "credential", "create", name, "-f", "json")
    assert created["Secret"]
    config = tmp_path / "clouds.yaml"
    config.write_text(
        "clouds:\n  appcred:\n    auth_type: v3applicationcredential\n"
        f"    auth:\n      auth_url: {cloud.url}/identity\n"
        f"      application_credential_id: {created['ID']}\n"
        f"      application_credential_secret: {created['Secret']}\n"
        "    region_name: RegionOne\n")
    token = cloud.openstack("token", "issue", "-f", "json", cloud="appcred",
                            env={"OS_CLIENT_CONFIG_FILE": str(config)})
    assert token["project_id"] == created["Project ID"]

    # A wrong secret is refused.
    config.write_text(config.read_text().replace(created["Secret"], "not-the-secret"))
    failed = cloud.openstack("token", "issue", cloud="appcred", expect_fail=True,
                             env={"OS_CLIENT_CONFIG_FILE": str(config)})
    assert "401" in failed.stderr


def test_revoked_token_is_refused(cloud, api):
    token = cloud.openstack("token", "issue", "-f", "json")["id"]
    assert api.get("/identity/v3/auth/catalog", token=token).status_code == 200
    cloud.openstack("token", "revoke", token)
    response = api.get("/identity/v3/auth/catalog", token=token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401


def test_demo_user_cannot_list_users_or_see_admin_project(cloud, api):
    failed = cloud.openstack("user", "list", cloud="stratus-demo", expect_fail=True)
    assert "403" in failed.stderr
    admin_project = cloud.openstack("project", "show", "admin", "-f", "json")["id"]
    response = api.get(f"/identity/v3/projects/{admin_project}", token=cloud.token("stratus-demo"))
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"Could not find project: {admin_project}."


def test_domain_group_region_service_endpoint_lifecycle(cloud):
    domain, group, user, region, service = (unique(p) for p in ("dom", "grp", "usr", "reg", "svc"))
    cloud.openstack("domain", "create", domain, "-f", "json")
    cloud.openstack("user", "create", "--domain", domain, "--password", "pw", user, "-f", "json")
    cloud.openstack("group", "create", "--domain", domain, group, "-f", "json")
    cloud.openstack("group", "add", "user", "--group-domain", domain, "--user-domain", domain, group, user)
    assert "in group" in cloud.openstack("group", "contains", "user", "--group-domain", domain,
                                         "--user-domain", domain, group, user)
    cloud.openstack("role", "add", "--domain", domain, "--user", user, "--user-domain", domain, "admin")
    rows = cloud.openstack("role", "assignment", "list", "--user", user, "--user-domain", domain, "--names",
                           "-f", "json")
    assert [(row["Role"], row["Domain"]) for row in rows] == [("admin", domain)]

    cloud.openstack("region", "create", region, "-f", "json")
    cloud.openstack("service", "create", "--name", service, f"type-{service}", "-f", "json")
    endpoint = cloud.openstack("endpoint", "create", "--region", region, service, "public", "http://example.test",
                               "-f", "json")
    assert endpoint["region"] == region and endpoint["url"] == "http://example.test"
    # A region with endpoints cannot go.
    assert "409" in cloud.openstack("region", "delete", region, expect_fail=True).stderr
    cloud.openstack("service", "delete", service)
    cloud.openstack("region", "delete", region)

    # An enabled domain cannot be deleted; a disabled one goes with its users.
    assert "403" in cloud.openstack("domain", "delete", domain, expect_fail=True).stderr
    cloud.openstack("domain", "set", "--disable", domain)
    cloud.openstack("domain", "delete", domain)
    names = [row["Name"] for row in cloud.openstack("domain", "list", "-f", "json")]
    assert domain not in names
