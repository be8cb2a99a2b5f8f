"""Builds libvirt domain XML from a DomainSpec.

Every guest gets: its serial console written (appended) to a file, so the
console log survives reboots; VNC on the node's management address
(spec.vnc_listen) with a port libvirt picks, reached only through the
console proxy; no memory balloon; a virtio NIC per port, on its
network's bridge with the port's MAC (spec.interfaces); a virtio disk per
attached volume (spec.volumes): a file volume as a file disk, an RBD volume
as a network disk QEMU opens itself (with its cephx secret when auth is on)."""
import xml.etree.ElementTree as ET

from compute.virt.driver import DomainSpec, Interface, VirtError, VolumeDisk

STRATUS_NS = "https://stratus.invalid/xmlns/instance/1.0"


def _sub(parent, tag, text=None, **attrs):
    element = ET.SubElement(parent, tag, {k.rstrip("_"): str(v) for k, v in attrs.items()})
    if text is not None:
        element.text = str(text)
    return element


def build(spec: DomainSpec, virt_type: str) -> str:
    """virt_type: 'kvm' or 'qemu' (TCG) for QEMU, 'test' for libvirt's test
    driver (which ignores arch and machine)."""
    domain = ET.Element("domain", type=virt_type)
    _sub(domain, "name", spec.name)
    _sub(domain, "uuid", spec.uuid)
    if spec.metadata:
        metadata = _sub(domain, "metadata")
        ET.register_namespace("stratus", STRATUS_NS)
        instance = _sub(metadata, f"{{{STRATUS_NS}}}instance")
        for key, value in sorted(spec.metadata.items()):
            _sub(instance, f"{{{STRATUS_NS}}}{key}", value)
    _sub(domain, "memory", spec.memory_mb, unit="MiB")
    _sub(domain, "vcpu", spec.vcpus)

    os_ = _sub(domain, "os")
    if virt_type == "test":
        _sub(os_, "type", "hvm")
    else:
        _sub(os_, "type", "hvm", arch="x86_64", machine="pc")
    if spec.kernel:
        _sub(os_, "kernel", spec.kernel)
        if spec.initrd:
            _sub(os_, "initrd", spec.initrd)
        if spec.cmdline:
            _sub(os_, "cmdline", spec.cmdline)
    else:
        _sub(os_, "boot", dev="hd")

    features = _sub(domain, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    _sub(domain, "clock", offset="utc")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")

    devices = _sub(domain, "devices")
    if spec.disk_path:
        disk = _sub(devices, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type=spec.disk_format)
        _sub(disk, "source", file=spec.disk_path)
        _sub(disk, "target", dev="vda", bus="virtio")
    for volume in spec.volumes:
        devices.append(volume_element(volume))
    for interface in spec.interfaces:
        devices.append(interface_element(interface))
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=spec.console_log, append="on")
    _sub(serial, "target", port=0)
    graphics = _sub(devices, "graphics", type="vnc", autoport="yes", listen=spec.vnc_listen)
    _sub(graphics, "listen", type="address", address=spec.vnc_listen)
    if spec.config_drive:
        # The config drive as Nova attaches it: a read-only IDE cdrom on the
        # pc machine type, which every guest reads without a virtio driver.
        cdrom = _sub(devices, "disk", type="file", device="cdrom")
        _sub(cdrom, "driver", name="qemu", type="raw")
        _sub(cdrom, "source", file=spec.config_drive)
        _sub(cdrom, "target", dev="hdd", bus="ide")
        _sub(cdrom, "readonly")
    _sub(devices, "memballoon", model="none")
    return ET.tostring(domain, encoding="unicode")


def interface_element(interface: Interface):
    element = ET.Element("interface", type="bridge")
    _sub(element, "mac", address=interface.mac)
    _sub(element, "source", bridge=interface.bridge)
    _sub(element, "target", dev=interface.tap)
    _sub(element, "model", type="virtio")
    return element


def interface_xml(interface: Interface) -> str:
    """The <interface> of one NIC, for a hot-plug."""
    return ET.tostring(interface_element(interface), encoding="unicode")


def volume_element(volume: VolumeDisk):
    """The <disk> of one attached volume, from its connection info."""
    kind = volume.connection_info.get("driver_volume_type")
    data = volume.connection_info.get("data") or {}
    if kind == "file":
        disk = ET.Element("disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type=data.get("format") or "raw", cache="none")
        _sub(disk, "source", file=data["device_path"])
    elif kind == "rbd":
        disk = ET.Element("disk", type="network", device="disk")
        _sub(disk, "driver", name="qemu", type="raw", cache="writeback", discard="unmap")
        if data.get("auth_enabled"):
            auth = _sub(disk, "auth", username=data["auth_username"])
            _sub(auth, "secret", type="ceph", uuid=data["secret_uuid"])
        source = _sub(disk, "source", protocol="rbd", name=data["name"])
        for host, port in zip(data.get("hosts") or [], data.get("ports") or []):
            _sub(source, "host", name=host, port=port)
        if data.get("conf"):
            _sub(source, "config", file=data["conf"])
    else:
        raise VirtError(f"volume connection type {kind!r} is not one this node attaches (file, rbd)")
    _sub(disk, "target", dev=volume.dev, bus="virtio")
    if volume.serial:
        # The guest finds the volume under /dev/disk/by-id/virtio-<serial>.
        _sub(disk, "serial", volume.serial[:20])
    if data.get("access_mode") == "ro":
        _sub(disk, "readonly")
    return disk


def volume_xml(volume: VolumeDisk) -> str:
    """The <disk> of one volume, for a hot-plug."""
    return ET.tostring(volume_element(volume), encoding="unicode")
