"""Block storage seen from inside a real guest: one stratus-tiny server on
qemu:///system (TCG) boots from a volume made from its image (the stock
CLI's --boot-from-volume, plus a blank data volume mapped at boot as vdb),
its user data writes a marker onto the data volume and then waits for the
disk to grow; `openstack volume set --size` on the in-use volume (Cinder
3.42) grows it on the file back end and the node tells the running domain
(libvirt blockResize): the guest prints the new size. Then `openstack
server add volume` hot-plugs a third volume into the running guest, which
sees vdc appear and writes a marker onto it; `server remove volume`
unplugs it (the guest sees vdc go) and the volume is available; attached
to another server (on a simulated node), the guest's marker is there
through that attachment. Deleting the server leaves the data volume
available, with the guest's marker in its file. One guest for the module:
a TCG boot takes minutes."""
import base64
import uuid
import xml.etree.ElementTree as ET

import libvirt
import pytest

from tests.compute import pipeline, test_node_qemu
from tests.compute.nodes import NodeWorker, forget_hosts, wait_until
from tests.compute.pipeline import ControlWorker, start_nodes, stop_nodes, unlimited_quota
from tests.compute.test_real_boot import MARKER, guest_image_path
from tests.volumes.conftest import VolumeWorker, forget_backends, wait_status
from volumes import attachments, quotas
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
(
while [ ! -b /dev/vdc ]; do sleep 1; done
echo "HOTPLUG-{TOKEN}" | dd of=/dev/vdc bs=512 conv=fsync 2> /dev/null
echo "VOLTEST: vdc appeared, $(cat /sys/block/vdc/size) sectors, wrote its marker"
while [ -b /dev/vdc ]; do sleep 1; done
echo "VOLTEST: vdc went away"
) &
"""


@pytest.fixture(scope="module")
def volume_backend(live_db, cloud, tmp_path_factory):
    """The module's only live back end: a file one of its own (a module
    that defines its own `volume_backend` runs the same guest on another)."""
    forget_backends(*Backend.objects.values_list("host", flat=True))
    base = tmp_path_factory.mktemp("volguest-file")
    volumes = VolumeWorker(base / "data", base / "volume.log", STRATUS_PUBLIC_URL=cloud.url,
                           STRATUS_IMAGE_CACHE_DIR=str(base / "image-cache")).start()
    yield volumes
    volumes.stop()
    forget_backends(volumes.host)


@pytest.fixture(scope="module")
def stack(live_db, cloud, hypervisor, volume_backend, tmp_path_factory):
    """A control worker, a real node and the module's volume back end."""
    base = tmp_path_factory.mktemp("volguest")
    control = ControlWorker(base / "control.log").start()
    host = f"volguest-{uuid.uuid4().hex[:6]}"
    node = NodeWorker(["--host", host, "--uri", "qemu:///system"], base / "node.log",
                      STRATUS_PUBLIC_URL=cloud.url, STRATUS_NODES_DIR=str(base / "nodes"),
                      STRATUS_SHUTDOWN_TIMEOUT="2").start()
    yield host, volume_backend
    node.stop()
    control.stop()
    forget_hosts([host])


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
    yield server, data.id, image["id"]
    if compute.find_server(server_id):
        cloud.openstack("server", "delete", "--wait", server_id)


def console(cloud, server_id):
    return cloud.openstack("console", "log", "show", server_id, parse=False)


def test_the_guest_boots_from_its_volume_writes_its_data_volume_sees_it_grow_and_takes_a_hot_plugged_one(
        cloud, stack, guest, hypervisor, tmp_path):
    host, volumes = stack
    server, data_id, image_id = guest
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

    hot_plug_write_unplug_and_read_on_another_server(cloud, server, image_id, hypervisor, tmp_path)

    # Deleted, the server leaves its data volume available with the guest's marker on it,
    # and its root volume (delete_on_termination) goes.
    cloud.openstack("server", "delete", "--wait", server["id"])
    wait_until(lambda: Volume.objects.get(pk=data_id).status == "available", timeout=60, message="detached")
    with open(volumes.directory / f"volume-{data_id}", "rb") as file:
        assert file.read(512).startswith(f"VOLTEST-{TOKEN}\n".encode())
    assert (volumes.directory / f"volume-{data_id}").stat().st_size == 2 * GiB
    wait_until(lambda: not Volume.objects.filter(pk=root_id).exists(), timeout=60, message="root volume deleted")
    cloud.connect().block_storage.delete_volume(data_id)


def read_file_volume(info, length):
    """The first bytes of a file volume, through its connection info."""
    with open(info["data"]["device_path"], "rb") as file:
        return file.read(length)


def hot_plug_write_unplug_and_read_on_another_server(cloud, server, image_id, hypervisor, tmp_path,
                                                     read_volume=read_file_volume):
    """`server add volume` into the running guest, which writes onto the new
    disk; `server remove volume` out of it; then the same volume on a
    server of a simulated node carries the guest's bytes, read through
    that attachment's connection info by `read_volume(info, length)`."""
    domain = hypervisor.lookupByName(f"instance-{server['id']}")
    storage = cloud.connect().block_storage
    hot = storage.create_volume(size=1, name=f"volguest-hot-{TOKEN[:6]}")
    wait_status(cloud, hot.id, "available")
    cloud.openstack("server", "add", "volume", server["id"], hot.id)
    assert wait_status(cloud, hot.id, "in-use")["attachments"][0]["device"] == "/dev/vdc"
    assert "vdc" in disk_targets(domain.XMLDesc())
    wait_until(lambda: "VOLTEST: vdc appeared, 2097152 sectors, wrote its marker" in console(cloud, server["id"]),
               timeout=120, interval=2, message="the guest to see the hot-plugged disk and write onto it")

    cloud.openstack("server", "remove", "volume", server["id"], hot.id)
    wait_status(cloud, hot.id, "available", timeout=90)
    assert "vdc" not in disk_targets(domain.XMLDesc())
    assert "vdc" not in disk_targets(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    wait_until(lambda: "VOLTEST: vdc went away" in console(cloud, server["id"]), timeout=60, interval=2,
               message="the guest to see the disk unplugged")
    listed = cloud.openstack("server", "volume", "list", server["id"], "-f", "json")
    assert hot.id not in {row["Volume ID"] for row in listed}

    # Another server, on a simulated node of its own (its roomy memory wins the weighing).
    worker, (other_host,) = start_nodes(cloud, tmp_path, 1, "volsim", memory_mb=10**7)
    try:
        other = cloud.openstack("server", "create", "--image", image_id, "--flavor", "m1.tiny", "--nic", "none",
                                "--wait", f"volguest-other-{TOKEN[:6]}", "-f", "json")
        assert other["OS-EXT-SRV-ATTR:host"] == other_host
        cloud.openstack("server", "add", "volume", other["id"], hot.id)
        wait_status(cloud, hot.id, "in-use")
        (attachment,) = attachments.attachments_of(other["id"])
        assert attachment.attached_host == other_host
        info = attachments.connection_info(attachment.volume, attachment)
        assert read_volume(info, 512).startswith(f"HOTPLUG-{TOKEN}\n".encode())
        cloud.openstack("server", "delete", "--wait", other["id"])
    finally:
        stop_nodes(worker, [other_host])
    wait_status(cloud, hot.id, "available")
    storage.delete_volume(hot.id)


def disk_targets(xml):
    return [target.get("dev") for target in ET.fromstring(xml).findall("devices/disk/target")]
