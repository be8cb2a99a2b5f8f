"""The servers API without workers: validation, quotas under concurrent
requests, project isolation, states that refuse an action, locks,
metadata, list filters and pagination, and the query count of a list."""
import base64
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compute.models import Instance, InstanceFault, VmState
from tests.compute.pipeline import live_db  # noqa: F401  (a fixture)

pytestmark = pytest.mark.live

V = {"OpenStack-API-Version": "compute 2.60"}


@pytest.fixture(scope="module")
def tokens(cloud):
    return {"admin": cloud.token("stratus"), "demo": cloud.token("stratus-demo")}


@pytest.fixture(scope="module")
def image_id(cloud, tmp_path_factory):
    from tests.compute.pipeline import upload_tiny_image

    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


def create(api, token, image_id, flavor="42", **extra):
    body = {"server": {"name": extra.pop("name", f"api-{uuid.uuid4().hex[:6]}"), "imageRef": image_id,
                       "flavorRef": flavor, "networks": "none", **extra}}
    return api.post("/compute/v2.1/servers", token=token, json=body, headers=V)


def delete(api, token, server_id):
    assert api.delete(f"/compute/v2.1/servers/{server_id}", token=token, headers=V).status_code == 204


def count_servers(api, token):
    return len(api.get("/compute/v2.1/servers", token=token, headers=V).json()["servers"])


def upload_image(api, token, tmp_path, virtual_size):
    path = tmp_path / f"{virtual_size}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), virtual_size], check=True)
    image = api.post("/image/v2/images", token=token, json={
        "name": f"img-{virtual_size}", "disk_format": "qcow2", "container_format": "bare",
        "visibility": "public"}).json()
    uploaded = api.put(f"/image/v2/images/{image['id']}/file", token=token, data=path.read_bytes(),
                       headers={"Content-Type": "application/octet-stream"})
    assert uploaded.status_code == 204, uploaded.text
    return image["id"]


def test_bad_input_names_the_field_and_creates_nothing(api, tokens, image_id, tmp_path):
    token = tokens["demo"]
    before = count_servers(api, token)
    no_such_network = str(uuid.uuid4())
    cases = [
        ({"flavorRef": "no-such-flavor"}, "Flavor no-such-flavor could not be found"),
        ({"imageRef": "00000000-0000-0000-0000-000000000000"},
         "Image 00000000-0000-0000-0000-000000000000 could not be found"),
        ({"name": ""}, "'name'"),
        ({"user_data": "not base64!"}, "'user_data'"),
        ({"min_count": 3, "max_count": 2}, "min_count"),
        ({"key_name": "no-such-key"}, "key_name"),
        ({"metadata": {"k": 5}}, "metadata"),
        ({"networks": [{"uuid": no_such_network}]}, f"Network {no_such_network} could not be found."),
        ({"networks": [{"port": no_such_network}]}, f"Port id {no_such_network} could not be found."),
        ({"availability_zone": "atlantis"}, "atlantis"),
    ]
    for extra, expected in cases:
        response = create(api, token, image_id, **extra)
        assert response.status_code == 400, (extra, response.text)
        assert expected in response.json()["badRequest"]["message"], (extra, response.text)
    big_image = upload_image(api, tokens["admin"], tmp_path, "2G")
    too_small = create(api, token, big_image)
    assert too_small.status_code == 400 and "Flavor's disk is too small" in too_small.text
    no_networks = api.post("/compute/v2.1/servers", token=token, headers=V, json={
        "server": {"name": "x", "imageRef": image_id, "flavorRef": "42"}})
    assert no_networks.status_code == 400 and "networks" in no_networks.text
    malformed = api.post("/compute/v2.1/servers", token=token, headers={**V, "Content-Type": "application/json"},
                         data="{\"server\": ")
    assert malformed.status_code == 400
    not_an_envelope = api.post("/compute/v2.1/servers", token=token, headers=V, json={"name": "x"})
    assert not_an_envelope.status_code == 400 and "'server'" in not_an_envelope.text
    assert count_servers(api, token) == before


def test_over_quota_is_403_naming_the_quota_and_concurrent_boots_respect_it(cloud, api, tokens, image_id):
    demo = cloud.openstack("project", "show", "demo", "-f", "json")["id"]
    # The limits this test asserts, whatever an earlier test left behind.
    cloud.openstack("quota", "set", "--instances", "4", "--cores", "20", "--ram", "51200", demo)
    token = tokens["demo"]
    try:
        assert count_servers(api, token) == 0
        too_many = create(api, token, image_id, min_count=5, max_count=5)
        assert too_many.status_code == 403
        assert "Quota exceeded for instances" in too_many.json()["forbidden"]["message"]
        assert count_servers(api, token) == 0

        big = cloud.openstack("flavor", "create", f"big-{uuid.uuid4().hex[:6]}", "--ram", "60000", "--vcpus",
                              "1", "-f", "json")
        ram = create(api, token, image_id, flavor=big["id"])
        assert ram.status_code == 403 and "Quota exceeded for ram" in ram.text

        # min_count..max_count: as many as the quota allows, at least min_count.
        some = create(api, token, image_id, name="fill", min_count=1, max_count=10, return_reservation_id=True)
        assert some.status_code == 202
        reservation = some.json()["reservation_id"]
        filled = api.get(f"/compute/v2.1/servers?reservation_id={reservation}", token=token, headers=V).json()
        assert sorted(server["name"] for server in filled["servers"]) == [f"fill-{i}" for i in range(1, 5)]
        for server in filled["servers"]:
            delete(api, token, server["id"])

        with ThreadPoolExecutor(max_workers=10) as pool:
            responses = list(pool.map(lambda _: create(api, token, image_id), range(10)))
        assert sorted(response.status_code for response in responses) == [202] * 4 + [403] * 6
        assert count_servers(api, token) == 4
    finally:
        for server in api.get("/compute/v2.1/servers", token=token, headers=V).json()["servers"]:
            delete(api, token, server["id"])
        cloud.openstack("quota", "set", "--instances", "10", demo)  # Nova's default


def test_another_projects_server_is_404(api, tokens, image_id):
    created = create(api, tokens["admin"], image_id)
    server_id = created.json()["server"]["id"]
    # The create body has Nova's keys and no others (Tempest checks its schema).
    keys = set(created.json()["server"])
    assert {"id", "links", "OS-DCF:diskConfig", "adminPass"} <= keys <= \
        {"id", "links", "OS-DCF:diskConfig", "adminPass", "security_groups"}, keys
    try:
        for method, path, body in (("GET", "", None), ("DELETE", "", None), ("PUT", "", {"server": {"name": "x"}}),
                                   ("POST", "/action", {"os-stop": None}), ("GET", "/metadata", None),
                                   ("GET", "/os-instance-actions", None)):
            response = api.request(method, f"/compute/v2.1/servers/{server_id}{path}", token=tokens["demo"],
                                   json=body, headers=V)
            assert response.status_code == 404, (method, path, response.text)
            assert server_id in response.json()["itemNotFound"]["message"]
        assert api.get(f"/compute/v2.1/servers/{server_id}", token=tokens["admin"], headers=V).status_code == 200
    finally:
        delete(api, tokens["admin"], server_id)


def test_actions_in_the_wrong_state_are_409_and_locks_hold(api, tokens, image_id):
    token = tokens["demo"]
    server_id = create(api, token, image_id).json()["server"]["id"]
    action = f"/compute/v2.1/servers/{server_id}/action"
    # Still building (no worker runs here): it can be neither started nor stopped.
    for body in ({"os-start": None}, {"os-stop": None}, {"pause": None}, {"reboot": {"type": "SOFT"}}):
        response = api.post(action, token=token, json=body, headers=V)
        assert response.status_code == 409, (body, response.text)
    assert api.post(action, token=token, json={"reboot": {"type": "GENTLE"}}, headers=V).status_code == 400
    assert api.post(action, token=token, json={"fly": None}, headers=V).status_code == 400

    assert api.post(action, token=token, json={"lock": None}, headers=V).status_code == 202
    shown = api.get(f"/compute/v2.1/servers/{server_id}", token=token, headers=V).json()["server"]
    assert shown["locked"] is True
    locked = api.delete(f"/compute/v2.1/servers/{server_id}", token=token, headers=V)
    assert locked.status_code == 409 and "locked" in locked.text
    assert api.post(action, token=token, json={"unlock": None}, headers=V).status_code == 202
    delete(api, token, server_id)
    assert api.get(f"/compute/v2.1/servers/{server_id}", token=token, headers=V).status_code == 404
    actions = api.get(f"/compute/v2.1/servers/{server_id}/os-instance-actions", token=token, headers=V).json()
    assert [row["action"] for row in actions["instanceActions"]] == ["delete", "unlock", "lock", "create"]


def test_progress_shows_in_novas_statuses_only(live_db, api, tokens, image_id):
    """`progress` is in a server only while its status is one Nova shows
    it in (BUILD, ACTIVE, REBUILD, RESIZE, VERIFY_RESIZE, MIGRATING)."""
    token = tokens["demo"]
    server_id = create(api, token, image_id).json()["server"]["id"]

    def shown():
        return api.get(f"/compute/v2.1/servers/{server_id}", token=token, headers=V).json()["server"]

    assert (shown()["status"], shown()["progress"]) == ("BUILD", 0)
    instance = Instance.objects.get(pk=server_id)
    instance.update_state(vm_state=VmState.STOPPED, task_state=None)
    assert shown()["status"] == "SHUTOFF" and "progress" not in shown()
    instance.update_state(vm_state=VmState.ACTIVE, progress=100)
    assert (shown()["status"], shown()["progress"]) == ("ACTIVE", 100)
    instance.begin("resize")
    assert (shown()["status"], shown()["progress"]) == ("RESIZE", 0)  # a resize starts from 0
    delete(api, token, server_id)


def test_metadata_replace_item_and_limit(api, tokens, image_id):
    token = tokens["demo"]
    server_id = create(api, token, image_id, metadata={"a": "1"}).json()["server"]["id"]
    base = f"/compute/v2.1/servers/{server_id}/metadata"
    try:
        assert api.put(base, token=token, json={"metadata": {"c": "3"}}, headers=V).json() == {"metadata": {"c": "3"}}
        assert api.put(base + "/d", token=token, json={"meta": {"d": "4"}}, headers=V).status_code == 200
        assert api.get(base, token=token, headers=V).json()["metadata"] == {"c": "3", "d": "4"}
        mismatch = api.put(base + "/d", token=token, json={"meta": {"e": "5"}}, headers=V)
        assert mismatch.status_code == 400 and "'meta'" in mismatch.text
        too_many = api.post(base, token=token, json={"metadata": {f"k{i}": "v" for i in range(200)}}, headers=V)
        assert too_many.status_code == 403 and "metadata_items" in too_many.text
        assert api.delete(base + "/nope", token=token, headers=V).status_code == 404
    finally:
        delete(api, token, server_id)


def test_an_unlimited_metadata_items_quota_takes_any_number_of_items(api, tokens, image_id):
    project_id = api.get("/identity/v3/auth/tokens", token=tokens["demo"], headers={
        "X-Subject-Token": tokens["demo"]}).json()["token"]["project"]["id"]
    quota_url = f"/compute/v2.1/os-quota-sets/{project_id}"
    many = {f"k{i}": "v" for i in range(200)}
    assert create(api, tokens["demo"], image_id, metadata=many).status_code == 403  # 128 by default
    assert api.put(quota_url, token=tokens["admin"], json={"quota_set": {"metadata_items": -1}},
                   headers=V).status_code == 200
    server_id = None
    try:
        answer = create(api, tokens["demo"], image_id, metadata=many)
        assert answer.status_code == 202, answer.text
        server_id = answer.json()["server"]["id"]
        shown = api.get(f"/compute/v2.1/servers/{server_id}", token=tokens["demo"], headers=V).json()["server"]
        assert shown["metadata"] == many
    finally:
        api.delete(quota_url, token=tokens["admin"], headers=V)
        if server_id:
            delete(api, tokens["demo"], server_id)


def test_metadata_update_and_show_through_the_cli(cloud, image_id):
    name = f"meta-{uuid.uuid4().hex[:6]}"
    cloud.openstack("server", "create", "--image", image_id, "--flavor", "m1.nano", "--nic", "none",
                    "--property", "a=1", "--user-data", __file__, name, "-f", "json")
    try:
        cloud.openstack("server", "set", "--property", "b=2", "--name", name + "-x", name)
        shown = cloud.openstack("server", "show", name + "-x", "-f", "json")
        assert shown["properties"] == {"a": "1", "b": "2"}
        assert shown["status"] == "BUILD" and shown["OS-EXT-STS:task_state"] == "scheduling"
        assert base64.b64decode(shown["OS-EXT-SRV-ATTR:user_data"]).startswith(b'"""The servers API')
        cloud.openstack("server", "unset", "--property", "a", name + "-x")
        assert cloud.openstack("server", "show", name + "-x", "-f", "json")["properties"] == {"b": "2"}
    finally:
        cloud.openstack("server", "delete", "--wait", name + "-x")


def test_list_filters_pagination_and_all_tenants(cloud, api, tokens, image_id):
    token = tokens["admin"]
    tag = uuid.uuid4().hex[:6]
    response = create(api, token, image_id, name=f"page-{tag}", min_count=5, max_count=5)
    assert response.status_code == 202
    demo_server = create(api, tokens["demo"], image_id, name=f"page-{tag}-demo").json()["server"]["id"]
    try:
        servers = api.get(f"/compute/v2.1/servers/detail?name=^page-{tag}-[0-9]$", token=token, headers=V).json()
        assert sorted(server["name"] for server in servers["servers"]) == [f"page-{tag}-{i}" for i in range(1, 6)]
        first = api.get(f"/compute/v2.1/servers?name=page-{tag}&limit=2", token=token, headers=V).json()
        assert len(first["servers"]) == 2 and first["servers_links"][0]["rel"] == "next"
        seen = [server["id"] for server in first["servers"]]
        next_url = first["servers_links"][0]["href"]
        while next_url:
            page = api.get(next_url.replace(cloud.url, ""), token=token, headers=V).json()
            seen += [server["id"] for server in page["servers"]]
            next_url = page.get("servers_links", [{}])[0].get("href")
        assert len(seen) == len(set(seen)) == 5

        assert api.get("/compute/v2.1/servers?status=BUILD&name=page-" + tag, token=token,
                       headers=V).json()["servers"]
        assert api.get("/compute/v2.1/servers?status=ACTIVE&name=page-" + tag, token=token,
                       headers=V).json()["servers"] == []
        assert api.get("/compute/v2.1/servers?status=FLYING", token=token, headers=V).status_code == 400
        assert api.get("/compute/v2.1/servers?name=(", token=token, headers=V).status_code == 400
        assert api.get("/compute/v2.1/servers?changes-since=yesterday", token=token,
                       headers=V).status_code == 400

        mine = {s["name"] for s in api.get(f"/compute/v2.1/servers?name=page-{tag}", token=token,
                                           headers=V).json()["servers"]}
        assert f"page-{tag}-demo" not in mine
        rows = cloud.openstack("server", "list", "--all-projects", "--name", f"page-{tag}", "-f", "json")
        assert {f"page-{tag}-demo", f"page-{tag}-1"} <= {row["Name"] for row in rows}
        # The CLI names the flavor (from the server, 2.47+) and the image (asking the image API).
        assert {row["Flavor"] for row in rows} == {"m1.nano"}
        assert {row["Status"] for row in rows} == {"BUILD"}
        image_name = cloud.openstack("image", "show", image_id, "-f", "json")["name"]
        assert {row["Image"] for row in rows} == {image_name}
        demo_view = {row["Name"] for row in cloud.openstack("server", "list", "--name", f"page-{tag}", "-f", "json",
                                                            cloud="stratus-demo")}
        assert demo_view == {f"page-{tag}-demo"}
        refused = api.get("/compute/v2.1/servers?all_tenants=1", token=tokens["demo"], headers=V)
        assert refused.status_code == 403

        later = (timezone.now() + timezone.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert api.get(f"/compute/v2.1/servers?changes-since={later}", token=token,
                       headers=V).json()["servers"] == []
    finally:
        for server in api.get(f"/compute/v2.1/servers?name=page-{tag}", token=token, headers=V).json()["servers"]:
            delete(api, token, server["id"])
        delete(api, tokens["demo"], demo_server)
    gone = api.get(f"/compute/v2.1/servers/detail?changes-since=2000-01-01T00:00:00Z&name=page-{tag}",
                   token=token, headers=V).json()["servers"]
    assert {server["status"] for server in gone} == {"DELETED"}
    deleted = api.get(f"/compute/v2.1/servers?deleted=true&all_tenants=1&name=page-{tag}", token=token,
                      headers=V).json()["servers"]
    assert len(deleted) == 6


def test_server_groups_and_usage(cloud, api, tokens, image_id):
    group = cloud.openstack("server", "group", "create", "--policy", "anti-affinity", f"g-{uuid.uuid4().hex[:6]}",
                            "-f", "json")
    created = api.post("/compute/v2.1/servers", token=tokens["admin"], headers=V, json={
        "server": {"name": "in-group", "imageRef": image_id, "flavorRef": "42", "networks": "none"},
        "os:scheduler_hints": {"group": group["id"]}})
    assert created.status_code == 202
    server_id = created.json()["server"]["id"]
    shown = cloud.openstack("server", "group", "show", group["id"], "-f", "json")
    assert shown["members"] == [server_id] or shown["members"] == server_id
    bad_group = api.post("/compute/v2.1/servers", token=tokens["admin"], headers=V, json={
        "server": {"name": "x", "imageRef": image_id, "flavorRef": "42", "networks": "none"},
        "os:scheduler_hints": {"group": str(uuid.uuid4())}})
    assert bad_group.status_code == 400 and "server group" in bad_group.text
    bad_policy = api.post("/compute/v2.1/os-server-groups", token=tokens["admin"], headers=V,
                          json={"server_group": {"name": "x", "policies": ["friends"]}})
    assert bad_policy.status_code == 400 and "'policies'" in bad_policy.text
    delete(api, tokens["admin"], server_id)
    cloud.openstack("server", "group", "delete", group["id"])

    usage = api.get("/compute/v2.1/os-simple-tenant-usage?detailed=1", token=tokens["admin"], headers=V)
    assert usage.status_code == 200 and isinstance(usage.json()["tenant_usages"], list)
    assert api.get("/compute/v2.1/os-simple-tenant-usage", token=tokens["demo"], headers=V).status_code == 403


@pytest.mark.django_db
def test_server_list_query_count_does_not_grow_with_servers(cloud, tokens):
    """In-process, so the queries are counted; the rows roll back."""
    client = Client()
    headers = {"HTTP_X_AUTH_TOKEN": tokens["admin"], "HTTP_OPENSTACK_API_VERSION": "compute 2.60"}
    project_id = client.get("/identity/v3/auth/tokens", HTTP_X_AUTH_TOKEN=tokens["admin"],
                            HTTP_X_SUBJECT_TOKEN=tokens["admin"]).json()["token"]["project"]["id"]

    def add(count, prefix):
        rows = [Instance(name=f"{prefix}-{index}", project_id=project_id, user_id="u", flavor_id_at_boot="42",
                         flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1,
                         vm_state=VmState.ERROR if index % 3 == 0 else VmState.ACTIVE)
                for index in range(count)]
        Instance.objects.bulk_create(rows)
        InstanceFault.objects.bulk_create([InstanceFault(instance=row, message="boom") for row in rows
                                           if row.vm_state == VmState.ERROR])

    def queries():
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/compute/v2.1/servers/detail?name=^qc-", **headers)
        assert response.status_code == 200
        return len(captured), len(response.json()["servers"])

    add(3, "qc-a")
    few, listed = queries()
    assert listed == 3
    add(60, "qc-b")
    many, listed = queries()
    assert listed == 63
    assert many == few, (few, many)
    faults = [s for s in client.get("/compute/v2.1/servers/detail?name=^qc-", **headers).json()["servers"]
              if s["status"] == "ERROR"]
    assert faults and all(server["fault"]["message"] == "boom" for server in faults)
