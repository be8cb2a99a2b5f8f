"""Volume disks on the real hypervisor and in libvirt's parser: a file
volume hot-plugged into a running QEMU domain (qemu:///system, TCG) and
out of its definition (a guest that never lets go is an error: the real
guest's unplug is tests/compute/test_volumes_guest.py); the RBD network disk (with its cephx
<auth>) and the file disk as libvirt defines them."""
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from compute.virt import DomainSpec, VirtError, VolumeDisk, get_driver
from compute.virt.domain_xml import build


@pytest.fixture(scope="module")
def hypervisor():
    try:
        conn = libvirt.open("qemu:///system")
    except libvirt.libvirtError as error:
        pytest.skip(f"qemu:///system is not available: {error}")
    conn.close()
    driver = get_driver("qemu:///system", virt_type="qemu")
    yield driver
    driver.close()


def file_volume(path, dev="vdb"):
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(path), "16M"], check=True)
    return VolumeDisk(dev=dev, serial=str(uuid.uuid4()), connection_info={
        "driver_volume_type": "file", "data": {"device_path": str(path), "format": "raw", "access_mode": "rw"}})


RBD = VolumeDisk(dev="vdc", serial="5a1b2c3d-0000-4000-8000-000000000001", connection_info={
    "driver_volume_type": "rbd", "data": {
        "name": "volumes/volume-5a1b2c3d", "hosts": ["127.0.0.1"], "ports": ["6789"], "auth_enabled": True,
        "auth_username": "stratus", "secret_type": "ceph", "secret_uuid": "0b1c2d3e-0000-4000-8000-000000000002",
        "access_mode": "rw"}})


def disk_sources(xml):
    """{target dev: its <source> attributes} of a domain's disks."""
    return {disk.find("target").get("dev"): dict(disk.find("source").attrib)
            for disk in ET.fromstring(xml).findall("devices/disk")}


def test_a_file_volume_hot_plugs_into_a_running_qemu_domain_and_out(hypervisor, tmp_path):
    volume = file_volume(tmp_path / "volume.raw")
    name = f"voltest-{uuid.uuid4().hex[:8]}"
    spec = DomainSpec(name=name, uuid=str(uuid.uuid4()), vcpus=1, memory_mb=64,
                      console_log=Path(tmp_path / "console.log"))
    try:
        hypervisor.spawn(spec, timeout=60)
        hypervisor.attach_volume(name, volume)
        dom = hypervisor.conn.lookupByName(name)
        running = disk_sources(dom.XMLDesc())
        assert running["vdb"]["file"] == str(tmp_path / "volume.raw")
        assert disk_sources(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))["vdb"]["file"] == str(
            tmp_path / "volume.raw")
        hypervisor.attach_volume(name, volume)  # a repeat changes nothing
        assert hypervisor.disk_targets(name) == ["vdb"]

        # QEMU lets go of the disk once the guest acknowledges; this domain has no
        # operating system to do so: the definition drops it at once, and the
        # detach says the running domain kept it rather than claiming success.
        with pytest.raises(VirtError, match="did not release its disk vdb"):
            hypervisor.detach_volume(name, "vdb", timeout=2)
        assert "vdb" not in hypervisor.disk_targets(name, inactive=True)
        assert "vdb" in hypervisor.disk_targets(name)
    finally:
        hypervisor.destroy(name)


def test_a_domain_defined_with_its_volumes_has_the_file_and_rbd_disks(hypervisor, tmp_path):
    volume = file_volume(tmp_path / "boot.raw")
    name = f"voldef-{uuid.uuid4().hex[:8]}"
    spec = DomainSpec(name=name, uuid=str(uuid.uuid4()), vcpus=1, memory_mb=64,
                      console_log=Path(tmp_path / "console.log"), volumes=[volume, RBD])
    try:
        hypervisor.spawn(spec, timeout=60, start=False)  # QEMU's parser takes both; no Ceph to start against
        root = ET.fromstring(hypervisor.conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        rbd = next(disk for disk in root.findall("devices/disk") if disk.find("target").get("dev") == "vdc")
        assert rbd.get("type") == "network"
        source = rbd.find("source")
        assert (source.get("protocol"), source.get("name")) == ("rbd", "volumes/volume-5a1b2c3d")
        assert [(host.get("name"), host.get("port")) for host in source.findall("host")] == [("127.0.0.1", "6789")]
        auth = rbd.find("auth")
        assert auth.get("username") == "stratus"
        assert auth.find("secret").attrib == {"type": "ceph", "uuid": "0b1c2d3e-0000-4000-8000-000000000002"}
        assert rbd.find("target").attrib == {"dev": "vdc", "bus": "virtio"}
        assert disk_sources(ET.tostring(root, encoding="unicode"))["vdb"]["file"] == str(tmp_path / "boot.raw")
    finally:
        hypervisor.destroy(name)


def test_the_test_driver_defines_the_volume_disks_too(tmp_path):
    volume = file_volume(tmp_path / "volume.raw")
    conn = libvirt.open("test:///default")
    try:
        spec = DomainSpec(name=f"voltestdrv-{uuid.uuid4().hex[:6]}", uuid=str(uuid.uuid4()), vcpus=1, memory_mb=64,
                          console_log=Path(tmp_path / "console.log"), volumes=[volume, RBD])
        dom = conn.defineXML(build(spec, "test"))
        assert set(disk_sources(dom.XMLDesc())) == {"vdb", "vdc"}
        dom.undefine()
    finally:
        conn.close()
