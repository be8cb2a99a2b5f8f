"""Builds stratus-tiny: a small bootable qcow2 guest made only of Debian
packages (Debian's cloud kernel, busybox-static, dropbear), since this cloud
has no internet to fetch a cloud image from.

The packages are fetched with `apt-get download` and unpacked with
`dpkg-deb -x` under the work directory; nothing is installed on the host. The
disk is an MBR disk with one FAT partition holding syslinux, the kernel and an
initramfs that is the whole guest; it is made without loop devices or mounts.
"""
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import cpio

FILES_DIR = Path(__file__).with_name("files")
DISK_MIB = 32
PARTITION_START_SECTOR = 2048
SECTOR_BYTES = 512
PARTITION_OFFSET = PARTITION_START_SECTOR * SECTOR_BYTES
MBR_CODE_BYTES = 440
MBR_BIN_PATHS = (Path("/usr/lib/syslinux/mbr/mbr.bin"), Path("/usr/lib/SYSLINUX/mbr.bin"))

KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
SSH_PACKAGE = "dropbear-bin"
SSH_PROGRAMS = ("usr/sbin/dropbear", "usr/bin/dropbearkey")
LOADER = "lib64/ld-linux-x86-64.so.2"
# Load order matters: each module needs the ones before it. After virtio:
# the IDE cdrom and ISO9660 for the config drive.
GUEST_MODULES = (
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
    "kernel/net/core/failover.ko",
    "kernel/drivers/net/net_failover.ko",
    "kernel/drivers/net/virtio_net.ko",
    "kernel/drivers/block/virtio_blk.ko",
    "kernel/drivers/scsi/scsi_common.ko",
    "kernel/drivers/scsi/scsi_mod.ko",
    "kernel/drivers/ata/libata.ko",
    "kernel/drivers/ata/ata_piix.ko",
    "kernel/drivers/cdrom/cdrom.ko",
    "kernel/drivers/scsi/sr_mod.ko",
    "kernel/fs/isofs/isofs.ko",
)
# Host command -> the Debian package that provides it.
HOST_TOOLS = {
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg-deb": "dpkg",
    "sfdisk": "fdisk",
    "mkfs.fat": "dosfstools",
    "mcopy": "mtools",
    "syslinux": "syslinux",
    "qemu-img": "qemu-utils",
}
GUEST_HOSTNAME = "stratus-guest"
ETC_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/group": "root:x:0:\ntty:x:5:\n",
    # '*' rather than '!': dropbear refuses a locked account even with a key.
    "etc/shadow": "root:*:19000:0:99999:7:::\n",
    "etc/shells": "/bin/sh\n/bin/ash\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
    "etc/hostname": GUEST_HOSTNAME + "\n",
    "etc/hosts": "127.0.0.1 localhost\n",
    "etc/profile": "export PATH=/bin:/sbin:/usr/bin:/usr/sbin\nPS1='\\u@\\h:\\w\\$ '\n",
}


class GuestImageError(Exception):
    """The guest image could not be built."""


class GuestImageUnavailable(GuestImageError):
    """This machine cannot build the guest image: a host tool is missing or
    Debian's mirror cannot be reached."""


class StalePackageLists(Exception):
    """A download failed and the package lists were refreshed: resolve again."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str

    @property
    def key(self):
        return f"{self.name}={self.version}"

    @property
    def dirname(self):
        return f"{self.name}_{self.version}".replace(":", "%3a")


@dataclass
class BuildResult:
    path: Path
    built: bool
    inputs_key: str
    size: int
    virtual_size: int
    seconds: float


def run(command, **kwargs):
    """Runs a command; a failure raises GuestImageError with its output."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise GuestImageError(
            f"{' '.join(map(str, command))} failed ({result.returncode}): {(result.stderr or result.stdout).strip()}")
    return result.stdout


def image_info(path):
    return json.loads(run(["qemu-img", "info", "--output=json", str(path)]))


class GuestImageBuilder:
    def __init__(self, output, work_dir, log=print):
        self.output = Path(output)
        self.work_dir = Path(work_dir)
        self.log = log
        self._lists_refreshed = False

    @property
    def stamp_path(self):
        return self.output.with_name(self.output.name + ".build.json")

    def build(self, force=False):
        started = time.monotonic()
        self.check_host_tools()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # Builds sharing a work directory (make up and the tests) take turns.
        with open(self.work_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.log("Resolving Debian packages")
            packages = self.resolve_packages()
            key = self.inputs_key(packages)
            if not force and self.is_current(key):
                self.log(f"{self.output} is up to date (inputs {key[:12]})")
                return self.result(key, built=False, started=started)
            try:
                self.fetch(packages)
            except StalePackageLists:
                # The mirror moved on since the last apt-get update; the lists are fresh now.
                packages = self.resolve_packages()
                key = self.inputs_key(packages)
                self.fetch(packages)
            roots = {package.name: self.unpack(package) for package in packages}
            with tempfile.TemporaryDirectory(dir=self.work_dir, prefix="build-") as scratch:
                scratch = Path(scratch)
                kernel_root = roots[packages[0].name]
                kernel = self.find_kernel(kernel_root)
                initramfs = self.make_initramfs(kernel_root, roots, packages)
                (scratch / "initrd.gz").write_bytes(initramfs)
                shutil.copyfile(kernel, scratch / "vmlinuz")
                shutil.copyfile(FILES_DIR / "syslinux.cfg", scratch / "syslinux.cfg")
                raw = self.make_disk(scratch, ["vmlinuz", "initrd.gz", "syslinux.cfg"])
                self.write_qcow2(raw)
            self.stamp_path.write_text(json.dumps(
                {"inputs": key, "packages": [package.key for package in packages]}, indent=1) + "\n")
            self.prune(packages)
            result = self.result(key, built=True, started=started)
            self.log(f"Wrote {self.output}: {result.size / 2**20:.1f} MiB file, "
                     f"{result.virtual_size // 2**20} MiB disk, in {result.seconds:.0f} s")
            return result

    def result(self, key, built, started):
        return BuildResult(
            path=self.output, built=built, inputs_key=key, size=self.output.stat().st_size,
            virtual_size=image_info(self.output)["virtual-size"], seconds=time.monotonic() - started)

    # Inputs and idempotence

    def inputs_key(self, packages):
        digest = hashlib.sha256()
        digest.update(json.dumps({
            "packages": [package.key for package in packages],
            "disk_mib": DISK_MIB,
        }).encode())
        sources = sorted(FILES_DIR.iterdir()) + [Path(__file__), Path(cpio.__file__)]
        for path in sources:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()

    def is_current(self, key):
        if not self.output.exists():
            return False
        try:
            return json.loads(self.stamp_path.read_text())["inputs"] == key
        except (OSError, ValueError, KeyError):
            return False

    # Host and Debian packages

    def check_host_tools(self):
        missing = sorted({package for tool, package in HOST_TOOLS.items() if not shutil.which(tool)})
        if not any(path.exists() for path in MBR_BIN_PATHS):
            missing.append("syslinux-common")
        if missing:
            raise GuestImageUnavailable(
                f"host packages missing for the guest image build: {' '.join(missing)} (scripts/install.sh installs them)")

    def refresh_package_lists(self, why):
        """Runs `apt-get update` once per build, when the local package lists
        lack a package or name a version the mirror no longer has."""
        if self._lists_refreshed:
            raise GuestImageUnavailable(why)
        self._lists_refreshed = True
        (self.work_dir / "resolved-packages.json").unlink(missing_ok=True)
        self.log(f"{why}; refreshing package lists (apt-get update)")
        try:
            run(["apt-get", "update", "-q"], timeout=300)
        except (GuestImageError, subprocess.TimeoutExpired) as error:
            raise GuestImageUnavailable(f"{why}, and apt-get update failed: {error}") from error

    def candidate_versions(self, names):
        """The version apt would download now of each package, from one
        apt-cache call (each call reads the whole cache: about a second)."""
        while True:
            result = subprocess.run(["apt-cache", "show", "--no-all-versions", *names],
                                    capture_output=True, text=True)
            versions = {}
            package = None
            for line in result.stdout.splitlines():
                field, _, value = line.partition(":")
                if field == "Package":
                    package = value.strip()
                elif field == "Version" and package:
                    versions.setdefault(package, value.strip())
            missing = [name for name in names if name not in versions]
            if not missing:
                return versions
            self.refresh_package_lists(f"no Debian package {' '.join(missing)} in the package lists")

    def depends(self, name, recurse=False):
        command = ["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
                   "--no-replaces", "--no-enhances", name]
        if recurse:
            command.insert(2, "--recurse")
        names = []
        for line in run(command).splitlines():
            # With --recurse every package reached is a line of its own, not indented.
            if recurse and line and not line.startswith(" "):
                names.append(line.strip())
            elif not recurse and line.strip().startswith("Depends:"):
                names.append(line.split(":", 1)[1].strip())
        return names

    def resolve_packages(self):
        """The kernel image package first (the metapackage names it), then
        busybox, then dropbear and the libraries it needs. Remembered until
        apt's package lists change, so an up-to-date check stays quick."""
        saved_path = self.work_dir / "resolved-packages.json"
        try:
            saved = json.loads(saved_path.read_text())
            if saved["package_lists"] == package_lists_fingerprint():
                return [Package(name, version) for name, version in saved["packages"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        self.candidate_versions([KERNEL_METAPACKAGE, BUSYBOX_PACKAGE, SSH_PACKAGE])
        kernels = [name for name in self.depends(KERNEL_METAPACKAGE) if name.startswith("linux-image-")]
        if not kernels:
            raise GuestImageError(f"{KERNEL_METAPACKAGE} depends on no linux-image package")
        names = [kernels[0], BUSYBOX_PACKAGE] + sorted(set(self.depends(SSH_PACKAGE, recurse=True)))
        names = list(dict.fromkeys(name for name in names if not name.startswith("<")))
        versions = self.candidate_versions(names)
        packages = [Package(name, versions[name]) for name in names]
        saved_path.write_text(json.dumps({
            "package_lists": package_lists_fingerprint(),
            "packages": [[package.name, package.version] for package in packages]}, indent=1) + "\n")
        return packages

    def deb_path(self, package):
        debs = self.work_dir / "debs"
        for path in debs.glob(f"{package.name}_*.deb"):
            if run(["dpkg-deb", "--field", str(path), "Version"]).strip() == package.version:
                return path
        return None

    def fetch(self, packages):
        missing = [package for package in packages if self.deb_path(package) is None]
        if not missing:
            self.log(f"Packages already downloaded: {len(packages)}")
            return
        debs = self.work_dir / "debs"
        debs.mkdir(exist_ok=True)
        self.log(f"Downloading {len(missing)} Debian packages: {' '.join(package.key for package in missing)}")
        command = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root"]
        try:
            run(command + [package.key for package in missing], cwd=debs, timeout=600)
        except (GuestImageError, subprocess.TimeoutExpired) as error:
            self.refresh_package_lists(f"apt-get download failed ({str(error).strip()[-300:]})")
            raise StalePackageLists() from error

    def unpack(self, package):
        root = self.work_dir / "unpacked" / package.dirname
        if (root / ".unpacked").exists():
            return root
        self.log(f"Unpacking {package.key}")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        run(["dpkg-deb", "-x", str(self.deb_path(package)), str(root)])
        (root / ".unpacked").touch()
        return root

    def prune(self, packages):
        """Drops downloaded and unpacked packages that newer versions replaced
        (the unpacked kernel alone is over 100 MiB)."""
        wanted = {package.dirname for package in packages}
        for path in sorted((self.work_dir / "unpacked").iterdir()):
            if path.name not in wanted:
                self.log(f"Removing {path.name}, no longer used")
                shutil.rmtree(path)
        kept = {self.deb_path(package) for package in packages}
        for path in sorted((self.work_dir / "debs").glob("*.deb")):
            if path not in kept:
                path.unlink()

    # The guest

    def find_kernel(self, kernel_root):
        kernels = sorted((kernel_root / "boot").glob("vmlinuz-*"))
        if len(kernels) != 1:
            raise GuestImageError(f"expected one kernel in {kernel_root / 'boot'}, found {len(kernels)}")
        return kernels[0]

    def make_initramfs(self, kernel_root, roots, packages):
        archive = cpio.Archive()
        for directory in ("proc", "sys", "dev", "run", "tmp", "var/log", "etc/dropbear", "etc/stratus"):
            archive.directory(directory)
        archive.directory("root", mode=0o700)
        archive.symlink("var/run", "/run")
        # The kernel opens /dev/console for /init before devtmpfs is mounted.
        archive.char_device("dev/console", 5, 1)

        archive.file("init", (FILES_DIR / "init").read_bytes(), mode=0o755)
        for name in ("network-up", "udhcpc.script"):
            archive.file(f"etc/stratus/{name}", (FILES_DIR / name).read_bytes(), mode=0o755)
        archive.file("etc/stratus/functions", (FILES_DIR / "functions").read_bytes())
        for name, text in ETC_FILES.items():
            archive.file(name, text.encode(), mode=0o600 if name == "etc/shadow" else 0o644)

        self.add_busybox(archive, roots[BUSYBOX_PACKAGE])
        self.add_modules(archive, kernel_root)
        self.add_ssh_server(archive, [roots[package.name] for package in packages[2:]], roots[SSH_PACKAGE])

        self.log(f"Initramfs: {len(archive)} entries, {archive.data_size / 2**20:.1f} MiB before compression")
        return gzip.compress(archive.tobytes(), compresslevel=9, mtime=0)

    def add_busybox(self, archive, root):
        busybox = root / "bin/busybox"
        archive.file("bin/busybox", busybox.read_bytes(), mode=0o755)
        applets = run([str(busybox), "--list-full"]).split()
        for applet in applets:
            if "/" in applet and applet not in archive:
                archive.symlink(applet, "/bin/busybox")

    def add_modules(self, archive, kernel_root):
        versions = [path.name for path in (kernel_root / "lib/modules").iterdir()]
        if len(versions) != 1:
            raise GuestImageError(f"expected one kernel module tree, found {versions}")
        module_dir = f"lib/modules/{versions[0]}"
        loaded = []
        for module in GUEST_MODULES:
            source = kernel_root / module_dir / module
            if not source.exists():
                raise GuestImageError(f"kernel {versions[0]} has no module {module}")
            archive.file(f"{module_dir}/{module}", source.read_bytes())
            loaded.append(f"/{module_dir}/{module}")
        archive.file("etc/stratus/modules", ("\n".join(loaded) + "\n").encode())

    def add_ssh_server(self, archive, library_roots, ssh_root):
        """dropbear is linked dynamically: its libraries come from the
        unpacked library packages, found by asking their own dynamic loader."""
        loader_root = next((root for root in library_roots if (root / LOADER).exists()), None)
        if loader_root is None:
            raise GuestImageError("no unpacked package provides the dynamic loader")
        archive.file(LOADER, read_within(loader_root, LOADER), mode=0o755)
        library_path = ":".join(
            str(root / directory) for root in library_roots
            for directory in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu") if (root / directory).is_dir())
        for program in SSH_PROGRAMS:
            archive.file(program, (ssh_root / program).read_bytes(), mode=0o755)
            listing = run([str(loader_root / LOADER), "--library-path", library_path, "--list",
                           str(ssh_root / program)], env={})
            for line in listing.splitlines():
                if "=>" not in line:
                    continue
                soname, _, found = line.partition("=>")
                found = found.strip().rsplit(" (", 1)[0]
                if soname.strip() == Path(LOADER).name or found == "":
                    continue
                owner = next((root for root in library_roots if found.startswith(f"{root}/")), None)
                if owner is None:
                    raise GuestImageError(f"{program} needs {soname.strip()}, which no unpacked package provides "
                                          f"(found: {found})")
                relative = Path(found).relative_to(owner)
                if str(relative) not in archive:
                    archive.file(str(relative), read_within(owner, str(relative)), mode=0o755)

    # The disk

    def make_disk(self, scratch, names):
        raw = scratch / "disk.raw"
        disk_bytes = DISK_MIB * 2**20
        content = sum((scratch / name).stat().st_size for name in names)
        if content > disk_bytes - PARTITION_OFFSET - 2**20:
            raise GuestImageError(f"kernel and initramfs ({content} bytes) do not fit a {DISK_MIB} MiB disk")
        self.log(f"Making a {DISK_MIB} MiB syslinux disk ({content / 2**20:.1f} MiB of kernel and initramfs)")
        with open(raw, "wb") as disk:
            disk.truncate(disk_bytes)
        run(["sfdisk", "--quiet", str(raw)],
            input=f"label: dos\nunit: sectors\nstart={PARTITION_START_SECTOR}, type=e, bootable\n")
        partition_kib = (disk_bytes - PARTITION_OFFSET) // 1024
        run(["mkfs.fat", "--offset", str(PARTITION_START_SECTOR), "-n", "STRATUS", "-i", "5354524B",
             str(raw), str(partition_kib)])
        env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
        run(["mcopy", "-i", f"{raw}@@{PARTITION_OFFSET}", *[str(scratch / name) for name in names], "::/"], env=env)
        run(["syslinux", "--offset", str(PARTITION_OFFSET), "--install", str(raw)])
        mbr = next(path for path in MBR_BIN_PATHS if path.exists()).read_bytes()[:MBR_CODE_BYTES]
        with open(raw, "r+b") as disk:
            disk.write(mbr)
        return raw

    def write_qcow2(self, raw):
        self.output.parent.mkdir(parents=True, exist_ok=True)
        partial = self.output.with_name(self.output.name + ".partial")
        run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(partial)])
        os.replace(partial, self.output)


def package_lists_fingerprint():
    """Changes whenever `apt-get update` brings new package lists."""
    lists = sorted(Path("/var/lib/apt/lists").glob("*Packages*"))
    return hashlib.sha256(json.dumps(
        [(path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in lists]).encode()).hexdigest()


def read_within(root, relative):
    """Reads root/relative, following symbolic links (absolute ones too) inside
    root rather than on the host."""
    path = Path(relative)
    for _ in range(40):
        candidate = root / path
        if not candidate.is_symlink():
            return candidate.read_bytes()
        target = Path(os.readlink(candidate))
        path = target.relative_to("/") if target.is_absolute() else Path(os.path.normpath(path.parent / target))
    raise GuestImageError(f"too many symbolic links at {root / relative}")
