"""Object data back ends, behind one small interface:

    store.write(chunks) -> key    writes the chunks (an iterable of bytes) as
                                  a new piece of data and returns its key;
                                  it exists whole or not at all: on any
                                  error, or a kill, nothing is left visible
    store.open(key) -> file       a readable, seekable binary file
    store.delete(key)             removes the data (gone already: fine)

Keys are the store's own; the database keeps them (Object.data_key). The
filesystem back end serves the all-in-one; STRATUS_OBJECT_STORE=rados puts
the data in Ceph RADOS instead (STRATUS_OBJECT_RADOS_CEPH_CONF names the
cluster, STRATUS_OBJECT_RADOS_POOL the pool, `objects` by default)."""
import os
from functools import cache

from django.conf import settings


class StoreError(Exception):
    """The back end could not take or give the data."""


class StoreFull(StoreError):
    """The back end has no room for the data."""


def _setting(name, default):
    return getattr(settings, name, None) or os.environ.get(f"STRATUS_{name}", default)


@cache
def default():
    kind = _setting("OBJECT_STORE", "filesystem")
    if kind == "rados":
        from objects.stores.rados import RadosStore

        return RadosStore(_setting("OBJECT_RADOS_CEPH_CONF", ""), _setting("OBJECT_RADOS_POOL", "objects"))
    if kind != "filesystem":
        raise StoreError(f"Unknown object store {kind!r} (known: filesystem, rados).")
    from objects.stores.filesystem import FilesystemStore

    return FilesystemStore(settings.OBJECT_DIR)
