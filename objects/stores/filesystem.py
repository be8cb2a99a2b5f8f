"""Object data as files: `<dir>/<key[:2]>/<key>`, written under `<dir>/tmp/`
first and renamed into place once complete; write() returns only once the
file and its directory are on disk (fdatasync, fsync), so that a process
killed mid-write leaves only a file no object row names."""
import errno
import os
import uuid
from pathlib import Path

from cloud.files import write_all
from objects.stores import StoreError, StoreFull


class FilesystemStore:
    def __init__(self, directory):
        self.directory = Path(directory).absolute()
        self.temporary = self.directory / "tmp"

    def path(self, key):
        if len(key) != 32 or not all(c in "0123456789abcdef" for c in key):
            raise StoreError(f"{key!r} is not a key of this store.")
        return self.directory / key[:2] / key

    def write(self, chunks):
        key = uuid.uuid4().hex
        final = self.path(key)
        partial = self.temporary / key
        try:
            # The directories are made when missing (the first write), not
            # asked for on every write.
            try:
                handle = open(partial, "xb", buffering=0)
            except FileNotFoundError:
                self.temporary.mkdir(parents=True, exist_ok=True)
                handle = open(partial, "xb", buffering=0)
        except OSError as error:
            raise self._error(error)
        renamed = False
        try:
            with handle:
                write_all(handle, chunks, self._error)
                # Renamed before it is synced: no row names the key until
                # write() returns, so a file cut short by a crash there is
                # never read; the file's sync then commits the rename with
                # it (on a journaling file system, one journal commit for
                # both), so the directory's sync finds nothing left to do.
                try:
                    os.rename(partial, final)
                except FileNotFoundError:
                    final.parent.mkdir(exist_ok=True)
                    os.rename(partial, final)
                renamed = True
                os.fdatasync(handle.fileno())  # the data and what reading it needs (its size)
            self._sync_directory(final.parent)
        except BaseException:
            (final if renamed else partial).unlink(missing_ok=True)
            raise
        return key

    @staticmethod
    def _sync_directory(directory):
        # The rename itself is on disk only once its directory is.
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    @staticmethod
    def _error(error):
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreFull("The object store is full.")
        return StoreError(f"Could not write the object data: {error.strerror}.")

    def open(self, key):
        try:
            return open(self.path(key), "rb")
        except FileNotFoundError as error:
            raise StoreError("The object's data is missing from the store.") from error

    def delete(self, key):
        self.path(key).unlink(missing_ok=True)

    def discard_temporary(self, older_than):
        """Temporary files of writes that died (their process killed) before
        `older_than` (a unix time); newer ones may still be written."""
        removed = 0
        for partial in self.temporary.glob("*") if self.temporary.exists() else ():
            try:
                if partial.stat().st_mtime < older_than:
                    partial.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
