"""The libvirt driver: real guests on qemu:///system (domain type kvm or
qemu, decided by `compute.virt.probe`), simulated ones on libvirt's test
driver.

One driver holds one long-lived connection. That matters for the test
driver, whose state lives in the connection (test:///<file>) or in the
process (test:///default): every task for a simulated node must go through
its node's one connection to see its domains."""
import base64
import os
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from compute.virt import domain_xml
from compute.virt.driver import Capacity, ComputeDriver, DomainNotFound, PowerState, VirtError

# libvirt prints every error to stderr unless a handler takes them; the
# driver raises them as exceptions instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

_POWER_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: PowerState.NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: PowerState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: PowerState.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: PowerState.SHUTDOWN,
    libvirt.VIR_DOMAIN_CRASHED: PowerState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: PowerState.SUSPENDED,
}

POLL_INTERVAL = 0.1
# How long a running guest gets to release a detached disk, and how often it
# is asked again meanwhile.
DETACH_TIMEOUT = 60
DETACH_RETRY_INTERVAL = 10


def is_test_uri(uri):
    return uri.startswith("test:")


class LibvirtDriver(ComputeDriver):
    """uri: qemu:///system, test:///default, or test:///<node file>.
    instances_dir: where this node's disks live (its filesystem's size is
    the disk capacity a real node reports). disk_gb: the disk capacity a
    simulated node reports instead. virt_type: force the domain type
    (otherwise 'test' for the test driver, or probed)."""

    def __init__(self, uri, instances_dir=None, disk_gb=None, virt_type=None):
        self.uri = uri
        self.instances_dir = Path(instances_dir) if instances_dir else None
        self.disk_gb = disk_gb
        self._lock = threading.Lock()
        self._conn = None
        self._virt_type = virt_type or ("test" if is_test_uri(uri) else None)

    # -- connection ---------------------------------------------------

    @property
    def conn(self):
        with self._lock:
            if self._conn is None or not self._conn.isAlive():
                try:
                    self._conn = libvirt.open(self.uri)
                except libvirt.libvirtError as error:
                    raise VirtError(f"cannot connect to {self.uri}: {error}") from error
            return self._conn

    def close(self):
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except libvirt.libvirtError:
                    pass
                self._conn = None

    @property
    def virt_type(self):
        if self._virt_type is None:
            from compute.virt.probe import virt_type_for

            self._virt_type = virt_type_for(self)
        return self._virt_type

    def _domain(self, name):
        try:
            return self.conn.lookupByName(name)
        except libvirt.libvirtError as error:
            if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise DomainNotFound(name) from error
            raise VirtError(str(error)) from error

    def exists(self, name):
        try:
            self._domain(name)
            return True
        except DomainNotFound:
            return False

    # -- capacity -----------------------------------------------------

    def capacity(self):
        conn = self.conn
        _model, memory_mb, cpus, mhz, *_rest = conn.getInfo()
        if self.disk_gb is not None:
            disk_gb = disk_free_gb = int(self.disk_gb)
        else:
            directory = self.instances_dir or Path("/")
            directory.mkdir(parents=True, exist_ok=True)
            usage = shutil.disk_usage(directory)
            disk_gb, disk_free_gb = usage.total >> 30, usage.free >> 30
        running = sum(1 for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE))
        return Capacity(
            vcpus=cpus,
            memory_mb=memory_mb,
            disk_gb=disk_gb,
            disk_free_gb=disk_free_gb,
            hypervisor_type="QEMU" if conn.getType() == "QEMU" else conn.getType(),
            hypervisor_version=conn.getVersion(),
            hypervisor_hostname=conn.getHostname(),
            cpu_info={"arch": _model, "mhz": mhz, "topology": {
                "sockets": _rest[1], "cores": _rest[2], "threads": _rest[3]}},
            running_domains=running,
        )

    # -- lifecycle ----------------------------------------------------

    def spawn(self, spec, timeout, start=True):
        xml = domain_xml.build(spec, self.virt_type)
        spec.console_log.parent.mkdir(parents=True, exist_ok=True)
        for volume in spec.volumes:
            self._ensure_ceph_secret(volume)
        try:
            dom = self.conn.defineXML(xml)
            if start and not dom.isActive():
                dom.create()
        except libvirt.libvirtError as error:
            raise VirtError(f"cannot start {spec.name}: {error}") from error
        if start:
            self._wait_for(spec.name, {PowerState.RUNNING}, timeout)

    def destroy(self, name):
        try:
            dom = self._domain(name)
        except DomainNotFound:
            return
        try:
            if dom.isActive():
                dom.destroy()
            flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            if not is_test_uri(self.uri):
                flags |= libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            dom.undefineFlags(flags)
        except libvirt.libvirtError as error:
            if error.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise VirtError(f"cannot destroy {name}: {error}") from error

    def power_state(self, name):
        return self._power_state(self._domain(name))

    def power_states(self):
        states = {}
        for dom in self.conn.listAllDomains():
            try:
                states[dom.name()] = self._power_state(dom)
            except libvirt.libvirtError as error:
                if error.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
                # undefined while we listed: it is gone
        return states

    @staticmethod
    def _power_state(dom):
        state, _reason = dom.state()
        if state == libvirt.VIR_DOMAIN_SHUTOFF and dom.hasManagedSaveImage():
            return PowerState.SUSPENDED  # suspended: its memory is saved on disk
        return _POWER_STATES.get(state, PowerState.NOSTATE)

    def domain_names(self):
        return [dom.name() for dom in self.conn.listAllDomains()]

    def start(self, name):
        dom = self._domain(name)
        if not dom.isActive():
            self._call(dom.create)

    def stop(self, name, timeout):
        """A clean shutdown (ACPI) given `timeout` seconds, then power off."""
        dom = self._domain(name)
        if not dom.isActive():
            return
        if timeout > 0 and dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING:
            try:
                dom.shutdown()
                self._wait_for(name, {PowerState.SHUTDOWN}, timeout)
                if not dom.isActive():
                    return
            except (libvirt.libvirtError, VirtError):
                pass  # a guest that ignores ACPI is powered off below
        try:
            dom.destroy()
        except libvirt.libvirtError as error:
            if dom.isActive():
                raise VirtError(f"cannot stop {name}: {error}") from error

    def reboot(self, name, hard, timeout):
        """Soft: a clean shutdown within `timeout`, then start; a guest that
        does not shut down in time is reset the hard way, as Nova does.
        Hard: power off, then start."""
        if not hard:
            self.stop(name, timeout)
        else:
            dom = self._domain(name)
            if dom.isActive():
                self._call(dom.destroy)
        self.start(name)
        self._wait_for(name, {PowerState.RUNNING}, 30)

    def pause(self, name):
        dom = self._domain(name)
        if dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
            self._call(dom.suspend)

    def unpause(self, name):
        dom = self._domain(name)
        if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
            self._call(dom.resume)

    def suspend(self, name):
        """Saves the guest's memory to disk (libvirt's managed save) and
        stops it; resume restores it."""
        dom = self._domain(name)
        if dom.isActive():
            self._call(dom.managedSave)

    def resume(self, name):
        dom = self._domain(name)
        if not dom.isActive():
            self._call(dom.create)

    def vnc_address(self, name):
        dom = self._domain(name)
        graphics = ET.fromstring(dom.XMLDesc()).find("devices/graphics[@type='vnc']")
        if graphics is None or int(graphics.get("port", "-1")) <= 0:
            raise VirtError(f"{name} has no VNC server (is it running?)")
        return graphics.get("listen") or "127.0.0.1", int(graphics.get("port"))

    def diagnostics(self, name):
        dom = self._domain(name)
        state, max_kib, current_kib, _vcpus, _cpu_time = self._call(dom.info)
        root = ET.fromstring(self._call(dom.XMLDesc))
        try:
            cpus = [(number, time_ns) for number, _state, time_ns, _cpu in dom.vcpus()[0]]
        except libvirt.libvirtError:  # a shut-off domain has no vCPU threads
            cpus = []
        try:
            memory_stats = dom.memoryStats()
        except libvirt.libvirtError:
            memory_stats = {}
        disks = []
        for target in root.findall("devices/disk/target"):
            try:
                disks.append((target.get("dev"), *dom.blockStats(target.get("dev"))))
            except libvirt.libvirtError:  # not running, or a disk without statistics
                pass
        nics = []
        for interface in root.findall("devices/interface"):
            target, mac = interface.find("target"), interface.find("mac")
            if target is None:
                continue
            try:
                nics.append((target.get("dev"), mac.get("address") if mac is not None else "",
                             *dom.interfaceStats(target.get("dev"))))
            except libvirt.libvirtError:
                pass
        return {"power_state": _POWER_STATES.get(state, PowerState.NOSTATE), "hypervisor": self.virt_type,
                "memory_kib": (max_kib, current_kib), "memory_stats": memory_stats, "cpus": cpus,
                "disks": disks, "nics": nics}

    # -- NICs ---------------------------------------------------------

    def interface_macs(self, name, inactive=False):
        """The MACs of the domain's NICs (as it runs, or as defined)."""
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        root = ET.fromstring(self._call(self._domain(name).XMLDesc, flags))
        return [mac.get("address") for mac in root.findall("devices/interface/mac")]

    def attach_interface(self, name, interface):
        dom = self._domain(name)
        if interface.mac in self.interface_macs(name) and interface.mac in self.interface_macs(name, inactive=True):
            return
        self._change_device(dom, domain_xml.interface_xml(interface), attach=True)

    def detach_interface(self, name, mac):
        dom = self._domain(name)
        root = ET.fromstring(self._call(dom.XMLDesc, libvirt.VIR_DOMAIN_XML_INACTIVE))
        for element in root.findall("devices/interface"):
            found = element.find("mac")
            if found is not None and found.get("address") == mac:
                self._change_device(dom, ET.tostring(element, encoding="unicode"), attach=False)
                return

    # -- volumes ------------------------------------------------------

    def disk_targets(self, name, inactive=False):
        """The target devs of the domain's disks (as it runs, or as defined)."""
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        root = ET.fromstring(self._call(self._domain(name).XMLDesc, flags))
        return [target.get("dev") for target in root.findall("devices/disk/target")]

    def attach_volume(self, name, volume):
        dom = self._domain(name)
        if volume.dev in self.disk_targets(name) and volume.dev in self.disk_targets(name, inactive=True):
            return
        self._ensure_ceph_secret(volume)
        self._change_device(dom, domain_xml.volume_xml(volume), attach=True)

    def _ensure_ceph_secret(self, volume):
        """An RBD volume with cephx auth names a libvirt secret: defined here
        with the key when its connection info carries one (`auth_key`),
        otherwise the node's operator defined it (as Nova's rbd_secret_uuid)."""
        data = volume.connection_info.get("data") or {}
        if volume.connection_info.get("driver_volume_type") != "rbd" or not data.get("auth_enabled") or \
                not data.get("auth_key") or is_test_uri(self.uri):
            return
        try:
            secret = self.conn.secretLookupByUUIDString(data["secret_uuid"])
        except libvirt.libvirtError:
            secret = self._call(self.conn.secretDefineXML, (
                f"<secret ephemeral='no' private='yes'><uuid>{data['secret_uuid']}</uuid>"
                f"<usage type='ceph'><name>client.{data['auth_username']} secret</name></usage></secret>"))
        self._call(secret.setValue, base64.b64decode(data["auth_key"]))

    def resize_volume(self, name, dev, size_bytes):
        dom = self._domain(name)
        if not dom.isActive() or is_test_uri(self.uri):
            return  # libvirt's test driver has no block devices to resize
        self._call(dom.blockResize, dev, size_bytes, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)

    def detach_volume(self, name, dev, timeout=DETACH_TIMEOUT):
        """The disk out of the domain's definition and, when it runs, out of
        the guest: QEMU lets go only once the guest acknowledges the unplug,
        so this waits for the disk to leave the running domain, asking again
        every DETACH_RETRY_INTERVAL (a guest may miss a request, as Nova's
        detach retries assume), and raises if it is still there after
        `timeout`."""
        dom = self._domain(name)
        inactive = ET.fromstring(self._call(dom.XMLDesc, libvirt.VIR_DOMAIN_XML_INACTIVE))
        defined = [element for element in inactive.findall("devices/disk") if _device_key(element) == ("disk", dev)]
        if defined:
            self._change_device(dom, ET.tostring(defined[0], encoding="unicode"), attach=False)
        if not dom.isActive() or is_test_uri(self.uri):
            return
        deadline = time.monotonic() + timeout
        asked_at = time.monotonic() if defined else -DETACH_RETRY_INTERVAL  # an earlier try left it running
        while dev in self.disk_targets(name):
            if time.monotonic() > deadline:
                raise VirtError(f"the guest of {name} did not release its disk {dev} within {timeout:g} s")
            if time.monotonic() - asked_at > DETACH_RETRY_INTERVAL:
                self._unplug_live_disk(dom, dev)
                asked_at = time.monotonic()
            time.sleep(POLL_INTERVAL)

    def _unplug_live_disk(self, dom, dev):
        """Asks the running domain once more to unplug `dev` (its definition
        no longer has it); an unplug still in progress is no error."""
        for element in ET.fromstring(self._call(dom.XMLDesc)).findall("devices/disk"):
            if _device_key(element) == ("disk", dev):
                try:
                    dom.detachDeviceFlags(ET.tostring(element, encoding="unicode"), libvirt.VIR_DOMAIN_AFFECT_LIVE)
                except libvirt.libvirtError:
                    pass  # the guest is still working on the first request

    def _change_device(self, dom, device_xml, attach):
        """Hot-plugs (or unplugs) a device into the running domain and its
        definition. libvirt's test driver has no hot-plug: there the
        definition is changed (what the next start of the domain gets)."""
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if dom.isActive():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        try:
            (dom.attachDeviceFlags if attach else dom.detachDeviceFlags)(device_xml, flags)
            return
        except libvirt.libvirtError as error:
            if error.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                raise VirtError(f"cannot {'attach' if attach else 'detach'} a device of {dom.name()}: "
                                f"{error}") from error
        root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        devices = root.find("devices")
        device = ET.fromstring(device_xml)
        for element in list(devices):
            if _device_key(element) == _device_key(device):
                devices.remove(element)
        if attach:
            devices.append(device)
        self._call(self.conn.defineXML, ET.tostring(root, encoding="unicode"))

    # -- helpers ------------------------------------------------------

    def _call(self, method, *args):
        try:
            return method(*args)
        except libvirt.libvirtError as error:
            raise VirtError(str(error)) from error

    def _wait_for(self, name, states, timeout):
        deadline = time.monotonic() + timeout
        while True:
            state = self.power_state(name)
            if state in states:
                return state
            if time.monotonic() > deadline:
                raise VirtError(f"{name} is {_state_name(state)}, not "
                                f"{'/'.join(_state_name(s) for s in states)} after {timeout:.0f} s")
            time.sleep(POLL_INTERVAL)


def _device_key(element):
    """What tells one hot-pluggable device from another: a NIC's MAC, a
    disk's target dev."""
    if element.tag == "interface":
        found = element.find("mac")
    elif element.tag == "disk":
        found = element.find("target")
    else:
        return None
    return element.tag, found.get("address" if element.tag == "interface" else "dev") if found is not None else None


def _state_name(power_state):
    return next((name for name, value in vars(PowerState).items() if value == power_state), str(power_state))


def write_simulated_node(path, vcpus, memory_mb):
    """The node file of a simulated node for libvirt's test driver
    (test:///<path>): its CPU count and memory. Each connection to such a
    URI holds its own hypervisor state."""
    node = ET.Element("node")
    cpu = ET.SubElement(node, "cpu")
    for tag, value in (("mhz", 2000), ("model", "x86_64"), ("active", vcpus), ("nodes", 1),
                       ("sockets", 1), ("cores", vcpus), ("threads", 1)):
        ET.SubElement(cpu, tag).text = str(value)
    ET.SubElement(node, "memory").text = str(memory_mb * 1024)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(ET.tostring(node, encoding="unicode"))
    os.replace(tmp, path)
    return path
