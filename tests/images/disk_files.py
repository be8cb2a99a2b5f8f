"""Disk image files for the format checks, made here: valid ones of each
format, and hostile ones that make qemu-img read a file of the host."""
import os
import struct
import subprocess
from pathlib import Path

from tests.images.conftest import make_qcow2


def qemu_img(*args):
    subprocess.run(["qemu-img", *map(str, args)], check=True, capture_output=True)


def raw_disk(path, size=2 * 2**20):
    path.write_bytes(os.urandom(size))
    return path


def vmdk(path, subformat):
    """A valid VMDK (streamOptimized or monolithicSparse) with one extent,
    inside the file."""
    raw = raw_disk(path.with_suffix(".raw"), 2**20)
    qemu_img("convert", "-f", "raw", "-O", "vmdk", "-o", f"subformat={subformat}", raw, path)
    raw.unlink()
    return path


def iso(path, blocks=64):
    """An ISO 9660 image: 16 empty system sectors, then a primary volume
    descriptor giving the volume's size, then the terminator."""
    sector = 2048
    primary = bytearray(sector)
    primary[0:7] = b"\x01CD001\x01"
    primary[80:88] = struct.pack("<I", blocks) + struct.pack(">I", blocks)
    primary[128:132] = struct.pack("<H", sector) + struct.pack(">H", sector)
    terminator = bytearray(sector)
    terminator[0:7] = b"\xffCD001\x01"
    body = bytes(16 * sector) + bytes(primary) + bytes(terminator)
    path.write_bytes(body + os.urandom(blocks * sector - len(body)))
    return path


def flat_vmdk_descriptor(path, host_file, sectors):
    """A monolithicFlat VMDK: a text descriptor whose one extent is a file
    of the host that reads it (CVE-2024-32498)."""
    path.write_text(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n"
        f"# Extent description\nRW {sectors} FLAT \"{host_file}\" 0\n\n"
        "# The Disk Data Base\nddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n")
    return path


def qcow2_with_backing_file(path, host_file):
    qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", host_file, path)
    return path


def qcow2_with_data_file(path, host_file):
    """A qcow2 whose clusters live in another file (an external data file,
    raw): reading the image reads that file. `qemu-img create` would zero
    the data file it names, so the image is made on a scratch file and then
    pointed at `host_file`, which stays as it was."""
    scratch = Path(path).with_suffix(".scratch")
    qemu_img("create", "-q", "-f", "qcow2", "-o", f"data_file={scratch},data_file_raw=on", path,
             os.path.getsize(host_file))
    qemu_img("amend", "-q", "-f", "qcow2", "-o", f"data_file={host_file}", path)
    scratch.unlink()
    return path


def huge_qcow2(path, virtual="64T"):
    qemu_img("create", "-q", "-f", "qcow2", path, virtual)
    return path


def qcow2(path):
    return make_qcow2(path, data_bytes=2**20)


def kernel_like(path):
    """A blob shaped like a Linux kernel (bzImage): a boot sector's 0x55AA
    signature at 510 and the setup header's magic, then code."""
    blob = bytearray(os.urandom(64 * 1024))
    blob[510:512] = b"\x55\xaa"
    blob[0x202:0x206] = b"HdrS"
    path.write_bytes(bytes(blob))
    return path
