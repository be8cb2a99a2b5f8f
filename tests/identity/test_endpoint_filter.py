"""OS-EP-FILTER: endpoint groups and the endpoints given to a project,
which then are all its tokens' catalogs show; the `openstack` CLI for
`endpoint group *` and `endpoint add/remove project`, raw HTTP elsewhere."""
import json

import pytest

from tests.identity.test_api import admin_token, issue, make_user, password_auth, unique  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live

EP = "/identity/v3/OS-EP-FILTER"


def catalog_of(api, token):
    """{service type: [(interface, endpoint id), ...]} of a token, as validated."""
    body = api.get("/identity/v3/auth/tokens", token=token, headers={"X-Subject-Token": token}).json()["token"]
    return {entry["type"]: sorted((e["interface"], e["id"]) for e in entry["endpoints"]) for entry in body["catalog"]}


def endpoints(api, admin_token, **filters):
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    return api.get(f"/identity/v3/endpoints?{query}", token=admin_token).json()["endpoints"]


@pytest.fixture
def service(api, admin_token):
    """A service of its own with a public and an internal endpoint: (service id, {interface: endpoint id})."""
    made = api.post("/identity/v3/services", token=admin_token,
                    json={"service": {"type": unique("metering"), "name": unique("meter")}}).json()["service"]
    ids = {}
    for interface in ("public", "internal"):
        ids[interface] = api.post("/identity/v3/endpoints", token=admin_token, json={"endpoint": {
            "service_id": made["id"], "interface": interface, "url": f"http://meter.example/{interface}",
            "region_id": "RegionOne"}}).json()["endpoint"]["id"]
    yield made["id"], ids
    api.delete(f"/identity/v3/services/{made['id']}", token=admin_token)


def test_cli_manages_endpoint_groups_and_their_projects(cloud, api, admin_token, service, make_user, tmp_path):
    service_id, ids = service
    _, _, _, project_id, project_name = make_user()
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"service_id": service_id, "interface": "public"}))
    name = unique("meter-public")
    group = cloud.openstack("endpoint", "group", "create", "--description", "public metering", name, str(filters),
                            "-f", "json")
    assert group["name"] == name and group["description"] == "public metering"
    assert group["filters"] == {"service_id": service_id, "interface": "public"}
    listed = cloud.openstack("endpoint", "group", "list", "-f", "json")
    assert group["id"] in [row["ID"] for row in listed]
    assert cloud.openstack("endpoint", "group", "show", group["id"], "-f", "json")["id"] == group["id"]
    filters.write_text(json.dumps({"service_id": service_id}))
    cloud.openstack("endpoint", "group", "set", "--name", name + "-all", "--filters", str(filters), group["id"])
    shown = api.get(f"{EP}/endpoint_groups/{group['id']}", token=admin_token).json()["endpoint_group"]
    assert shown["name"] == name + "-all" and shown["filters"] == {"service_id": service_id}
    in_group = api.get(f"{EP}/endpoint_groups/{group['id']}/endpoints", token=admin_token).json()["endpoints"]
    assert sorted(e["id"] for e in in_group) == sorted(ids.values())

    cloud.openstack("endpoint", "group", "add", "project", group["id"], project_id)
    by_project = cloud.openstack("endpoint", "group", "list", "--project", project_id, "-f", "json")
    assert [row["ID"] for row in by_project] == [group["id"]]
    projects = cloud.openstack("endpoint", "group", "list", "--endpointgroup", group["id"], "-f", "json")
    assert [row["ID"] for row in projects] == [project_id]
    assert api.get(f"{EP}/endpoint_groups/{group['id']}/projects/{project_id}",
                   token=admin_token).json()["project"]["name"] == project_name
    cloud.openstack("endpoint", "group", "remove", "project", group["id"], project_id)
    assert api.head(f"{EP}/endpoint_groups/{group['id']}/projects/{project_id}",
                    token=admin_token).status_code == 404
    cloud.openstack("endpoint", "group", "delete", group["id"])
    assert api.get(f"{EP}/endpoint_groups/{group['id']}", token=admin_token).status_code == 404


def test_cli_gives_an_endpoint_to_a_project(cloud, api, admin_token, service, make_user):
    _, ids = service
    _, _, _, project_id, _ = make_user()
    cloud.openstack("endpoint", "add", "project", ids["internal"], project_id)
    listed = cloud.openstack("endpoint", "list", "--project", project_id, "-f", "json")
    assert [row["ID"] for row in listed] == [ids["internal"]]
    assert api.head(f"{EP}/projects/{project_id}/endpoints/{ids['internal']}", token=admin_token).status_code == 204
    projects = api.get(f"{EP}/endpoints/{ids['internal']}/projects", token=admin_token).json()["projects"]
    assert [p["id"] for p in projects] == [project_id]
    cloud.openstack("endpoint", "remove", "project", ids["internal"], project_id)
    assert api.head(f"{EP}/projects/{project_id}/endpoints/{ids['internal']}", token=admin_token).status_code == 404
    assert api.get(f"{EP}/projects/{project_id}/endpoints", token=admin_token).json()["endpoints"] == []


def test_a_projects_catalog_shows_only_its_endpoints_once_it_has_any(api, admin_token, service, make_user):
    service_id, ids = service
    _, name, password, project_id, project_name = make_user()
    token = issue(api, password_auth(name, password, project_name)).headers["X-Subject-Token"]
    full = catalog_of(api, token)
    assert {"identity", "compute"} <= set(full)
    service_type = next(t for t, eps in full.items() if ("internal", ids["internal"]) in eps)

    # One endpoint given alone: the catalog (already issued tokens' too) is that endpoint only.
    assert api.put(f"{EP}/projects/{project_id}/endpoints/{ids['internal']}", token=admin_token).status_code == 204
    assert catalog_of(api, token) == {service_type: [("internal", ids["internal"])]}
    fresh = issue(api, password_auth(name, password, project_name))
    assert [entry["type"] for entry in fresh.json()["token"]["catalog"]] == [service_type]
    assert [entry["type"] for entry in api.get("/identity/v3/auth/catalog", token=token).json()["catalog"]] \
        == [service_type]

    # An endpoint group adds what it names: every public identity endpoint.
    identity_service = api.get("/identity/v3/services?type=identity", token=admin_token).json()["services"][0]["id"]
    group = api.post(f"{EP}/endpoint_groups", token=admin_token, json={"endpoint_group": {
        "name": unique("public-identity"), "filters": {"service_id": identity_service, "interface": "public"}}})
    assert group.status_code == 201, group.text
    group_id = group.json()["endpoint_group"]["id"]
    assert api.put(f"{EP}/endpoint_groups/{group_id}/projects/{project_id}", token=admin_token).status_code == 204
    public_identity = sorted(("public", e["id"]) for e in endpoints(api, admin_token, service_id=identity_service,
                                                                      interface="public"))
    assert catalog_of(api, token) == {service_type: [("internal", ids["internal"])], "identity": public_identity}
    listed = api.get(f"{EP}/projects/{project_id}/endpoints", token=admin_token).json()["endpoints"]
    assert sorted(e["id"] for e in listed) == sorted([ids["internal"]] + [i for _, i in public_identity])
    # Changing the group's filters changes the catalog.
    assert api.patch(f"{EP}/endpoint_groups/{group_id}", token=admin_token, json={"endpoint_group": {
        "filters": {"service_id": service_id}}}).status_code == 200
    assert catalog_of(api, token) == {service_type: sorted([("internal", ids["internal"]), ("public", ids["public"])])}

    # Other projects are untouched; without associations the catalog is whole again.
    admin_catalog = catalog_of(api, admin_token)
    assert {"identity", "compute", service_type} <= set(admin_catalog)
    assert api.delete(f"{EP}/endpoint_groups/{group_id}", token=admin_token).status_code == 204
    assert api.delete(f"{EP}/projects/{project_id}/endpoints/{ids['internal']}", token=admin_token).status_code == 204
    assert catalog_of(api, token) == full


@pytest.mark.parametrize("body, field", [
    ({"endpoint_group": {"filters": {"interface": "public"}}}, "name"),
    ({"endpoint_group": {"name": "x"}}, "filters"),
    ({"endpoint_group": {"name": "x", "filters": {}}}, "filters"),
    ({"endpoint_group": {"name": "x", "filters": {"url": "http://x"}}}, "filters"),
    ({"endpoint_group": {"name": "x", "filters": {"interface": "private"}}}, "filters.interface"),
    ({"endpoint_group": {"name": "x", "filters": {"service_id": 5}}}, "filters.service_id"),
    ({"endpoint_group": {"name": "x", "filters": {"interface": "public"}, "enabled": True}}, "enabled"),
    ({"endpoint_group": []}, "endpoint_group"),
])
def test_bad_endpoint_groups_are_400s_naming_the_field(api, admin_token, body, field):
    before = len(api.get(f"{EP}/endpoint_groups", token=admin_token).json()["endpoint_groups"])
    response = api.post(f"{EP}/endpoint_groups", token=admin_token, json=body)
    assert response.status_code == 400, response.text
    assert f"'{field}'" in response.json()["error"]["message"]
    assert len(api.get(f"{EP}/endpoint_groups", token=admin_token).json()["endpoint_groups"]) == before


def test_endpoint_filters_are_for_admins_and_missing_things_are_404s(api, admin_token, service, make_user):
    _, ids = service
    _, name, password, project_id, project_name = make_user("admin")  # admin of their project, not of the cloud
    token = issue(api, password_auth(name, password, project_name)).headers["X-Subject-Token"]
    for method, path in (("GET", f"{EP}/endpoint_groups"), ("POST", f"{EP}/endpoint_groups"),
                         ("PUT", f"{EP}/projects/{project_id}/endpoints/{ids['public']}"),
                         ("GET", f"{EP}/projects/{project_id}/endpoints")):
        assert api.request(method, path, token=token, json={}).status_code == 403, (method, path)
    assert api.put(f"{EP}/projects/missing/endpoints/{ids['public']}", token=admin_token).status_code == 404
    assert api.put(f"{EP}/projects/{project_id}/endpoints/missing", token=admin_token).status_code == 404
    assert api.put(f"{EP}/endpoint_groups/missing/projects/{project_id}", token=admin_token).status_code == 404
    assert api.get(f"{EP}/endpoint_groups/missing", token=admin_token).status_code == 404
    assert api.delete(f"{EP}/projects/{project_id}/endpoints/{ids['public']}", token=admin_token).status_code == 404
    # A PUT twice is one association.
    for _ in range(2):
        assert api.put(f"{EP}/projects/{project_id}/endpoints/{ids['public']}", token=admin_token).status_code == 204
    assert len(api.get(f"{EP}/projects/{project_id}/endpoints", token=admin_token).json()["endpoints"]) == 1
