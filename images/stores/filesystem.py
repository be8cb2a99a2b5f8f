"""The filesystem store: one file per image under a directory."""
import errno
import os
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

from cloud.files import write_all
from images.stores import StoreError, StoreFull


class FilesystemStore:
    id = "file"
    description = "Local filesystem"

    def __init__(self, directory):
        self.directory = Path(directory).absolute()

    def add(self, image_id, chunks):
        """Writes into a hidden partial file and renames it into place only
        when every chunk is written, so a reader never sees half an image."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / image_id
        partial = self.directory / f".{image_id}.{uuid.uuid4().hex}.partial"
        try:
            handle = open(partial, "xb", buffering=0)
        except OSError as error:
            raise self._error(error)
        try:
            with handle:
                write_all(handle, chunks, self._error)
            os.rename(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return final.as_uri()

    @staticmethod
    def _error(error):
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreFull("The image store is full.")
        return StoreError(f"Could not write the image data: {error.strerror}.")

    def path(self, url):
        path = Path(unquote(urlparse(url).path))
        if path.parent != self.directory:
            raise StoreError(f"{url} is not in the image store {self.directory}.")
        return path

    def open(self, url):
        try:
            return open(self.path(url), "rb")
        except FileNotFoundError as error:
            raise StoreError("The image data is missing from the store.") from error

    def qemu_path(self, url):
        return str(self.path(url))

    def in_use(self, url):
        """Whether something outside the image service depends on the data
        (never for a file: volumes and caches copy it)."""
        return False

    def delete(self, url):
        self.path(url).unlink(missing_ok=True)

    def discard_partial(self, image_id, older_than):
        """Partial files of a dead upload; a newer one (an upload started
        again since) is still being written and stays."""
        cutoff = older_than.timestamp()
        for partial in self.directory.glob(f".{image_id}.*.partial"):
            try:
                if partial.stat().st_mtime < cutoff:
                    partial.unlink()
            except FileNotFoundError:
                pass
