"""A snapshot of a real running guest (qemu:///system, TCG): stratus-tiny's
user data writes a marker onto its root disk past the image's end, `openstack
server image create --wait` snapshots it while it runs (paused for the copy,
running again after), and a server booted from the snapshot boots and finds
the marker on its own disk."""
import uuid

import libvirt
import pytest

from tests.compute import pipeline, test_node_qemu, test_real_boot
from tests.compute.nodes import wait_until
from tests.compute.pipeline import unlimited_quota
from tests.compute.test_real_boot import MARKER, guest_image_path

# The live database, qemu:///system and one real node for the module, as
# the other real-guest tests have them.
live_db, hypervisor, real_node = pipeline.live_db, test_node_qemu.hypervisor, test_real_boot.real_node

pytestmark = pytest.mark.live

TOKEN = f"SNAPTEST-{uuid.uuid4().hex}"
# 40 MiB into vda: past the 32 MiB image, inside m1.nano's 1 GiB disk.
WRITER = f"""#!/bin/sh
echo "{TOKEN}" | dd of=/dev/vda bs=1M seek=40 conv=fsync 2> /dev/null && echo "SNAPTEST: wrote the marker"
"""
READER = """#!/bin/sh
found=$(dd if=/dev/vda bs=1M skip=40 count=1 2> /dev/null | head -c 41 | tr -cd 'A-Za-z0-9-')
echo "SNAPTEST: found [$found]"
"""


def console(cloud, name):
    return cloud.openstack("console", "log", "show", name, parse=False)


def boot(cloud, image_id, user_data_path, name):
    return cloud.openstack("server", "create", "--image", image_id, "--flavor", "m1.nano", "--nic", "none",
                           "--config-drive", "true", "--user-data", str(user_data_path), "--wait", name, "-f", "json")


def test_a_snapshot_of_a_running_guest_boots_with_what_the_guest_wrote(cloud, real_node, hypervisor, tmp_path):
    unlimited_quota(cloud)
    image = cloud.openstack("image", "create", "--disk-format", "qcow2", "--container-format", "bare",
                            "--file", guest_image_path(), f"tiny-{uuid.uuid4().hex[:6]}", "-f", "json")
    writer, reader = tmp_path / "writer.sh", tmp_path / "reader.sh"
    writer.write_text(WRITER)
    reader.write_text(READER)
    name = f"snapguest-{uuid.uuid4().hex[:6]}"
    server = boot(cloud, image["id"], writer, name)
    assert server["status"] == "ACTIVE" and server["OS-EXT-SRV-ATTR:host"] == real_node
    wait_until(lambda: "SNAPTEST: wrote the marker" in console(cloud, name), timeout=420, interval=3,
               message="the guest to write its marker")

    snapshot = cloud.openstack("server", "image", "create", "--name", f"{name}-snap", "--wait", name, "-f", "json")
    assert snapshot["status"] == "active"
    # The guest was paused for the copy only: it runs on, and is idle.
    domain = hypervisor.lookupByName(f"instance-{server['id']}")
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    shown = cloud.openstack("server", "show", name, "-f", "json")
    assert shown["status"] == "ACTIVE" and not shown["OS-EXT-STS:task_state"]
    cloud.openstack("server", "delete", "--wait", name)

    copy = f"{name}-copy"
    booted = boot(cloud, snapshot["id"], reader, copy)
    assert booted["status"] == "ACTIVE"
    wait_until(lambda: "SNAPTEST: found [" in console(cloud, copy), timeout=420, interval=3,
               message="the guest booted from the snapshot to read its disk")
    log = console(cloud, copy)
    assert MARKER in log and f"SNAPTEST: found [{TOKEN}]" in log, log[-2000:]
    cloud.openstack("server", "delete", "--wait", copy)
