"""Block storage seen from inside a real guest: one stratus-tiny server on
qemu:///system (TCG) boots from a volume made from its image (the stock
CLI's --boot-from-volume, plus a blank data volume mapped at boot as vdb),
its user data writes a marker onto the data volume and then waits for the
disk to grow; `openstack volume set --size` on the in-use volume (Cinder
3.42) grows it on the file back end and the node tells the running domain
(libvirt blockResize): the guest prints the new size. Deleting the server
leaves the data volume available, with the guest's marker in its file.
One guest for the module: a TCG boot takes minutes."""
import base64
import uuid

import pytest

from tests.compute import pipeline, test_node_qemu
from tests.compute.nodes import NodeWorker, forget_hosts, wait_until
from tests.compute.pipeline import ControlWorker, unlimited_quota
from tests.compute.test_real_boot import MARKER, guest_image_path
from tests.volumes.conftest import VolumeWorker, forget_backends
from volumes import quotas
from volumes.models import Backend, Volume

# The live database and qemu:///system, as the other real-guest tests have them.
live_db, hypervisor = pipeline.live_db, test_node_qemu.hypervisor

pytestmark = pytest.mark.live

TOKEN = uuid.uuid4().hex
GiB = 2**30
# Runs in the background of the guest's boot: writes the marker onto vdb,
# then reports the disk's size (512-byte sectors) each time it changes.
USER_DATA = f"""#!/bin/sh
(
while [ ! -b /dev/vdb ]; do sleep 1; done
echo "VOLTEST-{TOKEN}" | dd of=/dev/vdb bs=512 conv=fsync 2> /dev/null
echo "VOLTEST: wrote the marker, vdb has $(cat /sys/block/vdb/size) sectors"
old=$(cat /sys/block/vdb/size)
while [ "$(cat /sys/block/vdb/size)" = "$old" ]; do sleep 1; done
echo "VOLTEST: vdb grew to $(cat /sys/block/vdb/size) sectors"
) &
"""


@pytest.fixture(scope="module")
def stack(live_db, cloud, hypervisor, tmp_path_factory):
    """A control worker, a real node and a file back end of the module's own."""
    base = tmp_path_factory.mktemp("volguest")
    control = ControlWorker(base / "control.log").start()
    forget_backends(*Backend.objects.values_list("host", flat=True))
    volumes = VolumeWorker(base / "data", base / "volume.log", STRATUS_PUBLIC_URL=cloud.url,
                           STRATUS_IMAGE_CACHE_DIR=str(base / "image-cache")).start()
    host = f"volguest-{uuid.uuid4().hex[:6]}"
    node = NodeWorker(["--host", host, "--uri", "qemu:///system"], base / "node.log",
                      STRATUS_PUBLIC_URL=cloud.url, STRATUS_NODES_DIR=str(base / "nodes"),
                      STRATUS_SHUTDOWN_TIMEOUT="2").start()
    yield host, volumes
    node.stop()
    volumes.stop()
    control.stop()
    forget_hosts([host])
    forget_backends(volumes.host)


@pytest.fixture(scope="module")
def guest(cloud, stack, hypervisor):
    """The booted server (its `openstack server show`), deleted with the module."""
    host, _volumes = stack
    unlimited_quota(cloud)
    image = cloud.openstack("image", "create", "--disk-format", "qcow2", "--container-format", "bare",
                            "--file", guest_image_path(), "--public", f"tiny-{uuid.uuid4().hex[:6]}", "-f", "json")
    data = cloud.connect().block_storage.create_volume(size=1, name=f"volguest-data-{TOKEN[:6]}")
    wait_until(lambda: cloud.connect().block_storage.get_volume(data.id).status == "available", timeout=60,
               message="the data volume")
    name = f"volguest-{TOKEN[:6]}"
    compute = cloud.connect().compute
    flavor = compute.find_flavor("m1.tiny", ignore_missing=False).id
    answer = compute.post("/servers", json={"server": {
        "name": name, "imageRef": "", "flavorRef": flavor, "networks": "none", "config_drive": True,
        "user_data": base64.b64encode(USER_DATA.encode()).decode(),
        "block_device_mapping_v2": [
            {"boot_index": 0, "uuid": image["id"], "source_type": "image", "destination_type": "volume",
             "volume_size": 1, "delete_on_termination": True},
            {"boot_index": -1, "uuid": data.id, "source_type": "volume", "destination_type": "volume"}]}},
        headers={"OpenStack-API-Version": "compute 2.60"})
    assert answer.status_code == 202, answer.text
    server_id = answer.json()["server"]["id"]
    wait_until(lambda: compute.get_server(server_id).status in ("ACTIVE", "ERROR"), timeout=300, interval=1,
               message="the server to boot")
    server = cloud.openstack("server", "show", server_id, "-f", "json")
    yield server, data.id
    if compute.find_server(server_id):
        cloud.openstack("server", "delete", "--wait", server_id)


def console(cloud, server_id):
    return cloud.openstack("console", "log", "show", server_id, parse=False)


def test_the_guest_boots_from_its_volume_writes_its_data_volume_and_sees_it_grow(
        cloud, stack, guest, hypervisor):
    host, volumes = stack
    server, data_id = guest
    assert server["status"] == "ACTIVE", server.get("fault")
    assert server["OS-EXT-SRV-ATTR:host"] == host
    attached = {row["Device"]: row["Volume ID"] for row in cloud.openstack(
        "server", "volume", "list", server["id"], "-f", "json")}
    assert set(attached) == {"/dev/vda", "/dev/vdb"} and attached["/dev/vdb"] == data_id
    root_id = attached["/dev/vda"]
    # The domain has no local disk: its vda is the root volume's file.
    disks = hypervisor.lookupByName(f"instance-{server['id']}").XMLDesc()
    assert f"volume-{root_id}" in disks and "/disk'" not in disks

    wait_until(lambda: MARKER in console(cloud, server["id"]), timeout=480, interval=3,
               message="the guest's boot marker (booted from its volume)")
    wait_until(lambda: "VOLTEST: wrote the marker" in console(cloud, server["id"]), timeout=120, interval=2,
               message="the guest to write its data volume")
    assert "vdb has 2097152 sectors" in console(cloud, server["id"])

    # Extend while attached (Cinder 3.42): the row, the quota usage and the guest follow.
    project = Volume.objects.get(pk=data_id).project_id
    used = quotas.usage_of(project)["gigabytes"]
    cloud.openstack("--os-volume-api-version", "3.42", "volume", "set", "--size", "2", data_id)
    wait_until(lambda: Volume.objects.filter(pk=data_id, status="in-use", size=2).exists(), timeout=60,
               message="the volume to be extended")
    assert quotas.usage_of(project)["gigabytes"] == used + 1
    wait_until(lambda: "VOLTEST: vdb grew to 4194304 sectors" in console(cloud, server["id"]), timeout=120,
               interval=2, message="the guest to see its disk grow")

    # Deleted, the server leaves its data volume available with the guest's marker on it,
    # and its root volume (delete_on_termination) goes.
    cloud.openstack("server", "delete", "--wait", server["id"])
    wait_until(lambda: Volume.objects.get(pk=data_id).status == "available", timeout=60, message="detached")
    with open(volumes.directory / f"volume-{data_id}", "rb") as file:
        assert file.read(512).startswith(f"VOLTEST-{TOKEN}\n".encode())
    assert (volumes.directory / f"volume-{data_id}").stat().st_size == 2 * GiB
    wait_until(lambda: not Volume.objects.filter(pk=root_id).exists(), timeout=60, message="root volume deleted")
    cloud.connect().block_storage.delete_volume(data_id)
