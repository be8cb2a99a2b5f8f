"""Writing streamed data to files, shared by the stores that keep data on
a filesystem (images, objects)."""


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
