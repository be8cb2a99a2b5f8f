"""Server tags (2.26+) through the API and the `openstack` CLI: set, add,
remove, the list filters, tags given at create (2.52+), the per-server
limit, bad tags, states that refuse a change, and another project's server."""
import uuid

import pytest

from compute.models import Instance, VmState
from tests.compute.pipeline import live_db  # noqa: F401  (a fixture)
from tests.compute.test_servers_api import create, delete, image_id, tokens  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live

V = {"OpenStack-API-Version": "compute 2.60"}


def settle(*server_ids):
    """The servers as a node leaves them once booted (no workers run here)."""
    Instance.objects.filter(pk__in=server_ids).update(vm_state=VmState.ACTIVE, task_state=None)


def test_tags_are_set_added_shown_and_removed(live_db, api, tokens, image_id):
    token = tokens["demo"]
    server_id = create(api, token, image_id).json()["server"]["id"]
    base = f"/compute/v2.1/servers/{server_id}/tags"
    try:
        building = api.put(base, token=token, json={"tags": ["a"]}, headers=V)
        assert building.status_code == 409 and "building" in building.text
        settle(server_id)
        assert api.put(base, token=token, json={"tags": ["web", "prod", "web"]}, headers=V).json() == {
            "tags": ["prod", "web"]}
        added = api.put(f"{base}/blue", token=token, headers=V)
        assert added.status_code == 201 and added.headers["Location"].endswith(f"/servers/{server_id}/tags/blue")
        assert api.put(f"{base}/blue", token=token, headers=V).status_code == 204
        assert api.get(f"{base}/blue", token=token, headers=V).status_code == 204
        assert api.get(f"{base}/green", token=token, headers=V).status_code == 404
        shown = api.get(f"/compute/v2.1/servers/{server_id}", token=token, headers=V).json()["server"]
        assert shown["tags"] == ["blue", "prod", "web"]
        assert api.delete(f"{base}/prod", token=token, headers=V).status_code == 204
        assert api.delete(f"{base}/prod", token=token, headers=V).status_code == 404
        assert api.get(base, token=token, headers=V).json() == {"tags": ["blue", "web"]}
        assert api.delete(base, token=token, headers=V).status_code == 204
        assert api.get(base, token=token, headers=V).json() == {"tags": []}
    finally:
        delete(api, token, server_id)


def test_bad_tags_the_limit_old_microversions_and_other_projects_are_refused(live_db, api, tokens, image_id):
    token = tokens["demo"]
    server_id = create(api, token, image_id).json()["server"]["id"]
    settle(server_id)
    base = f"/compute/v2.1/servers/{server_id}/tags"
    try:
        assert api.put(base, token=token, json={"tags": ["keep"]}, headers=V).status_code == 200
        for bad in (["a,b"], [""], ["x" * 61], [5], "web"):
            refused = api.put(base, token=token, json={"tags": bad}, headers=V)
            assert refused.status_code == 400 and "'tags'" in refused.text, (bad, refused.text)
        assert api.put(f"{base}/a,b", token=token, headers=V).status_code == 400
        too_many = api.put(base, token=token, json={"tags": [f"t{i}" for i in range(51)]}, headers=V)
        assert too_many.status_code == 400 and "limit 50" in too_many.text
        assert api.put(base, token=token, json={"tags": [f"t{i}" for i in range(50)]}, headers=V).status_code == 200
        full = api.put(f"{base}/one-more", token=token, headers=V)
        assert full.status_code == 400 and "limit 50" in full.text
        old = {"OpenStack-API-Version": "compute 2.25"}
        assert api.get(base, token=token, headers=old).status_code == 404
        assert "tags" not in api.get(f"/compute/v2.1/servers/{server_id}", token=token, headers=old).json()["server"]
        stranger = member_of_another_project(api, tokens["admin"])
        for method, path in (("GET", base), ("PUT", f"{base}/mine"), ("DELETE", base), ("GET", f"{base}/keep")):
            assert api.request(method, path, token=stranger, headers=V).status_code == 404, (method, path)
        assert len(api.get(base, token=tokens["admin"], headers=V).json()["tags"]) == 50  # the cloud admin sees it
    finally:
        delete(api, token, server_id)


def member_of_another_project(api, admin_token):
    """A token of a member of a fresh project."""
    from tests.identity.test_api import issue, password_auth

    name, password = f"tags-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    project = api.post("/identity/v3/projects", token=admin_token, json={"project": {"name": name}}).json()["project"]
    user = api.post("/identity/v3/users", token=admin_token,
                    json={"user": {"name": name, "password": password}}).json()["user"]
    role = api.get("/identity/v3/roles?name=member", token=admin_token).json()["roles"][0]["id"]
    api.put(f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{role}", token=admin_token)
    return issue(api, password_auth(name, password, name)).headers["X-Subject-Token"]


def test_list_filters_and_tags_at_create(live_db, api, tokens, image_id):
    token = tokens["demo"]
    marker = uuid.uuid4().hex[:6]
    created = {
        "ab": create(api, token, image_id, name=f"{marker}-ab", tags=["a", "b"]),
        "a": create(api, token, image_id, name=f"{marker}-a", tags=["a"]),
        "c": create(api, token, image_id, name=f"{marker}-c", tags=["c"]),
        "none": create(api, token, image_id, name=f"{marker}-none"),
    }
    ids = {key: response.json()["server"]["id"] for key, response in created.items()}
    try:
        def names(query):
            servers = api.get(f"/compute/v2.1/servers/detail?name={marker}&{query}", token=token, headers=V)
            assert servers.status_code == 200, servers.text
            return sorted(server["name"].split("-", 1)[1] for server in servers.json()["servers"])

        assert names("tags=a,b") == ["ab"]
        assert names("tags-any=b,c") == ["ab", "c"]
        assert names("not-tags=a,b") == ["a", "c", "none"]
        assert names("not-tags-any=a") == ["c", "none"]
        assert names("tags=a&not-tags-any=b") == ["a"]
        detail = api.get(f"/compute/v2.1/servers/{ids['ab']}", token=token, headers=V).json()["server"]
        assert detail["tags"] == ["a", "b"]
        before_252 = api.post("/compute/v2.1/servers", token=token, headers={"OpenStack-API-Version": "compute 2.51"},
                              json={"server": {"name": f"{marker}-old", "imageRef": image_id, "flavorRef": "42",
                                               "networks": "none", "tags": ["x"]}})
        assert before_252.status_code == 202
        ids["old"] = before_252.json()["server"]["id"]
        assert api.get(f"/compute/v2.1/servers/{ids['old']}/tags", token=token, headers=V).json() == {"tags": []}
    finally:
        for server_id in ids.values():
            delete(api, token, server_id)


def test_tags_through_the_cli(live_db, cloud, image_id):
    name = f"tagged-{uuid.uuid4().hex[:6]}"

    def openstack(*args, **kwargs):
        return cloud.openstack(*args, env={"OS_COMPUTE_API_VERSION": "2.60"}, **kwargs)

    server_id = openstack("server", "create", "--image", image_id, "--flavor", "m1.nano", "--nic", "none",
                          "--tag", "first", name, "-f", "json")["id"]
    try:
        settle(server_id)
        openstack("server", "set", "--tag", "second", "--tag", "third", name)
        assert sorted(openstack("server", "show", name, "-f", "json")["tags"]) == ["first", "second", "third"]
        listed = openstack("server", "list", "--tags", "second", "--name", name, "-f", "json")
        assert [server["ID"] for server in listed] == [server_id]
        openstack("server", "unset", "--tag", "first", name)
        assert sorted(openstack("server", "show", name, "-f", "json")["tags"]) == ["second", "third"]
        assert openstack("server", "list", "--not-tags", "second", "--name", name, "-f", "json") == []
    finally:
        cloud.openstack("server", "delete", "--wait", name)
