"""A node worker on the real hypervisor (qemu:///system; TCG here): an
instance boots from the stratus-tiny image through the image cache to its
console marker, power actions reach the domain, and the power sync notices
a domain stopped behind Stratus's back."""
import uuid
from urllib.parse import parse_qs, unquote, urlparse

import libvirt
import pytest
from django.conf import settings
from django.core.management import call_command

from compute.console.tokens import novnc_url
from compute.models import Instance, PowerState, VmState
from compute.node import tasks
from tests.compute.nodes import NodeWorker, forget_hosts, make_instance, wait_until
from tests.compute.test_console import WebSocketClient, proxy, rfb_handshake  # noqa: F401  (proxy: a fixture)

pytestmark = pytest.mark.live
MARKER = "STRATUS-GUEST: booted"
READY = "STRATUS-GUEST: ssh ready"


@pytest.fixture(scope="module")
def hypervisor():
    try:
        conn = libvirt.open("qemu:///system")
    except libvirt.libvirtError as error:
        pytest.skip(f"qemu:///system is not available: {error}")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def guest_image(cloud, hypervisor):
    """stratus-tiny uploaded through the Image API under a name of its own."""
    if not settings.GUEST_IMAGE_PATH.exists():
        try:
            call_command("build_guest_image")
        except Exception as error:  # noqa: BLE001  (no image, no test: say why)
            pytest.skip(f"cannot build the stratus-tiny image here: {error}")
    name = f"nodetest-tiny-{uuid.uuid4().hex[:6]}"
    image = cloud.openstack("image", "create", "--disk-format", "qcow2", "--container-format", "bare",
                            "--file", settings.GUEST_IMAGE_PATH, name, "-f", "json")
    yield image["id"]
    cloud.openstack("image", "delete", image["id"])


@pytest.fixture
def qemu_node(cloud, guest_image, django_db_blocker, tmp_path):
    host = f"nodetest-qemu-{uuid.uuid4().hex[:6]}"
    worker = NodeWorker(["--host", host, "--uri", "qemu:///system"], tmp_path / "worker.log",
                        STRATUS_PUBLIC_URL=cloud.url, STRATUS_NODES_DIR=str(tmp_path / "nodes"),
                        STRATUS_POWER_SYNC_INTERVAL="0.5", STRATUS_SHUTDOWN_TIMEOUT="1")
    with django_db_blocker.unblock():
        worker.start()
        yield host
        worker.stop()
        for instance_id in Instance.objects.filter(host=host).values_list("pk", flat=True):
            _destroy_domain(f"instance-{instance_id}")
        forget_hosts([host])


def _destroy_domain(name):
    conn = libvirt.open("qemu:///system")
    try:
        dom = conn.lookupByName(name)
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    except libvirt.libvirtError:
        pass
    finally:
        conn.close()


def run(task, instance, host, *args):
    return task.apply_async(args=[str(instance.pk), *args], queue=f"compute.{host}").get(timeout=180)


def console_log(instance, host):
    return run(tasks.console_log, instance, host)


def test_real_instance_boots_and_power_sync_follows_the_domain(qemu_node, guest_image, hypervisor, proxy, tmp_path):
    host = qemu_node
    instance = make_instance(host, image_id=guest_image, root_gb=1, memory_mb=128)
    run(tasks.prepare_disk, instance, host)
    run(tasks.spawn, instance, host)
    instance.refresh_from_db()
    assert (instance.vm_state, instance.power_state) == (VmState.ACTIVE, PowerState.RUNNING)
    dom = hypervisor.lookupByName(f"instance-{instance.pk}")
    assert dom.isActive() and dom.UUIDString() == str(instance.pk)
    wait_until(lambda: MARKER in console_log(instance, host), timeout=180, interval=1,
               message="the guest's boot marker on its serial console")
    assert console_log(instance, host).count(MARKER) == 1
    # The guest's last line; after it the log stops growing, so a whole read and a tail read agree.
    wait_until(lambda: READY in console_log(instance, host), timeout=180, interval=1,
               message="the guest's last boot line")
    assert console_log(instance, host).endswith(run(tasks.console_log, instance, host, 3))

    # The console URL the API hands out opens the guest's screen through the proxy, once.
    url = novnc_url(instance, timeout=60)
    path = unquote(parse_qs(urlparse(url).query)["path"][0])
    client = WebSocketClient(proxy, "/" + path)
    try:
        width, height, _name = rfb_handshake(client)
        assert width > 0 and height > 0
    finally:
        client.close()

    # Stopped behind Stratus's back: the power sync makes the instance SHUTOFF.
    dom.destroy()
    wait_until(lambda: Instance.objects.get(pk=instance.pk).vm_state == VmState.STOPPED, message="power sync")
    assert Instance.objects.get(pk=instance.pk).power_state == PowerState.SHUTDOWN

    instance.refresh_from_db()
    instance.begin("start")
    run(tasks.power_action, instance, host, "start")
    assert dom.isActive()
    wait_until(lambda: console_log(instance, host).count(MARKER) == 2, timeout=180, interval=1,
               message="a second boot marker after start")
    instance.refresh_from_db()
    instance.begin("stop")
    run(tasks.power_action, instance, host, "stop")
    assert not dom.isActive()
    assert Instance.objects.get(pk=instance.pk).vm_state == VmState.STOPPED

    instance.refresh_from_db()
    instance.begin("delete")
    run(tasks.destroy, instance, host)
    with pytest.raises(libvirt.libvirtError):
        hypervisor.lookupByName(f"instance-{instance.pk}")
    assert not (tmp_path / "nodes" / host / "instances" / str(instance.pk)).exists()
    assert Instance.objects.get(pk=instance.pk).deleted
