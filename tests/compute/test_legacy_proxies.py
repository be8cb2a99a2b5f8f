"""APIs Nova still serves to old microversions, as Tempest's compute API
tests call them: the /images proxy (below 2.36) and its metadata (below
2.39), os-networks and os-tenant-networks (below 2.36), os-hosts (below
2.43), each 404 from that version on; and the /extensions list."""
import io
import uuid

import pytest
from django.utils import timezone

from compute.models import ComputeNode, Instance, Service
from tests.compute.pipeline import live_db  # noqa: F401  (committed rows the server sees)

pytestmark = pytest.mark.live


def version(minor):
    return {"OpenStack-API-Version": f"compute 2.{minor}"}


@pytest.fixture(scope="module")
def tokens(cloud):
    return {"admin": cloud.token("stratus"), "demo": cloud.token("stratus-demo")}


def glance_image(api, token, visibility="private"):
    """An active raw image of 1 KiB made through the Image API, as Tempest makes them."""
    response = api.post("/image/v2/images", token=token, json={
        "name": f"proxy-{uuid.uuid4().hex[:8]}", "disk_format": "raw", "container_format": "bare",
        "visibility": visibility})
    assert response.status_code == 201, response.text
    image_id = response.json()["id"]
    response = api.request("PUT", f"/image/v2/images/{image_id}/file", token=token, data=io.BytesIO(b"*" * 1024),
                           headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 204, response.text
    return image_id


def test_the_image_proxy_lists_shows_and_deletes_as_nova(cloud, api, tokens):
    demo = tokens["demo"]
    image_id = glance_image(api, demo)
    listed = api.get("/compute/v2.1/images", token=demo).json()["images"]
    summary = next(row for row in listed if row["id"] == image_id)
    assert set(summary) == {"id", "name", "links"}
    assert [link["rel"] for link in summary["links"]] == ["self", "bookmark", "alternate"]
    detail = api.get("/compute/v2.1/images/detail", token=demo, params={"status": "ACTIVE"}).json()["images"]
    shown = api.get(f"/compute/v2.1/images/{image_id}", token=demo).json()["image"]
    assert shown in detail
    assert shown["status"] == "ACTIVE" and shown["progress"] == 100 and shown["OS-EXT-IMG-SIZE:size"] == 1024
    assert {"minRam", "minDisk", "metadata", "created", "updated"} <= set(shown)
    by_name = api.get("/compute/v2.1/images", token=demo, params={"name": summary["name"]}).json()["images"]
    assert [row["id"] for row in by_name] == [image_id]
    assert len(api.get("/compute/v2.1/images", token=demo, params={"limit": 1}).json()["images"]) == 1
    # openstacksdk's compute image calls go through the same proxy.
    assert cloud.connect("stratus-demo").compute.get_image(image_id).status == "ACTIVE"
    # Gone from 2.36 on, as in Nova.
    for path in ("images", "images/detail", f"images/{image_id}"):
        assert api.get(f"/compute/v2.1/{path}", token=demo, headers=version(36)).status_code == 404
    assert api.get(f"/compute/v2.1/images/{image_id}", token=demo, headers=version(35)).status_code == 200
    assert api.delete(f"/compute/v2.1/images/{image_id}", token=demo).status_code == 204
    assert api.get(f"/compute/v2.1/images/{image_id}", token=demo).status_code == 404
    assert api.get(f"/image/v2/images/{image_id}", token=demo).status_code == 404


def test_another_projects_image_is_404_and_a_public_one_is_not_theirs_to_delete(api, tokens):
    private = glance_image(api, tokens["admin"])
    public = glance_image(api, tokens["admin"], visibility="public")
    try:
        for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/metadata"), ("PUT", "/metadata/k")):
            response = api.request(method, f"/compute/v2.1/images/{private}{path}", token=tokens["demo"],
                                   json={"meta": {"k": "v"}} if method == "PUT" else None)
            assert response.status_code == 404 and "itemNotFound" in response.json(), (method, path)
        assert api.get(f"/compute/v2.1/images/{public}", token=tokens["demo"]).status_code == 200
        response = api.delete(f"/compute/v2.1/images/{public}", token=tokens["demo"])
        assert response.status_code == 403 and "forbidden" in response.json()
        assert api.get("/compute/v2.1/images/nope", token=tokens["demo"]).status_code == 404
        # A trailing slash names an image with an empty id, as in Nova: none, for anyone.
        assert api.delete("/compute/v2.1/images/", token=tokens["demo"]).status_code == 404
    finally:
        for image_id in (private, public):
            api.delete(f"/image/v2/images/{image_id}", token=tokens["admin"])


def test_image_metadata_through_the_proxy(api, tokens):
    demo = tokens["demo"]
    image_id = glance_image(api, demo)
    meta = f"/compute/v2.1/images/{image_id}/metadata"
    try:
        response = api.put(meta, token=demo, json={"metadata": {"os_version": "value1", "os_distro": "value2"}})
        assert response.json() == {"metadata": {"os_version": "value1", "os_distro": "value2"}}, response.text
        response = api.post(meta, token=demo, json={"metadata": {"os_version": "value3", "architecture": "x86_64"}})
        assert response.json()["metadata"] == {"os_version": "value3", "os_distro": "value2",
                                               "architecture": "x86_64"}
        assert api.get(f"{meta}/os_distro", token=demo).json() == {"meta": {"os_distro": "value2"}}
        assert api.put(f"{meta}/os_distro", token=demo, json={"meta": {"os_distro": "alpha"}}).status_code == 200
        assert api.delete(f"{meta}/architecture", token=demo).status_code == 204
        assert api.get(meta, token=demo).json() == {"metadata": {"os_version": "value3", "os_distro": "alpha"}}
        # The properties are the image's own, as Glance shows them.
        glance = api.get(f"/image/v2/images/{image_id}", token=demo).json()
        assert glance["os_distro"] == "alpha" and "architecture" not in glance
        # Bad input names the field; a missing key is a 404; Glance's reserved names stay refused.
        response = api.put(f"{meta}/os_distro", token=demo, json={"meta": {"other": "x"}})
        assert response.status_code == 400 and "meta" in response.json()["badRequest"]["message"]
        assert api.get(f"{meta}/architecture", token=demo).status_code == 404
        assert api.delete(f"{meta}/architecture", token=demo).status_code == 404
        assert api.post(meta, token=demo, json={"metadata": {"os_glance_x": "1"}}).status_code == 403
        assert api.post(meta, token=demo, json={"metadata": {"k": 1}}).status_code == 400
        assert api.get(meta, token=demo, headers=version(38)).status_code == 200
        assert api.get(meta, token=demo, headers=version(39)).status_code == 404
    finally:
        api.delete(f"/image/v2/images/{image_id}", token=demo)


def test_networks_through_the_proxies(cloud, api, tokens):
    demo = tokens["demo"]
    network = cloud.openstack("network", "create", f"proxy-{uuid.uuid4().hex[:6]}", "-f", "json",
                              cloud="stratus-demo")
    private = cloud.openstack("network", "create", f"proxy-{uuid.uuid4().hex[:6]}", "-f", "json")
    try:
        listed = api.get("/compute/v2.1/os-tenant-networks", token=demo).json()["networks"]
        assert {"id": network["id"], "cidr": "None", "label": network["name"]} in listed
        assert private["id"] not in [row["id"] for row in listed]
        shown = api.get(f"/compute/v2.1/os-tenant-networks/{network['id']}", token=demo).json()["network"]
        assert shown == {"id": network["id"], "cidr": "None", "label": network["name"]}
        row = api.get(f"/compute/v2.1/os-networks/{network['id']}", token=demo).json()["network"]
        assert row["label"] == network["name"] and row["cidr"] is None and "bridge" not in row
        admin_row = api.get(f"/compute/v2.1/os-networks/{network['id']}", token=tokens["admin"]).json()["network"]
        assert "bridge" in admin_row and "project_id" in admin_row
        for path in ("os-networks", "os-tenant-networks"):
            response = api.get(f"/compute/v2.1/{path}/{private['id']}", token=demo)
            assert response.status_code == 404 and "itemNotFound" in response.json(), path
            assert api.get(f"/compute/v2.1/{path}", token=demo, headers=version(36)).status_code == 404
            assert api.post(f"/compute/v2.1/{path}", token=demo, json={"network": {"label": "x"}}).status_code == 410
    finally:
        cloud.openstack("network", "delete", network["id"], private["id"])


def test_os_hosts_below_2_43(live_db, api, tokens):
    host = f"oshosts-{uuid.uuid4().hex[:6]}"
    node = ComputeNode.objects.create(host=host, hypervisor_uri="test:///default", hypervisor_hostname=host,
                                      vcpus=8, memory_mb=4096, local_gb=40, vcpus_used=3, memory_mb_used=640,
                                      local_gb_used=3, availability_zone="oshosts-zone", heartbeat_at=timezone.now())
    Service.objects.create(host=host, binary=Service.COMPUTE_BINARY, availability_zone="oshosts-zone")
    for project, vcpus in (("p-one", 1), ("p-two", 2)):
        Instance.objects.create(name="oshosts", project_id=project, user_id="u", flavor_id_at_boot="1",
                                flavor_name="f", vcpus=vcpus, memory_mb=320, root_gb=1, ephemeral_gb=vcpus - 1,
                                host=host, node=node)
    admin = tokens["admin"]
    try:
        hosts = api.get("/compute/v2.1/os-hosts", token=admin).json()["hosts"]
        assert {"host_name": host, "service": "compute", "zone": "oshosts-zone"} in hosts
        in_zone = api.get("/compute/v2.1/os-hosts", token=admin, params={"zone": "oshosts-zone"}).json()["hosts"]
        assert in_zone == [{"host_name": host, "service": "compute", "zone": "oshosts-zone"}]
        assert api.get("/compute/v2.1/os-hosts", token=admin, params={"zone": "none"}).json() == {"hosts": []}
        shown = [row["resource"] for row in api.get(f"/compute/v2.1/os-hosts/{host}", token=admin).json()["host"]]
        assert [(row["project"], row["cpu"], row["memory_mb"], row["disk_gb"]) for row in shown] == [
            ("(total)", 8, 4096, 40), ("(used_now)", 3, 640, 3), ("(used_max)", 3, 640, 3),
            ("p-one", 1, 320, 1), ("p-two", 2, 320, 2)]
        assert api.get("/compute/v2.1/os-hosts/nowhere", token=admin).status_code == 404
        response = api.put(f"/compute/v2.1/os-hosts/{host}", token=admin, json={"status": "sideways"})
        assert response.status_code == 400 and "status" in response.json()["badRequest"]["message"]
        assert api.put(f"/compute/v2.1/os-hosts/{host}", token=admin, json={"status": "disable"}).status_code == 501
        assert api.get(f"/compute/v2.1/os-hosts/{host}/reboot", token=admin).status_code == 501
        assert api.get("/compute/v2.1/os-hosts", token=tokens["demo"]).status_code == 403
        assert api.get("/compute/v2.1/os-hosts", token=admin, headers=version(43)).status_code == 404
    finally:
        Instance.objects.filter(host=host).delete()
        Service.objects.filter(host=host).delete()
        node.delete()


def test_extensions_list_what_is_served(api, tokens):
    extensions = api.get("/compute/v2.1/extensions", token=tokens["demo"]).json()["extensions"]
    by_alias = {row["alias"]: row for row in extensions}
    assert by_alias["os-hosts"]["name"] == "Hosts"
    assert set(by_alias["os-consoles"]) == {"name", "alias", "description", "namespace", "updated", "links"}
    assert "os-fping" not in by_alias  # not served: not listed
    assert by_alias["os-evacuate"]["name"] == "Evacuate"
    shown = api.get("/compute/v2.1/extensions/os-consoles", token=tokens["demo"]).json()["extension"]
    assert shown == by_alias["os-consoles"]
    assert api.get("/compute/v2.1/extensions/os-fping", token=tokens["demo"]).status_code == 404
