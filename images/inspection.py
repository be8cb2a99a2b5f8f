"""What an image's data really is, decided before any qemu-img reads it.

qemu-img trusts what a file says of itself: a qcow2 may name a backing file
or an external data file and a VMDK descriptor may name extents, anywhere
on the host that reads it, and `qemu-img convert` then copies that host file
into the guest's disk (CVE-2024-32498). So the data goes through oslo.utils'
format inspector first, at upload (as it streams in) and again on the node
(before the cache converts it): it must be the declared disk_format and
nothing else, pass the inspector's safety checks (no backing file, data
file, outside extent or unknown feature) and have a virtual size within
settings.IMAGE_MAX_VIRTUAL_SIZE. When qemu-img does run on the data, it
runs under resource limits.

    check = FormatCheck()
    for chunk in data: check.feed(chunk)
    virtual_size = check.verdict(disk_format, size)   # or UnsafeImage"""
import json
import subprocess

from django.conf import settings
from oslo_utils.imageutils import format_inspector

# disk_format -> the inspector's name for what the data must be. Formats the
# inspector cannot read (ami, ari, aki, ploop) are blobs to it: their data
# must not look like any format it knows.
INSPECTED_AS = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vhd", "vhdx": "vhdx",
                "iso": "iso"}
# What else a format's data may also look like: a raw disk with a partition
# table is seen as `gpt` (MBR or GPT), a bootable (hybrid) ISO as both, and
# so may the blobs the inspector has no reader for (a kernel has a boot
# sector's signature).
ALSO_ALLOWED = {"raw": {"gpt"}, "iso": {"gpt"}, "ami": {"gpt", "iso"}, "ari": {"gpt", "iso"},
                "aki": {"gpt", "iso"}, "ploop": {"gpt", "iso"}}
# disk_formats whose virtual size is the data's own size.
FLAT_FORMATS = {"raw", "iso", "ami", "ari", "aki"}
# qemu-img info on hostile input must not take the host's memory or CPU
# (Nova's limits: 1 GiB of address space, 30 s of CPU).
QEMU_IMG_LIMITS = ["--as=1073741824", "--cpu=30"]


class UnsafeImage(Exception):
    """The data is not what its disk_format says, or is not safe to hand to
    qemu-img; the message says why."""


class FormatCheck:
    """Every format inspector reads the data as it goes by (each keeps only
    the few regions it needs, so a chunk costs little); the verdict comes
    once the last chunk was fed."""

    def __init__(self):
        self.inspectors = [inspector() for inspector in format_inspector.ALL_FORMATS.values()]
        self.failed = {}  # inspector name -> why it could not read the data

    def feed(self, chunk):
        for inspector in self.inspectors:
            # One that has read all it needs is done (one reading the end of
            # the data is never complete before the end).
            if inspector.NAME in self.failed or inspector.complete:
                continue
            try:
                inspector.eat_chunk(chunk)
            except Exception as error:  # noqa: BLE001  (an inspector that cannot parse the data: not its format)
                self.failed[inspector.NAME] = str(error) or type(error).__name__

    def verdict(self, disk_format, size):
        """The data's virtual size, when it is safe `disk_format` data."""
        for inspector in self.inspectors:
            inspector.finish()
        expected = INSPECTED_AS.get(disk_format, "raw")
        matched = {inspector.NAME: inspector for inspector in self.inspectors
                   if inspector.NAME != "raw" and inspector.NAME not in self.failed and _matches(inspector)}
        if expected != "raw" and expected not in matched:
            reason = self.failed.get(expected)
            found = ", ".join(sorted(matched)) or "raw data"
            raise UnsafeImage(f"the image data is not in the {disk_format} format"
                              f" ({reason if reason else f'it looks like {found}'}).")
        unexpected = set(matched) - {expected} - ALSO_ALLOWED.get(disk_format, set())
        if unexpected:
            raise UnsafeImage(f"the image data is {', '.join(sorted(unexpected))}, not {disk_format}.")
        # The inspector of the format itself checks the data's safety, and the
        # partition table of a raw disk is checked too (as Nova does).
        checked = [matched[name] for name in (expected, "gpt" if disk_format == "raw" else None) if name in matched]
        for inspector in checked:
            try:
                inspector.safety_check()
            except format_inspector.SafetyCheckFailed as error:
                reasons = "; ".join(f"{name}: {failure}" for name, failure in sorted(error.failures.items()))
                raise UnsafeImage(f"the {inspector.NAME} image data is not safe to use ({reasons}).")
            except format_inspector.ImageFormatError as error:
                raise UnsafeImage(f"the {inspector.NAME} image data cannot be checked: {error}.")
        if disk_format in FLAT_FORMATS or expected == "raw":
            virtual = size
        else:
            virtual = matched[expected].virtual_size
            if not virtual:
                raise UnsafeImage(f"the {disk_format} image data has no virtual size that can be read.")
        limit = settings.IMAGE_MAX_VIRTUAL_SIZE
        if virtual > limit:
            raise UnsafeImage(f"the image's virtual size of {virtual} bytes is larger than the "
                              f"{limit} bytes allowed.")
        return virtual


def _matches(inspector):
    try:
        return inspector.format_match
    except Exception:  # noqa: BLE001  (a header too short or malformed to say: not a match)
        return False


def qemu_img_info(path, qemu_format, timeout=60):
    """`qemu-img info` of the data read as `qemu_format` (never guessed),
    under resource limits: (returncode, parsed JSON or None, stderr)."""
    result = subprocess.run(["prlimit", *QEMU_IMG_LIMITS, "--", "qemu-img", "info", "--output", "json",
                             "-f", qemu_format, str(path)], capture_output=True, text=True, timeout=timeout)
    info = json.loads(result.stdout) if result.returncode == 0 else None
    return result.returncode, info, result.stderr.strip()
