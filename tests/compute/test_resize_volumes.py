"""Resize of servers with volumes, through the real CLI, a real control
worker, two simulated nodes (libvirt's test driver) and a real volume
worker on a file back end: a resize that moves a server to another node
moves its attachments' host and connector with it (and a revert brings
them back), and detach works after; a server that boots from a volume
resizes as Nova's does (the root volume stays, its size too, only the
flavor changes)."""
import uuid

import pytest

from compute.models import Instance, VmState
from tests.compute import pipeline, test_resize
from tests.compute.test_resize import boot_on, flavor_name, only_enabled, show
from tests.volumes import conftest as volume_fixtures
from tests.volumes.conftest import wait_status
from volumes import attachments

# The fixtures of the resize and block storage tests, on the live database.
control, live_db, volume_worker = pipeline.control, pipeline.live_db, volume_fixtures.volume_worker
flavors, image, two_nodes = test_resize.flavors, test_resize.image, test_resize.two_nodes

pytestmark = pytest.mark.live


def hosts_of(server_id):
    """{volume id: (attached_host, the connector's host)} of the server's attachments."""
    return {str(found.volume_id): (found.attached_host, (found.connector or {}).get("host"))
            for found in attachments.attachments_of(server_id)}


def new_volume(cloud):
    volume = cloud.connect().block_storage.create_volume(size=1, name=f"rzv-{uuid.uuid4().hex[:6]}")
    return wait_status(cloud, volume.id, "available")["id"]


def test_a_resize_to_another_node_moves_the_attachments_and_detach_works_after(
        cloud, two_nodes, image, flavors, volume_worker):
    source, dest = list(two_nodes)
    server_id = boot_on(cloud, image, flavors["small"], source)
    volume_id = new_volume(cloud)
    cloud.openstack("server", "add", "volume", server_id, volume_id)
    assert hosts_of(server_id) == {volume_id: (source, source)}

    with only_enabled(dest):
        cloud.openstack("server", "resize", "--flavor", flavors["big"], "--wait", server_id)
    assert Instance.objects.get(pk=server_id).host == dest
    assert hosts_of(server_id) == {volume_id: (dest, dest)}
    assert cloud.openstack("volume", "show", volume_id, "-f", "json")["attachments"][0]["host_name"] == dest
    cloud.openstack("server", "resize", "revert", server_id)
    pipeline.wait_until(lambda: show(cloud, server_id)["status"] == "ACTIVE", timeout=60, message="reverted")
    assert hosts_of(server_id) == {volume_id: (source, source)}

    with only_enabled(dest):
        cloud.openstack("server", "resize", "--flavor", flavors["big"], "--wait", server_id)
    cloud.openstack("server", "resize", "confirm", server_id)
    assert show(cloud, server_id)["status"] == "ACTIVE"
    assert hosts_of(server_id) == {volume_id: (dest, dest)}
    cloud.openstack("server", "remove", "volume", server_id, volume_id)
    wait_status(cloud, volume_id, "available")
    assert hosts_of(server_id) == {}
    cloud.openstack("server", "delete", "--wait", server_id)
    cloud.connect().block_storage.delete_volume(volume_id)


def test_a_volume_backed_server_resizes_keeping_its_root_volume(cloud, two_nodes, image, flavors, volume_worker):
    source, dest = list(two_nodes)
    pipeline.unlimited_quota(cloud)
    with only_enabled(source):
        server = cloud.openstack("server", "create", "--boot-from-volume", "1", "--image", image, "--flavor",
                                 flavors["small"], "--nic", "none", "--wait", f"rzv-{uuid.uuid4().hex[:6]}",
                                 "-f", "json")
    server_id = server["id"]
    assert server["status"] == "ACTIVE" and Instance.objects.get(pk=server_id).host == source
    (root_id,) = hosts_of(server_id)

    # To a bigger flavor on another node: the flavor changes, the root volume is the same 1 GiB.
    with only_enabled(dest):
        cloud.openstack("server", "resize", "--flavor", flavors["big"], "--wait", server_id)
    shown = show(cloud, server_id)
    assert shown["status"] == "VERIFY_RESIZE" and flavor_name(shown).startswith("rz-big")
    instance = Instance.objects.get(pk=server_id)
    assert (instance.host, instance.vcpus, instance.memory_mb) == (dest, 2, 256)
    assert hosts_of(server_id) == {root_id: (dest, dest)}
    root = cloud.openstack("volume", "show", root_id, "-f", "json")
    assert root["size"] == 1 and root["status"] == "in-use" and root["attachments"][0]["device"] == "/dev/vda"
    cloud.openstack("server", "resize", "confirm", server_id)
    assert show(cloud, server_id)["status"] == "ACTIVE"

    # Back to the flavor with the smaller disk: allowed, the disk size does not apply to a root volume.
    cloud.openstack("server", "resize", "--flavor", flavors["small"], "--wait", server_id)
    cloud.openstack("server", "resize", "confirm", server_id)
    instance = Instance.objects.get(pk=server_id)
    assert (instance.vm_state, instance.vcpus, instance.memory_mb) == (VmState.ACTIVE, 1, 128)
    assert cloud.openstack("volume", "show", root_id, "-f", "json")["size"] == 1
    assert set(hosts_of(server_id)) == {root_id}

    cloud.openstack("server", "delete", "--wait", server_id)
    wait_status(cloud, root_id, "available")
    cloud.connect().block_storage.delete_volume(root_id)
