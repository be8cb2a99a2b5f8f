"""The whole path on the real hypervisor: `openstack server create --wait`
through the API, the control worker's scheduling and a node worker on
qemu:///system booting stratus-tiny to its console marker; then stop,
start, hard reboot and delete reach the libvirt domain."""
import uuid

import libvirt
import pytest
from django.conf import settings
from django.core.management import call_command

from compute.models import ComputeNode
from tests.compute.nodes import NodeWorker, forget_hosts, wait_until
from tests.compute.pipeline import ControlWorker, live_db, unlimited_quota  # noqa: F401  (live_db is a fixture)
from tests.compute.test_node_qemu import hypervisor  # noqa: F401  (a fixture)

pytestmark = pytest.mark.live

MARKER = "STRATUS-GUEST: booted"


def guest_image_path():
    for path in (settings.GUEST_IMAGE_PATH, settings.BASE_DIR / "var" / "images" / "stratus-tiny.qcow2"):
        if path.exists():
            return path
    try:
        call_command("build_guest_image")
    except Exception as error:  # noqa: BLE001  (no image, no test: say why)
        pytest.skip(f"cannot build the stratus-tiny image here: {error}")
    return settings.GUEST_IMAGE_PATH


@pytest.fixture(scope="module")
def real_node(live_db, cloud, hypervisor, tmp_path_factory):
    base = tmp_path_factory.mktemp("real")
    control = ControlWorker(base / "control.log").start()
    host = f"real-{uuid.uuid4().hex[:6]}"
    worker = NodeWorker(["--host", host, "--uri", "qemu:///system"], base / "node.log",
                        STRATUS_PUBLIC_URL=cloud.url, STRATUS_NODES_DIR=str(base / "nodes"),
                        STRATUS_SHUTDOWN_TIMEOUT="2").start()
    yield host
    worker.stop()
    control.stop()
    forget_hosts([host])


def boot_tiny(cloud, flavor):
    """(name, server) of a stratus-tiny server booted with `flavor` through the CLI."""
    unlimited_quota(cloud)
    image = cloud.openstack("image", "create", "--disk-format", "qcow2", "--container-format", "bare",
                            "--file", guest_image_path(), "--public", f"tiny-{uuid.uuid4().hex[:6]}", "-f", "json")
    name = f"real-{uuid.uuid4().hex[:6]}"
    return name, cloud.openstack("server", "create", "--image", image["id"], "--flavor", flavor, "--nic", "none",
                                 "--wait", name, "-f", "json")


def status(cloud, name):
    shown = cloud.openstack("server", "show", name, "-f", "json")
    return shown["status"] if not shown["OS-EXT-STS:task_state"] else None


def test_boot_stratus_tiny_on_qemu_and_drive_it(cloud, real_node, hypervisor):
    assert set(ComputeNode.objects.values_list("host", flat=True)) == {real_node}
    # With no tunnel address set, the node tunnels from its management
    # address, so project (VXLAN) networks can be plugged on it.
    (agent,) = cloud.openstack("network", "agent", "list", "--host", real_node, "--agent-type", "linux-bridge",
                               "-f", "json")
    shown = cloud.openstack("network", "agent", "show", agent["ID"], "-f", "json")
    assert shown["configuration"]["tunneling_ip"] == "127.0.0.1", shown
    name, server = boot_tiny(cloud, "m1.tiny")
    assert server["status"] == "ACTIVE" and server["OS-EXT-SRV-ATTR:host"] == real_node
    domain = hypervisor.lookupByName(f"instance-{server['id']}")
    assert domain.isActive()

    wait_until(lambda: MARKER in cloud.openstack("console", "log", "show", name, parse=False), timeout=300,
               interval=3, message="the guest's boot marker on its console")

    console = cloud.openstack("console", "url", "show", "--novnc", name, "-f", "json")
    assert console["type"] == "novnc" and "token" in console["url"]
    refused = cloud.openstack("console", "url", "show", "--spice", name, expect_fail=True)
    assert "spice" in refused.stderr

    cloud.openstack("server", "stop", name)
    wait_until(lambda: status(cloud, name) == "SHUTOFF", timeout=120, interval=1, message="SHUTOFF")
    assert not domain.isActive()
    cloud.openstack("server", "start", name)
    wait_until(lambda: status(cloud, name) == "ACTIVE", timeout=120, interval=1, message="ACTIVE again")
    assert domain.isActive()
    cloud.openstack("server", "reboot", "--hard", "--wait", name)
    assert hypervisor.lookupByName(f"instance-{server['id']}").isActive()

    cloud.openstack("server", "delete", "--wait", name)
    with pytest.raises(libvirt.libvirtError):
        hypervisor.lookupByName(f"instance-{server['id']}")


def test_resize_on_qemu_boots_the_guest_with_the_new_flavor_and_revert_brings_the_old_back(
        cloud, real_node, hypervisor):
    name, server = boot_tiny(cloud, "m1.nano")
    domain_name = f"instance-{server['id']}"
    assert hypervisor.lookupByName(domain_name).maxMemory() == 128 * 1024
    wait_until(lambda: MARKER in cloud.openstack("console", "log", "show", name, parse=False), timeout=300,
               interval=3, message="the first boot's marker")

    cloud.openstack("server", "resize", "--flavor", "m1.tiny", "--wait", name)
    assert status(cloud, name) == "VERIFY_RESIZE"
    domain = hypervisor.lookupByName(domain_name)
    assert domain.isActive() and domain.maxMemory() == 512 * 1024
    # A new console log: the marker again means the guest booted with the new flavor.
    wait_until(lambda: MARKER in cloud.openstack("console", "log", "show", name, parse=False), timeout=300,
               interval=3, message="the resized guest's boot marker")

    cloud.openstack("server", "resize", "revert", name)
    wait_until(lambda: status(cloud, name) == "ACTIVE", timeout=300, interval=1, message="ACTIVE after revert")
    domain = hypervisor.lookupByName(domain_name)
    assert domain.isActive() and domain.maxMemory() == 128 * 1024
    cloud.openstack("server", "delete", "--wait", name)
