"""Shelve, shelveOffload and unshelve through the real CLI and API, a real
control worker and two simulated nodes sharing a nodes directory: shelving
stores the disk as "<name>-shelved" and (offloading at once, the default)
leaves the host with its claim; unshelving places the server again and
boots it from that image, which then goes. A second API server that never
offloads (STRATUS_SHELVED_OFFLOAD_TIME=-1) shows SHELVED, unshelve on the
same host, and an admin's shelveOffload. Refusals change nothing."""
import json
import subprocess
import uuid

import pytest
import requests

from compute.models import Claim, Instance, VmState
from images.models import Image
from tests.compute import pipeline
from tests.compute.nodes import wait_until
from tests.compute.pipeline import start_nodes, stop_nodes, unlimited_quota, upload_tiny_image, wait_settled
from tests.conftest import free_port, start_api_server, stop_api_server

live_db, control = pipeline.live_db, pipeline.control

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def two_nodes(cloud, control, tmp_path_factory):
    """Two simulated nodes sharing one nodes directory; {host: that directory}."""
    directory = tmp_path_factory.mktemp("shelve")
    worker, hosts = start_nodes(cloud, directory, 2, "shelve", STRATUS_IMAGE_CACHE_DIR=str(directory / "cache"))
    yield {host: directory / "nodes" for host in hosts}
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def keeping_api(cloud, tmp_path_factory):
    """The URL of an API server of the same cloud that never offloads."""
    port = free_port()
    server = start_api_server(port, tmp_path_factory.mktemp("keeping") / "api.log",
                              STRATUS_SHELVED_OFFLOAD_TIME="-1", STRATUS_PUBLIC_URL=cloud.url)
    yield f"http://127.0.0.1:{port}"
    stop_api_server(server)


def boot(cloud, image, project="stratus"):
    unlimited_quota(cloud)
    conn = cloud.connect(project)
    server_id = conn.compute.create_server(name=f"shelve-{uuid.uuid4().hex[:6]}", image_id=image, networks="none",
                                           flavor_id=conn.compute.find_flavor("m1.nano", ignore_missing=False).id).id
    assert wait_settled(cloud, [server_id])[server_id].status == "ACTIVE"
    return server_id


def settled(cloud, server_id, status):
    shown = cloud.openstack("server", "show", server_id, "-f", "json")
    return shown["status"] == status and not shown["OS-EXT-STS:task_state"] and shown


def action(api, server_id, body, token, base=None):
    if base is None:
        return api.post(f"/compute/v2.1/servers/{server_id}/action", json=body, token=token)
    return requests.post(f"{base}/compute/v2.1/servers/{server_id}/action", json=body,
                         headers={"X-Auth-Token": token}, timeout=30)


def test_shelve_offloads_and_unshelve_boots_the_server_again_from_its_shelved_image(cloud, two_nodes, image):
    server_id = boot(cloud, image)
    name = Instance.objects.get(pk=server_id).name
    source = Instance.objects.get(pk=server_id).host
    cloud.openstack("server", "shelve", "--wait", server_id)
    wait_until(lambda: settled(cloud, server_id, "SHELVED_OFFLOADED"), timeout=120, message="SHELVED_OFFLOADED")
    instance = Instance.objects.get(pk=server_id)
    assert (instance.host, instance.node_id, instance.vm_state) == (None, None, VmState.SHELVED_OFFLOADED)
    assert not Claim.objects.filter(instance_id=server_id).exists()
    assert not (two_nodes[source] / source / "instances" / server_id).exists()
    shelved = Image.objects.get(pk=instance.shelved_image_id)
    assert shelved.name == f"{name}-shelved" and shelved.status == "active"
    assert shelved.properties["instance_uuid"] == server_id and shelved.properties["image_type"] == "snapshot"
    events = cloud.openstack("server", "event", "show", server_id,
                             cloud.openstack("server", "event", "list", server_id, "-f", "json")[0]["Request ID"],
                             "-f", "json")["events"]
    assert [event["event"] for event in events] == ["compute_shelve_instance", "compute_shelve_offload_instance"]

    cloud.openstack("server", "unshelve", "--wait", server_id)
    shown = wait_until(lambda: settled(cloud, server_id, "ACTIVE"), timeout=120, message="ACTIVE after unshelve")
    instance = Instance.objects.get(pk=server_id)
    assert instance.host in two_nodes and shown["OS-EXT-SRV-ATTR:host"] == instance.host
    assert list(Claim.objects.filter(instance_id=server_id).values_list("node__host", flat=True)) == [instance.host]
    assert instance.shelved_image_id == "" and not Image.objects.filter(pk=shelved.pk).exists()
    # Its disk is made from the shelved copy, not from the image it first booted.
    disk = two_nodes[instance.host] / instance.host / "instances" / server_id / "disk"
    backing = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(disk)], capture_output=True,
                                        text=True, check=True).stdout)["backing-filename"]
    assert backing.endswith(f"/cache/{shelved.pk}")
    assert str(instance.image_id) == image
    assert [row["Action"] for row in cloud.openstack("server", "event", "list", server_id, "-f", "json")
            ] == ["unshelve", "shelve", "create"]

    # Deleting a shelved server deletes its shelved image too.
    cloud.openstack("server", "shelve", "--wait", server_id)
    wait_until(lambda: settled(cloud, server_id, "SHELVED_OFFLOADED"), timeout=120, message="offloaded again")
    image_id = Instance.objects.get(pk=server_id).shelved_image_id
    cloud.openstack("server", "delete", "--wait", server_id)
    wait_until(lambda: not Image.objects.filter(pk=image_id).exists(), timeout=30, message="the image deleted")


def test_without_offloading_shelved_servers_stay_and_an_admin_offloads_them(cloud, api, two_nodes, image,
                                                                            keeping_api):
    token = cloud.token()
    server_id = boot(cloud, image)
    host = Instance.objects.get(pk=server_id).host
    assert action(api, server_id, {"shelve": None}, token, base=keeping_api).status_code == 202
    wait_until(lambda: settled(cloud, server_id, "SHELVED"), timeout=120, message="SHELVED")
    instance = Instance.objects.get(pk=server_id)
    assert instance.host == host and Claim.objects.filter(instance_id=server_id).exists()
    # Unshelved where it is: the same domain started again.
    assert action(api, server_id, {"unshelve": None}, token, base=keeping_api).status_code == 202
    wait_until(lambda: settled(cloud, server_id, "ACTIVE"), timeout=120, message="ACTIVE")
    assert Instance.objects.get(pk=server_id).host == host

    assert action(api, server_id, {"shelve": None}, token, base=keeping_api).status_code == 202
    wait_until(lambda: settled(cloud, server_id, "SHELVED"), timeout=120, message="SHELVED again")
    member = action(api, server_id, {"shelveOffload": None}, cloud.token("stratus-demo"))
    assert member.status_code == 404  # not theirs at all
    assert action(api, server_id, {"shelveOffload": None}, token).status_code == 202
    wait_until(lambda: settled(cloud, server_id, "SHELVED_OFFLOADED"), timeout=120, message="offloaded")
    assert Instance.objects.get(pk=server_id).host is None
    cloud.openstack("server", "delete", "--wait", server_id)


def test_shelve_refusals_change_nothing(cloud, api, two_nodes, image):
    token, demo = cloud.token(), cloud.token("stratus-demo")
    server_id = boot(cloud, image, project="stratus-demo")
    assert action(api, server_id, {"unshelve": None}, demo).status_code == 409
    # {} is a body as good as null, as Nova takes it; an admin may shelve it.
    assert action(api, server_id, {"shelve": {}}, token).status_code == 202
    wait_until(lambda: settled(cloud, server_id, "SHELVED_OFFLOADED"), timeout=120, message="offloaded")
    again = action(api, server_id, {"shelve": None}, demo)
    assert again.status_code == 409, again.content
    refused = action(api, server_id, {"shelveOffload": None}, demo)
    assert refused.status_code in (403, 409), refused.content
    other = boot(cloud, image)
    assert action(api, other, {"shelve": None}, demo).status_code == 404
    assert Instance.objects.get(pk=other).vm_state == VmState.ACTIVE
    assert action(api, server_id, {"unshelve": None}, demo).status_code == 202
    wait_until(lambda: settled(cloud, server_id, "ACTIVE"), timeout=120, message="ACTIVE")
    cloud.openstack("server", "delete", "--wait", server_id)
    cloud.openstack("server", "delete", "--wait", other)
