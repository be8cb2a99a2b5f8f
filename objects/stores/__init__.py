"""Object data back ends, behind one small interface:

    store.write(chunks) -> key    writes the chunks (an iterable of bytes) as
                                  a new piece of data and returns its key;
                                  it exists whole or not at all: on any
                                  error, or a kill, nothing is left visible
    store.open(key) -> file       a readable, seekable binary file
    store.delete(key)             removes the data (gone already: fine)

Keys are the store's own; the database keeps them (Object.data_key). The
filesystem back end serves the all-in-one; a RADOS one would implement the
same three calls."""
from functools import cache

from django.conf import settings


class StoreError(Exception):
    """The back end could not take or give the data."""


class StoreFull(StoreError):
    """The back end has no room for the data."""


@cache
def default():
    from objects.stores.filesystem import FilesystemStore

    return FilesystemStore(settings.OBJECT_DIR)
