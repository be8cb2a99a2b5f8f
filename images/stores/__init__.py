"""Image stores: where image data lives, behind one small interface.

    store.add(image_id, chunks) -> url    writes the chunks (an iterable of
                                           bytes-like objects, each valid only
                                           until the next is asked for: an
                                           upload's buffers are reused) as the
                                           image's data; on any error nothing
                                           is left behind
    store.open(url) -> file object         readable, seekable binary file
    store.qemu_path(url) -> str            what `qemu-img` reads it as
    store.delete(url)                      removes the data (gone already: fine)
    store.discard_partial(image_id, older_than)
                                           removes what an upload of the image
                                           that never finished left behind,
                                           untouched since `older_than`

`url` is the store's own address of the data, kept in ImageLocation.
Enabled stores: `file` always, `ceph` when settings.IMAGE_RBD_CEPH_CONF
names a cluster. The staging area of the interoperable import (staging())
is a filesystem store of its own, never one of the image's stores."""
from functools import cache

from django.conf import settings


class StoreError(Exception):
    """The store could not take or give the data."""


class StoreFull(StoreError):
    """The store has no room for the data."""


@cache
def enabled():
    """{store id: store}, the default first."""
    from images.stores.filesystem import FilesystemStore

    found = {"file": FilesystemStore(settings.IMAGE_STORE_DIR)}
    if settings.IMAGE_RBD_CEPH_CONF:
        from images.stores.rbd import RbdStore

        found["ceph"] = RbdStore(settings.IMAGE_RBD_CEPH_CONF, settings.IMAGE_RBD_POOL)
    default_id = settings.IMAGE_DEFAULT_STORE
    if default_id not in found:
        raise StoreError(f"The default image store {default_id!r} is not enabled (enabled: {', '.join(found)}).")
    return {default_id: found[default_id], **found}


def get(store_id):
    """The store with this id, or None."""
    return enabled().get(store_id)


def default():
    return next(iter(enabled().values()))


STAGING_ID = "os_glance_staging_store"


@cache
def staging():
    """Where staged (PUT .../stage) and downloaded (web-download) data waits
    for its import: one file per image, beside the filesystem store."""
    from images.stores.filesystem import FilesystemStore

    store = FilesystemStore(settings.IMAGE_STORE_DIR.parent / "staging")
    store.id, store.description = STAGING_ID, "Staging area of image imports"
    return store
