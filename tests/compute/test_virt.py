"""The libvirt driver against libvirt's test driver (the fake hypervisor)
and against real QEMU under qemu:///system (TCG on this machine)."""
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from compute.virt import DomainNotFound, DomainSpec, PowerState, get_driver
from compute.virt import domain_xml, probe
from compute.virt.libvirt_driver import write_simulated_node

PREFIX = "stratustest-virt-"


def spec(tmp_path, **overrides):
    domain_uuid = str(uuid.uuid4())
    values = dict(name=f"{PREFIX}{domain_uuid[:8]}", uuid=domain_uuid, vcpus=1, memory_mb=128,
                  console_log=tmp_path / domain_uuid / "console.log")
    values.update(overrides)
    return DomainSpec(**values)


def test_domain_xml_has_file_console_local_vnc_no_balloon_no_nic(tmp_path):
    guest = spec(tmp_path, disk_path=tmp_path / "disk", metadata={"project": "p1"})
    root = ET.fromstring(domain_xml.build(guest, "qemu"))
    assert root.get("type") == "qemu"
    assert root.findtext("uuid") == guest.uuid
    serial = root.find("devices/serial[@type='file']/source")
    assert serial.get("path") == str(guest.console_log) and serial.get("append") == "on"
    graphics = root.find("devices/graphics[@type='vnc']")
    assert graphics.get("autoport") == "yes" and graphics.get("listen") == "127.0.0.1"
    assert root.find("devices/memballoon").get("model") == "none"
    assert root.find("devices/interface") is None
    assert root.find("devices/disk/source").get("file") == str(tmp_path / "disk")


def test_test_driver_lifecycle(tmp_path):
    driver = get_driver("test:///default")
    guest = spec(tmp_path)
    try:
        driver.spawn(guest, timeout=5)
        assert driver.power_state(guest.name) == PowerState.RUNNING
        driver.spawn(guest, timeout=5)  # repeating it is harmless
        driver.pause(guest.name)
        assert driver.power_state(guest.name) == PowerState.PAUSED
        driver.unpause(guest.name)
        driver.stop(guest.name, timeout=0)
        assert driver.power_state(guest.name) == PowerState.SHUTDOWN
        driver.start(guest.name)
        assert driver.power_state(guest.name) == PowerState.RUNNING
        driver.suspend(guest.name)
        assert driver.power_state(guest.name) == PowerState.SUSPENDED
        driver.resume(guest.name)
        driver.reboot(guest.name, hard=True, timeout=0)
        assert driver.power_state(guest.name) == PowerState.RUNNING
    finally:
        driver.destroy(guest.name)
    with pytest.raises(DomainNotFound):
        driver.power_state(guest.name)
    driver.destroy(guest.name)  # destroying what is gone is not an error
    driver.close()


def test_simulated_nodes_have_their_own_capacity_and_domains(tmp_path):
    first = get_driver(f"test://{write_simulated_node(tmp_path / 'sim-1.xml', vcpus=8, memory_mb=16384)}",
                       disk_gb=200)
    second = get_driver(f"test://{write_simulated_node(tmp_path / 'sim-2.xml', vcpus=4, memory_mb=4096)}",
                        disk_gb=50)
    capacity = first.capacity()
    assert (capacity.vcpus, capacity.memory_mb, capacity.disk_gb) == (8, 16384, 200)
    assert (second.capacity().vcpus, second.capacity().memory_mb) == (4, 4096)
    guest = spec(tmp_path)
    first.spawn(guest, timeout=5)
    assert first.capacity().running_domains == 1
    assert guest.name in first.power_states()
    assert guest.name not in second.power_states()
    first.destroy(guest.name)
    first.close(), second.close()


def test_real_node_reports_its_instances_filesystem(tmp_path):
    driver = get_driver("test:///default", instances_dir=tmp_path)
    capacity = driver.capacity()
    assert capacity.disk_gb > 0 and 0 <= capacity.disk_free_gb <= capacity.disk_gb


def test_configured_virt_type_overrides_the_probe(monkeypatch):
    monkeypatch.setenv("STRATUS_VIRT_TYPE", "qemu")
    assert get_driver("qemu:///system").virt_type == "qemu"
    monkeypatch.setenv("STRATUS_VIRT_TYPE", "xen")
    with pytest.raises(ValueError):
        probe.configured_virt_type()


def test_a_probe_left_running_by_a_killed_worker_is_removed_by_the_next(tmp_path):
    conn = libvirt.open("test:///default")
    try:
        leftover = domain_xml.build(spec(tmp_path, name=f"{PREFIX}probe-{uuid.uuid4().hex[:6]}"), "qemu")
        unrelated = domain_xml.build(spec(tmp_path), "qemu")
        conn.createXML(leftover, 0)
        kept = conn.createXML(unrelated, 0)
        probe.destroy_leftover_probes(conn, name_prefix=f"{PREFIX}probe-")
        assert [dom.name() for dom in conn.listAllDomains() if dom.name().startswith(PREFIX)] == [kept.name()]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def qemu():
    """qemu:///system and the tiny guest, or a skip saying what is missing."""
    try:
        conn = libvirt.open("qemu:///system")
        conn.close()
    except libvirt.libvirtError as error:
        pytest.skip(f"qemu:///system is not available: {error}")
    try:
        kernel, initrd = probe.tiny_guest()
    except Exception as error:  # noqa: BLE001  (any reason means: cannot test here)
        pytest.skip(f"cannot build the tiny guest from Debian packages: {error}")
    driver = get_driver("qemu:///system")
    yield driver, kernel, initrd
    for name in driver.domain_names():
        if name.startswith(PREFIX):
            driver.destroy(name)
    driver.close()


def wait_for_count(path, text, count=1, timeout=120):
    """Waits until `text` appears `count` times in the file at `path`."""
    path = Path(path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text(errors="replace").count(text) >= count:
            return
        time.sleep(0.3)
    tail = path.read_text(errors="replace")[-2000:] if path.exists() else "(no file)"
    raise AssertionError(f"{text!r} not {count} times in {path} after {timeout} s:\n{tail}")


def test_real_guest_boots_to_its_marker_with_the_probed_domain_type(qemu, tmp_path):
    driver, kernel, initrd = qemu
    guest = spec(tmp_path, kernel=kernel, initrd=initrd, cmdline="console=ttyS0")
    try:
        driver.spawn(guest, timeout=60)
        assert driver.virt_type in ("kvm", "qemu")
        wait_for_count(guest.console_log, probe.GUEST_MARKER)

        host, port = driver.vnc_address(guest.name)
        with socket.create_connection((host, port), timeout=10) as vnc:
            assert vnc.recv(12).startswith(b"RFB 003.")

        # The tiny guest ignores ACPI: stop falls back to powering it off.
        driver.stop(guest.name, timeout=1)
        assert driver.power_state(guest.name) == PowerState.SHUTDOWN
        driver.start(guest.name)
        # The console log is appended to, so the second boot adds a marker.
        wait_for_count(guest.console_log, probe.GUEST_MARKER, count=2)
    finally:
        driver.destroy(guest.name)
    assert not driver.exists(guest.name)

