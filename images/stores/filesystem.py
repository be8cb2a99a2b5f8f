"""The filesystem store: one file per image under a directory."""
import errno
import os
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

from images.stores import StoreError, StoreFull


class FilesystemStore:
    id = "file"
    description = "Local filesystem"

    def __init__(self, directory):
        self.directory = Path(directory)

    def add(self, image_id, chunks):
        """Writes into a hidden partial file and renames it into place only
        when every chunk is written, so a reader never sees half an image."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / image_id
        partial = self.directory / f".{image_id}.{uuid.uuid4().hex}.partial"
        try:
            with open(partial, "xb", buffering=0) as handle:
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        view = view[handle.write(view):]
            os.rename(partial, final)
        except OSError as error:
            partial.unlink(missing_ok=True)
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreFull("The image store is full.") from error
            raise StoreError(f"Could not write the image data: {error.strerror}.") from error
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return final.as_uri()

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

    def delete(self, url):
        self.path(url).unlink(missing_ok=True)
