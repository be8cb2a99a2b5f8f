"""The stratus-tiny guest image: built from Debian packages by
`manage.py build_guest_image`, accepted by qemu-img, small, and bootable under
QEMU with TCG: without a NIC it reaches a console shell; with a NIC it takes
DHCP, reads the metadata service (OpenStack or EC2 paths) and lets the key's
owner in over SSH.

The image is built once into var/guest-build/test/ and rebuilt only when its
inputs (package versions, guest files, builder) change. These tests need no
database."""
import io
import json
import sys
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from images.guest import GuestImageUnavailable
from images.guest.builder import FILES_DIR

MiB = 2**20
PROMISED_VIRTUAL_SIZE = 32 * MiB
SIZE_LIMIT = 64 * MiB
BOOT_TIMEOUT = 90
TEST_IMAGE = Path(settings.VAR_DIR) / "guest-build" / "test" / "stratus-tiny.qcow2"
SLIRP_GUEST_ADDRESS = "10.0.2.15"


def build(**options):
    out = io.StringIO()
    try:
        call_command("build_guest_image", output=TEST_IMAGE, stdout=out, **options)
    except CommandError as error:
        if isinstance(error.__cause__, GuestImageUnavailable):
            pytest.skip(f"the guest image cannot be built on this machine: {error}")
        raise
    return out.getvalue()


@pytest.fixture(scope="session")
def guest_image():
    build()
    return TEST_IMAGE


def qemu_img(*args):
    result = subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class Guest:
    """A QEMU (TCG) guest booted from a throwaway overlay of the image, its
    serial console on a socket this test reads and types into."""

    def __init__(self, image, workdir, nic="none", netns=None, cdrom=None):
        self.workdir = workdir
        self.console_log = workdir / "console.log"
        self.socket_path = workdir / "console.sock"
        self.output = ""
        self._lock = threading.Lock()
        command = [
            "qemu-system-x86_64", "-accel", "tcg", "-m", "128", "-nodefaults", "-display", "none",
            "-no-reboot", "-snapshot", "-drive", f"file={image},if=virtio,format=qcow2",
            "-chardev", f"socket,id=console,path={self.socket_path},server=on,wait=on,logfile={self.console_log}",
            "-serial", "chardev:console", "-nic", nic,
        ]
        if cdrom:
            # Where Nova (and Stratus) put the config drive: an IDE cdrom.
            command += ["-drive", f"file={cdrom},if=ide,index=3,media=cdrom,format=raw,readonly=on"]
        if netns:
            command = ["ip", "netns", "exec", netns, *command]
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.console = self._connect()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _connect(self):
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.socket(socket.AF_UNIX)
                sock.connect(str(self.socket_path))
                return sock
            except OSError:
                sock.close()
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"QEMU did not start: {self.process.stdout.read().decode()}")
                time.sleep(0.1)

    def _read(self):
        while True:
            try:
                data = self.console.recv(4096)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.output += data.decode(errors="replace")

    def wait_for(self, pattern, timeout=BOOT_TIMEOUT):
        """Waits for a regular expression on the console; returns its match
        and the seconds since QEMU started."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            with self._lock:
                match = re.search(pattern, self.output)
            if match:
                return match, time.monotonic() - self.started
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} on the console after {time.monotonic() - self.started:.0f} s:\n"
                             f"{self.output[-3000:]}")

    def type(self, line):
        self.console.sendall(line.encode() + b"\n")

    def stop(self):
        self.process.kill()
        self.process.wait(timeout=30)
        self.console.close()


@pytest.fixture
def boot(guest_image, tmp_path):
    guests = []

    def start(**kwargs):
        guest = Guest(guest_image, tmp_path, **kwargs)
        guests.append(guest)
        return guest

    yield start
    for guest in guests:
        guest.stop()


def test_qemu_img_check_accepts_the_image(guest_image):
    report = qemu_img("check", "--output=json", str(guest_image))
    assert report["format"] == "qcow2"
    assert report.get("corruptions", 0) == 0 and report.get("leaks", 0) == 0
    assert report["check-errors"] == 0


def test_image_is_a_small_qcow2(guest_image):
    info = qemu_img("info", "--output=json", str(guest_image))
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == PROMISED_VIRTUAL_SIZE
    assert guest_image.stat().st_size < SIZE_LIMIT
    print(f"stratus-tiny: {guest_image.stat().st_size / MiB:.1f} MiB file, {info['virtual-size'] // MiB} MiB disk")


def test_build_is_skipped_when_inputs_are_unchanged(guest_image):
    before = guest_image.stat().st_mtime_ns
    output = build()
    assert "up to date" in output
    assert guest_image.stat().st_mtime_ns == before


def test_boots_without_a_nic_to_a_console_shell(boot):
    guest = boot()
    _, seconds = guest.wait_for(r"STRATUS-GUEST: booted")
    print(f"booted marker after {seconds:.1f} s")
    guest.wait_for(r"STRATUS-GUEST: no network interface")
    guest.wait_for(r"# ")
    guest.type("echo answer-$((6 * 7))")
    guest.wait_for(r"answer-42")


def make_netns(name):
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is needed to make a network namespace")
    result = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {result.stderr.strip()}")
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)


@pytest.fixture
def netns():
    name = f"stratus-guest-test-{os.getpid()}"
    make_netns(name)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


def write_metadata(root, flavor, hostname, public_key):
    if flavor in ("openstack", "config-drive"):
        path = root / "openstack" / "latest" / "meta_data.json"
        path.parent.mkdir(parents=True)
        # Nova keeps the key's trailing newline; JSON carries it as "\n".
        path.write_text(json.dumps({"uuid": "0d4c5c4e-1d7a-4d22-9b43-5d5f8bdc6f11", "name": hostname,
                                    "hostname": f"{hostname}.novalocal", "public_keys": {"test": public_key + "\n"},
                                    "keys": [{"name": "test", "type": "ssh", "data": public_key + "\n"}]}))
        (path.parent / "user_data").write_text(f"#!/bin/sh\necho user-data-ran-on-$(hostname)-from-{flavor}\n")
    else:
        meta = root / "latest" / "meta-data"
        (meta / "public-keys" / "0").mkdir(parents=True)
        (meta / "hostname").write_text(f"{hostname}.ec2.internal\n")
        (meta / "public-keys" / "0" / "openssh-key").write_text(public_key + "\n")


@pytest.mark.parametrize("flavor", ["openstack", "ec2"])
def test_boots_with_dhcp_metadata_and_ssh(boot, netns, tmp_path, flavor):
    """QEMU's user network gives the DHCP lease; a metadata server on
    169.254.169.254 in the same network namespace answers through it."""
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-client is needed to log in to the guest")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    hostname = f"vm-{flavor}"
    metadata_root = tmp_path / "metadata"
    write_metadata(metadata_root, flavor, hostname, key.with_suffix(".pub").read_text().strip())
    subprocess.run(["ip", "-n", netns, "address", "add", "169.254.169.254/32", "dev", "lo"], check=True)
    metadata = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "http.server", "--bind",
         "169.254.169.254", "--directory", str(metadata_root), "80"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        guest = boot(nic="user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:2222-:22", netns=netns)
        guest.wait_for(r"STRATUS-GUEST: booted")
        guest.wait_for(rf"STRATUS-GUEST: address {re.escape(SLIRP_GUEST_ADDRESS)}\b")
        guest.wait_for(rf"STRATUS-GUEST: metadata from {flavor}")
        guest.wait_for(rf"STRATUS-GUEST: hostname {hostname}\s")
        guest.wait_for(r"STRATUS-GUEST: ssh key installed")
        if flavor == "openstack":
            guest.wait_for(rf"user-data-ran-on-{hostname}-from-openstack")
        _, seconds = guest.wait_for(r"STRATUS-GUEST: ssh ready")
        print(f"ssh ready after {seconds:.1f} s")
        login = subprocess.run(
            ["ip", "netns", "exec", netns, "ssh", "-i", str(key), "-p", "2222", "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=30",
             "root@127.0.0.1", "hostname; id -u; ip -4 route show default"],
            capture_output=True, text=True, timeout=90)
        assert login.returncode == 0, login.stderr
        name, uid, default_route = login.stdout.splitlines()[:3]
        assert (name, uid) == (hostname, "0")
        assert default_route.startswith("default via 10.0.2.2 dev eth0")
    finally:
        metadata.kill()
        metadata.wait(timeout=10)


def test_reads_the_config_drive_without_a_network(boot, tmp_path):
    """A config-2 ISO on the IDE cdrom and no NIC: the guest takes its
    hostname, key and user data from the drive."""
    if shutil.which("genisoimage") is None:
        pytest.skip("genisoimage is needed to make a config drive")
    root = tmp_path / "drive"
    write_metadata(root, "config-drive", "vm-drive", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDriveKey test")
    iso = tmp_path / "config.iso"
    subprocess.run(["genisoimage", "-quiet", "-o", str(iso), "-J", "-r", "-V", "config-2", str(root)], check=True)
    guest = boot(cdrom=iso)
    guest.wait_for(r"STRATUS-GUEST: no network interface")
    guest.wait_for(r"STRATUS-GUEST: metadata from config-drive")
    guest.wait_for(r"STRATUS-GUEST: hostname vm-drive\s")
    guest.wait_for(r"STRATUS-GUEST: ssh key installed")
    _, seconds = guest.wait_for(r"user-data-ran-on-vm-drive-from-config-drive")
    print(f"config drive read after {seconds:.1f} s")


def test_dhcp_hook_applies_classless_static_routes(netns, tmp_path):
    """The guest's udhcpc hook, run by busybox against an eth0 (a veth): option
    121 routes win over the router option, a renewal replaces them, and a
    deconfig takes the address away."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox-static is needed to run the guest's DHCP hook")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for applet in ("sh", "ip", "cat", "rm", "mkdir"):
        (bin_dir / applet).symlink_to(busybox)
    subprocess.run(["ip", "-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer"], check=True)
    state, resolv, console = tmp_path / "state", tmp_path / "resolv.conf", tmp_path / "console"

    def hook(event, **lease):
        env = {"PATH": str(bin_dir), "interface": "eth0", "STRATUS_STATE_DIR": str(state),
               "STRATUS_RESOLV_CONF": str(resolv), "STRATUS_CONSOLE": str(console), **lease}
        # The host's ip enters the namespace; the hook then runs busybox's.
        result = subprocess.run([shutil.which("ip"), "netns", "exec", netns, busybox, "sh",
                                 str(FILES_DIR / "udhcpc.script"), event],
                                env=env, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""

    def routes():
        return subprocess.run(["ip", "-n", netns, "-4", "route", "show"], capture_output=True, text=True,
                              check=True).stdout

    hook("deconfig")
    hook("bound", ip="10.9.0.5", mask="24", router="10.9.0.99", dns="10.9.0.3 10.9.0.4", domain="example.org",
         staticroutes="169.254.169.254/32 10.9.0.2 0.0.0.0/0 10.9.0.1")
    table = routes()
    assert "default via 10.9.0.1 dev eth0" in table
    assert "169.254.169.254 via 10.9.0.2 dev eth0" in table
    assert "10.9.0.99" not in table
    assert resolv.read_text() == "search example.org\nnameserver 10.9.0.3\nnameserver 10.9.0.4\n"
    assert "STRATUS-GUEST: address 10.9.0.5" in console.read_text()

    hook("renew", ip="10.9.0.5", mask="24", router="10.9.0.1", dns="10.9.0.3")
    table = routes()
    assert "default via 10.9.0.1 dev eth0" in table
    assert "169.254.169.254" not in table

    hook("deconfig")
    addresses = subprocess.run(["ip", "-n", netns, "-4", "address", "show", "dev", "eth0"], capture_output=True,
                               text=True, check=True).stdout
    assert "10.9.0.5" not in addresses
