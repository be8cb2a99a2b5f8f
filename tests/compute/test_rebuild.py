"""Rebuild through the real API, a real control worker and a simulated
node (libvirt's test driver): a new disk from the (possibly new) image, a
new domain, recorded as instance action `rebuild`."""
import subprocess
import uuid

import pytest

from compute.models import Instance, VmState
from tests.compute.nodes import wait_until
from tests.compute.pipeline import (  # noqa: F401  (control and live_db are fixtures)
    boot_at_once, control, live_db, start_nodes, stop_nodes, unlimited_quota, upload_tiny_image, wait_settled,
)

pytestmark = pytest.mark.live

# host -> the directory its simulated node keeps instance disks in
NODES_DIRS = {}


@pytest.fixture(scope="module")
def node(cloud, control, tmp_path_factory):
    directory = tmp_path_factory.mktemp("rebuild")
    worker, hosts = start_nodes(cloud, directory, 1, "rebuild")
    NODES_DIRS[hosts[0]] = directory / "nodes"
    yield hosts[0]
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def images(cloud, tmp_path_factory):
    return [upload_tiny_image(cloud, tmp_path_factory.mktemp("image")) for _ in range(2)]


def boot(cloud, image_id, count=1):
    unlimited_quota(cloud)
    ids = boot_at_once(cloud, [f"rb-{uuid.uuid4().hex[:6]}" for _ in range(count)], image_id, "m1.nano")
    servers = wait_settled(cloud, ids)
    assert {server.status for server in servers.values()} == {"ACTIVE"}
    return ids


def status_of(cloud, server_id):
    return cloud.openstack("server", "show", server_id, "-f", "json")["status"]


def rebuild(cloud, api, server_id, body, token=None):
    return api.post(f"/compute/v2.1/servers/{server_id}/action", json={"rebuild": body},
                    token=token or cloud.token())


def test_server_rebuild_with_a_new_image_through_the_cli(cloud, node, images):
    server_id, = boot(cloud, images[0])
    launched = Instance.objects.get(pk=server_id).launched_at
    assert "Complete" in cloud.openstack("server", "rebuild", "--image", images[1], "--wait", server_id)
    shown = cloud.openstack("server", "show", server_id, "-f", "json")
    assert shown["status"] == "ACTIVE" and images[1] in str(shown["image"])
    instance = Instance.objects.get(pk=server_id)
    assert instance.task_state is None and instance.vm_state == VmState.ACTIVE and instance.launched_at > launched
    actions = cloud.openstack("server", "event", "list", server_id, "-f", "json")
    assert [action["Action"] for action in actions] == ["rebuild", "create"]
    events = cloud.openstack("server", "event", "show", server_id, actions[0]["Request ID"], "-f", "json")["events"]
    assert [(event["event"], event["result"]) for event in events] == [("compute_rebuild_instance", "Success")]
    # The new disk is an overlay on the new image in the node's cache.
    disk = NODES_DIRS[node] / node / "instances" / server_id / "disk"
    info = subprocess.run(["qemu-img", "info", "--output=json", str(disk)], capture_output=True, text=True,
                          check=True).stdout
    assert images[1] in info


def test_rebuild_of_a_shutoff_server_with_name_and_metadata(cloud, api, node, images):
    server_id, = boot(cloud, images[0])
    cloud.openstack("server", "stop", server_id)
    wait_until(lambda: status_of(cloud, server_id) == "SHUTOFF", timeout=60, message="SHUTOFF")
    response = rebuild(cloud, api, server_id, {"imageRef": images[0], "name": "rebuilt", "metadata": {"k": "v"}})
    assert response.status_code == 202, response.content
    assert response.json()["server"]["status"] == "REBUILD"
    # A stopped server is rebuilt stopped, as Nova leaves it.
    wait_until(lambda: status_of(cloud, server_id) == "SHUTOFF", timeout=60, message="SHUTOFF after rebuild")
    shown = cloud.openstack("server", "show", server_id, "-f", "json")
    assert shown["name"] == "rebuilt" and shown["properties"] == {"k": "v"}
    assert not shown["OS-EXT-STS:task_state"] and shown["OS-EXT-STS:power_state"] in ("Shutdown", 4)
    cloud.openstack("server", "start", server_id)
    wait_until(lambda: status_of(cloud, server_id) == "ACTIVE", timeout=60, message="ACTIVE once started")


def test_rebuild_refuses_bad_images_wrong_states_and_locks(cloud, api, node, images, tmp_path):
    server_id, = boot(cloud, images[0])
    before = Instance.objects.get(pk=server_id)

    missing = rebuild(cloud, api, server_id, {"imageRef": str(uuid.uuid4())})
    assert missing.status_code == 400 and "could not be found" in missing.text
    no_image = rebuild(cloud, api, server_id, {"name": "x"})
    assert no_image.status_code == 400 and "imageRef" in no_image.text

    path = tmp_path / "big.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    big = cloud.openstack("image", "create", f"big-{uuid.uuid4().hex[:6]}", "--file", str(path),
                          "--disk-format", "qcow2", "--container-format", "bare", "--public", "--min-disk", "500",
                          "-f", "json")["id"]
    too_big = rebuild(cloud, api, server_id, {"imageRef": big})
    assert too_big.status_code == 400 and "too small" in too_big.text

    bad_name = rebuild(cloud, api, server_id, {"imageRef": images[1], "name": 5})
    assert bad_name.status_code == 400 and "name" in bad_name.text

    other_project = rebuild(cloud, api, server_id, {"imageRef": images[1]}, token=cloud.token("stratus-demo"))
    assert other_project.status_code == 404

    cloud.openstack("server", "pause", server_id)
    wait_until(lambda: status_of(cloud, server_id) == "PAUSED", timeout=60, message="PAUSED")
    paused = rebuild(cloud, api, server_id, {"imageRef": images[1]})
    assert paused.status_code == 409

    after = Instance.objects.get(pk=server_id)
    assert (after.image_id, after.name, after.metadata) == (before.image_id, before.name, before.metadata)
    assert [action["Action"] for action in cloud.openstack("server", "event", "list", server_id, "-f", "json")
            ] == ["pause", "create"]


def test_a_locked_server_is_rebuilt_only_by_an_admin(cloud, api, node, images):
    demo = cloud.connect("stratus-demo")
    server_id = demo.compute.create_server(name=f"rb-{uuid.uuid4().hex[:6]}", image_id=images[0],
                                           flavor_id=demo.compute.find_flavor("m1.nano", ignore_missing=False).id,
                                           networks="none").id
    assert wait_settled(cloud, [server_id])[server_id].status == "ACTIVE"
    Instance.objects.filter(pk=server_id).update(locked=True, locked_by="admin")
    refused = rebuild(cloud, api, server_id, {"imageRef": images[1]}, token=cloud.token("stratus-demo"))
    assert refused.status_code == 409 and "locked" in refused.text
    assert Instance.objects.get(pk=server_id).task_state is None
    allowed = rebuild(cloud, api, server_id, {"imageRef": images[1]})
    assert allowed.status_code == 202, allowed.content
    wait_until(lambda: Instance.objects.get(pk=server_id).task_state is None, timeout=60, message="rebuilt")
    assert Instance.objects.get(pk=server_id).image_id == images[1]
