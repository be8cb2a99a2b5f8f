"""A writer for the cpio "newc" format the Linux kernel unpacks as initramfs.

Written in Python rather than with cpio(1) so that the archive can hold
root-owned files and the /dev/console device node without running as root or
touching the host's filesystem, and so that equal inputs give equal bytes.
"""
import stat

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


class Archive:
    def __init__(self):
        self._entries = {}

    def __contains__(self, name):
        return name.strip("/") in self._entries

    def __len__(self):
        return len(self._entries)

    @property
    def data_size(self):
        return sum(len(data) for _, data, _ in self._entries.values())

    def _add(self, name, mode, data=b"", rdev=(0, 0)):
        name = name.strip("/")
        parent = name.rpartition("/")[0]
        if parent and parent not in self._entries:
            self.directory(parent)
        self._entries[name] = (mode, data, rdev)

    def directory(self, name, mode=0o755):
        self._add(name, stat.S_IFDIR | mode)

    def file(self, name, data, mode=0o644):
        self._add(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._add(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name, major, minor, mode=0o600):
        self._add(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def tobytes(self):
        out = bytearray()
        # Sorted names put every directory before its contents.
        for inode, name in enumerate(sorted(self._entries), start=1):
            mode, data, rdev = self._entries[name]
            _write(out, name, inode, mode, data, rdev)
        _write(out, TRAILER, 0, 0, b"", (0, 0))
        return bytes(out)


def _pad(out):
    out += b"\0" * (-len(out) % 4)


def _write(out, name, inode, mode, data, rdev):
    encoded = name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(mode) else 1
    fields = (inode, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
    out += MAGIC + b"".join(b"%08X" % value for value in fields)
    out += encoded
    _pad(out)
    out += data
    _pad(out)
