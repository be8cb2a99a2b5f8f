"""Which domain type a QEMU host can really run: 'kvm' or 'qemu' (TCG).

Opening /dev/kvm is not proof: on a PVM host KVM accepts a VM but only
PVM-built guest kernels run, an ordinary kernel hangs in early boot. So
the answer comes from a probe boot of a tiny guest (a Debian cloud kernel
and a busybox initramfs that prints a marker on the serial console) with
type 'kvm'; without the marker in time, the host gets TCG. STRATUS_VIRT_TYPE
(qemu|kvm) overrides the probe. The result is cached per host kernel in
VAR_DIR/virt/virt-type.json: the probe runs once."""
import fcntl
import json
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import libvirt
from django.conf import settings

from compute.virt import domain_xml
from compute.virt.driver import DomainSpec

log = logging.getLogger(__name__)

GUEST_MARKER = "STRATUS-GUEST: booted"
PROBE_TIMEOUT = float(os.environ.get("STRATUS_VIRT_PROBE_TIMEOUT", "30"))
VIRT_TYPES = ("kvm", "qemu")

# The guest's /init: busybox applets, devtmpfs for the serial device, the
# marker, then idle (or power off when the kernel command line asks).
_INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /dev /proc /sys
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
echo "%s" > /dev/ttyS0
if grep -q stratus.poweroff /proc/cmdline; then poweroff -f; fi
while true; do sleep 3600; done
""" % GUEST_MARKER


def virt_dir():
    return Path(settings.VAR_DIR) / "virt"


def configured_virt_type():
    value = getattr(settings, "VIRT_TYPE", None) or os.environ.get("STRATUS_VIRT_TYPE", "")
    if value and value not in VIRT_TYPES:
        raise ValueError(f"STRATUS_VIRT_TYPE must be one of {', '.join(VIRT_TYPES)}, not {value!r}")
    return value or None


def virt_type_for(driver):
    """The domain type for guests of `driver` (a QEMU LibvirtDriver)."""
    configured = configured_virt_type()
    if configured:
        return configured
    cache = virt_dir() / "virt-type.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    key = f"{driver.uri} {platform.release()}"
    with open(cache.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one probe at a time on a host
        try:
            known = json.loads(cache.read_text())
        except (FileNotFoundError, ValueError):
            known = {}
        if key in known:
            return known[key]
        virt_type, reason = probe(driver.conn)
        log.info("domain type for %s: %s (%s)", driver.uri, virt_type, reason)
        if virt_type is not None:
            known[key] = virt_type
            cache.write_text(json.dumps(known, indent=1))
        return virt_type or "qemu"


def kvm_offered(conn):
    if not os.path.exists("/dev/kvm"):
        return False
    try:
        conn.getDomainCapabilities(None, "x86_64", None, "kvm")
        return True
    except libvirt.libvirtError:
        return False


def probe(conn):
    """(virt_type, reason). virt_type is None when no answer could be had
    (no probe guest): the caller uses TCG without caching it."""
    if not kvm_offered(conn):
        return "qemu", "libvirt offers no KVM"
    destroy_leftover_probes(conn)
    try:
        kernel, initrd = tiny_guest()
    except (OSError, subprocess.CalledProcessError) as error:
        log.warning("cannot build the probe guest (%s): using TCG", error)
        return None, f"no probe guest: {error}"
    booted = boot_to_marker(conn, "kvm", kernel, initrd, PROBE_TIMEOUT, poweroff=True)
    if booted:
        return "kvm", "a KVM guest booted"
    return "qemu", f"a KVM guest did not boot within {PROBE_TIMEOUT:.0f} s"


def destroy_leftover_probes(conn, name_prefix="stratus-probe-"):
    """A node worker killed during its probe leaves the transient probe
    domain running (it never reaches the guest's marker on a host where
    KVM hangs): the next probe on this host removes it."""
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT):
        if dom.name().startswith(name_prefix):
            try:
                dom.destroy()
            except libvirt.libvirtError:
                pass  # it ended on its own meanwhile


def boot_to_marker(conn, virt_type, kernel, initrd, timeout, poweroff=False, name_prefix="stratus-probe-"):
    """Boots the tiny guest as a transient domain; True when its marker
    reaches the serial console within `timeout`. The domain and its log
    are removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="stratus-probe-") as tmp:
        log_path = Path(tmp) / "console.log"
        spec = DomainSpec(
            name=f"{name_prefix}{uuid.uuid4().hex[:8]}", uuid=str(uuid.uuid4()), vcpus=1, memory_mb=128,
            console_log=log_path, kernel=kernel, initrd=initrd,
            cmdline="console=ttyS0 panic=-1" + (" stratus.poweroff" if poweroff else ""))
        dom = conn.createXML(domain_xml.build(spec, virt_type), 0)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if log_path.exists() and GUEST_MARKER in log_path.read_text(errors="replace"):
                    return True
                time.sleep(0.2)
            return False
        finally:
            try:
                dom.destroy()
            except libvirt.libvirtError:
                pass  # it powered itself off


def tiny_guest(directory=None):
    """(kernel, initrd) of the tiny guest, made once from Debian packages
    (linux-image-cloud-amd64, busybox-static) with apt-get download and
    dpkg-deb, nothing installed on the host."""
    directory = Path(directory or virt_dir() / "tiny-guest")
    kernel, initrd = directory / "vmlinuz", directory / "initrd.img"
    if kernel.exists() and initrd.exists():
        return kernel, initrd
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stratus-guest-build-") as tmp:
        tmp = Path(tmp)
        try:
            _download_packages(tmp)
        except subprocess.CalledProcessError:
            # The mirror has moved past the local package lists: refresh them.
            subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True, timeout=300)
            _download_packages(tmp)
        unpacked = tmp / "unpacked"
        for deb in tmp.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
        root = tmp / "root"
        (root / "bin").mkdir(parents=True)
        shutil.copy(unpacked / "bin" / "busybox", root / "bin" / "busybox")
        (root / "init").write_text(_INIT)
        (root / "init").chmod(0o755)
        files = subprocess.run(["find", "."], cwd=root, check=True, capture_output=True).stdout
        archive = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc"], cwd=root, input=files, check=True,
                                 capture_output=True).stdout
        tmp_initrd = directory / "initrd.img.tmp"
        tmp_initrd.write_bytes(subprocess.run(["gzip", "-9"], input=archive, check=True,
                                              capture_output=True).stdout)
        tmp_kernel = directory / "vmlinuz.tmp"
        shutil.copy(next((unpacked / "boot").glob("vmlinuz-*")), tmp_kernel)
        os.replace(tmp_initrd, initrd)
        os.replace(tmp_kernel, kernel)
    return kernel, initrd


def _download_packages(directory):
    depends = subprocess.run(["apt-cache", "depends", "linux-image-cloud-amd64"], check=True,
                             capture_output=True, text=True).stdout
    kernel_package = next(line.split()[-1] for line in depends.splitlines()
                          if line.strip().startswith("Depends: linux-image-"))
    subprocess.run(["apt-get", "download", "-q", kernel_package, "busybox-static"], cwd=directory, check=True,
                   capture_output=True, timeout=600)
