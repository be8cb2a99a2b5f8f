"""The file back end: each volume a raw or qcow2 file in one directory,
each snapshot a full copy beside it, made and changed with qemu-img.

    <dir>/volume-<id>            a volume
    <dir>/snapshot-<id>          a snapshot
    <dir>/.<name>.part           a file being made (renamed when complete)
"""
import json
import os
import shutil
from pathlib import Path

from volumes.backends import BackendError, qemu_img

FORMATS = ("raw", "qcow2")
GiB = 2**30


class FileBackend:
    driver = "file"

    def __init__(self, directory, volume_format="raw", capacity_gb=0):
        if volume_format not in FORMATS:
            raise BackendError(f"The file back end's format must be one of {', '.join(FORMATS)}, "
                               f"not {volume_format!r}.")
        self.directory = Path(directory)
        self.format = volume_format
        self.configured_capacity_gb = capacity_gb
        self.partial_left = set()  # a file always goes at once
        self.directory.mkdir(parents=True, exist_ok=True)

    # -- paths

    def volume_path(self, volume_id):
        return self.directory / f"volume-{volume_id}"

    def snapshot_path(self, snapshot_id):
        return self.directory / f"snapshot-{snapshot_id}"

    @staticmethod
    def _partial(path):
        return path.with_name(f".{path.name}.part")

    # -- the interface

    def capacity_gb(self):
        if self.configured_capacity_gb:
            return self.configured_capacity_gb
        return shutil.disk_usage(self.directory).total // GiB

    def create(self, volume_id, size_gb):
        with self._making(self.volume_path(volume_id)) as partial:
            if self.format == "raw":
                # What `qemu-img create -f raw` makes, a sparse file of the
                # size, without a process for it.
                with open(partial, "xb") as file:
                    file.truncate(size_gb * GiB)
            else:
                qemu_img("create", "-q", "-f", self.format, str(partial), str(size_gb * GiB))

    def create_from_image(self, volume_id, size_gb, image_path, image_format):
        self._copy(Path(image_path), image_format, self.volume_path(volume_id), size_gb)

    def create_from_volume(self, volume_id, size_gb, source_volume_id):
        self._copy(self._existing(self.volume_path(source_volume_id)), self.format, self.volume_path(volume_id),
                   size_gb)

    def create_from_snapshot(self, volume_id, size_gb, snapshot_id):
        self._copy(self._existing(self.snapshot_path(snapshot_id)), self.format, self.volume_path(volume_id),
                   size_gb)

    def extend(self, volume_id, size_gb, in_use=False):
        path = self._existing(self.volume_path(volume_id))
        if self.format == "raw":
            # A raw file grows by its length alone, also while QEMU holds it
            # (which keeps qemu-img from opening it).
            with open(path, "r+b") as file:
                if file.seek(0, 2) < size_gb * GiB:
                    file.truncate(size_gb * GiB)
        elif not in_use:
            qemu_img("resize", "-q", "-f", self.format, str(path), str(size_gb * GiB))
        # An attached qcow2 file is grown by the QEMU that holds it: the
        # node's blockResize, told after this.

    def qemu_source(self, volume_id):
        return str(self._existing(self.volume_path(volume_id))), self.format

    def snapshot_source(self, snapshot_id):
        return str(self._existing(self.snapshot_path(snapshot_id))), self.format

    def delete(self, volume_id):
        self.volume_path(volume_id).unlink(missing_ok=True)

    def create_snapshot(self, snapshot_id, volume_id):
        source = self._existing(self.volume_path(volume_id))
        with self._making(self.snapshot_path(snapshot_id)) as partial:
            qemu_img("convert", "-q", "-f", self.format, "-O", self.format, str(source), str(partial))

    def delete_snapshot(self, snapshot_id):
        self.snapshot_path(snapshot_id).unlink(missing_ok=True)

    def connection_info(self, volume_id):
        return {"driver_volume_type": "file",
                "data": {"device_path": str(self.volume_path(volume_id)), "format": self.format}}

    def volume_ids(self):
        return {path.name[len("volume-"):] for path in self.directory.glob("volume-*")}

    def snapshot_ids(self):
        return {path.name[len("snapshot-"):] for path in self.directory.glob("snapshot-*")}

    def discard_partial(self, only_left=False):
        """Removes the files creates killed midway left behind (each goes
        at once: nothing is ever left for a later call)."""
        removed = []
        if only_left:
            return removed
        for path in self.directory.glob(".*.part"):
            path.unlink(missing_ok=True)
            removed.append(path.name)
        return removed

    # -- the rest

    def _existing(self, path):
        if not path.exists():
            raise BackendError(f"{path.name} is missing from the back end.")
        return path

    def _copy(self, source, source_format, dest, size_gb):
        """`source`'s bytes in a new volume file at `dest`, grown to size_gb."""
        virtual_size = self._virtual_size(source, source_format)
        if virtual_size > size_gb * GiB:
            raise BackendError(f"The source's virtual size of {virtual_size} bytes does not fit in a volume of "
                               f"{size_gb} GiB.")
        with self._making(dest) as partial:
            qemu_img("convert", "-q", "-f", source_format, "-O", self.format, str(source), str(partial))
            qemu_img("resize", "-q", "-f", self.format, str(partial), str(size_gb * GiB))

    def _virtual_size(self, path, path_format):
        output = qemu_img("info", "--output=json", "-f", path_format, str(path))
        return json.loads(output)["virtual-size"]

    class _making:
        """The file is written under a partial name and renamed into place
        only once complete; on any error the partial file is removed."""

        def __init__(self, path):
            self.path = path
            self.partial = FileBackend._partial(path)

        def __enter__(self):
            self.partial.unlink(missing_ok=True)
            return self.partial

        def __exit__(self, kind, error, traceback):
            if kind is None:
                os.rename(self.partial, self.path)
            else:
                self.partial.unlink(missing_ok=True)
            return False

