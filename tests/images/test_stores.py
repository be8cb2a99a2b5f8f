"""Each image store keeps data whole or not at all."""
import os

import pytest
from django.conf import settings

from images.stores.filesystem import FilesystemStore
from images.stores.rbd import RbdStore


def stores_to_test(tmp_path):
    found = [FilesystemStore(tmp_path / "store")]
    if settings.IMAGE_RBD_CEPH_CONF:
        found.append(RbdStore(settings.IMAGE_RBD_CEPH_CONF, settings.IMAGE_RBD_POOL))
    return found


@pytest.mark.parametrize("store_index", [0, 1], ids=["file", "ceph"])
def test_add_open_delete_round_trip(tmp_path, store_index):
    stores = stores_to_test(tmp_path)
    if store_index >= len(stores):
        pytest.skip("no Ceph cluster configured (set STRATUS_IMAGE_RBD_CEPH_CONF to a ceph.conf): "
                    "the RBD image store is not exercised in this run")
    store = stores[store_index]
    content = os.urandom(3 * 2**20 + 17)
    url = store.add("round-trip", (content[start:start + 2**20] for start in range(0, len(content), 2**20)))
    with store.open(url) as handle:
        assert handle.read() == content
        handle.seek(len(content) - 17)
        assert handle.read() == content[-17:]
    store.delete(url)
    store.delete(url)  # already gone: fine


def test_failed_write_leaves_nothing(tmp_path):
    store = FilesystemStore(tmp_path / "store")

    def chunks():
        yield b"x" * 2**20
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.add("broken", chunks())
    assert list((tmp_path / "store").iterdir()) == []
