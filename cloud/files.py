"""Streamed data and files, shared by the stores: writing chunks to files
(images, objects on a filesystem) and reading stored data as a seekable file
(RBD images, RADOS objects)."""
import io


def write_all(handle, chunks, write_error):
    """Writes every chunk whole to the unbuffered `handle` (a raw write may
    take only part of a buffer); an OSError of a write is raised as
    `write_error(error)` (errors of the chunks' source pass unchanged)."""
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            try:
                written = handle.write(view)
            except OSError as error:
                raise write_error(error)
            view = view[written:]


class SeekableReader(io.RawIOBase):
    """A read-only, seekable raw file of `length` bytes; a subclass reads
    from `position` in readinto()."""

    def __init__(self, length):
        self.length, self.position = length, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self):
        return self.position
