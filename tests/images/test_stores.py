"""Each image store keeps data whole or not at all; the Ceph RBD store on a
real single-node cluster."""
import os

import pytest
import requests
from django.conf import settings

from images.stores.filesystem import FilesystemStore
from images.stores.rbd import RbdStore
from tests.images.conftest import make_qcow2, md5_of, unique


@pytest.fixture(params=["file", "ceph"])
def store(request, tmp_path):
    if request.param == "file":
        return FilesystemStore(tmp_path / "store")
    return RbdStore(request.getfixturevalue("ceph_conf"), settings.IMAGE_RBD_POOL)


def rbd_images(ceph_conf):
    import rados
    import rbd

    with rados.Rados(conffile=ceph_conf) as cluster, cluster.open_ioctx(settings.IMAGE_RBD_POOL) as ioctx:
        return rbd.RBD().list(ioctx)


def test_add_open_delete_round_trip(store):
    content = os.urandom(3 * 2**20 + 17)
    name = unique("round-trip")
    url = store.add(name, (content[start:start + 2**20] for start in range(0, len(content), 2**20)))
    with store.open(url) as handle:
        assert handle.read() == content
        handle.seek(len(content) - 17)
        assert handle.read() == content[-17:]
    store.delete(url)
    store.delete(url)  # already gone: fine


def test_failed_write_leaves_nothing(store, request):
    def chunks():
        yield b"x" * 2**20
        raise ConnectionResetError("client went away")

    name = unique("broken")
    with pytest.raises(ConnectionResetError):
        store.add(name, chunks())
    if isinstance(store, FilesystemStore):
        assert list(store.directory.iterdir()) == []
    else:
        assert name not in rbd_images(request.getfixturevalue("ceph_conf"))


@pytest.mark.live
def test_upload_to_ceph_through_the_api(cloud, ceph_conf, ceph_api_url, tmp_path):
    token = cloud.token()
    headers = {"X-Auth-Token": token}
    stores = requests.get(f"{ceph_api_url}/image/v2/info/stores", headers=headers, timeout=30).json()["stores"]
    assert [store["id"] for store in stores] == ["file", "ceph"]
    disk = make_qcow2(tmp_path / "disk.qcow2")
    image = requests.post(f"{ceph_api_url}/image/v2/images", headers=headers, timeout=30, json={
        "name": unique("rbd"), "disk_format": "qcow2", "container_format": "bare"}).json()
    response = requests.put(f"{ceph_api_url}/image/v2/images/{image['id']}/file", data=disk.read_bytes(),
                            timeout=60, headers={**headers, "Content-Type": "application/octet-stream",
                                                 "X-Image-Meta-Store": "ceph"})
    assert response.status_code == 204, response.text
    shown = requests.get(f"{ceph_api_url}/image/v2/images/{image['id']}", headers=headers, timeout=30).json()
    assert shown["stores"] == "ceph" and shown["checksum"] == md5_of(disk)
    assert shown["virtual_size"] == 2 * 2**20  # qemu-img read it from RBD
    assert image["id"] in rbd_images(ceph_conf)
    data = requests.get(f"{ceph_api_url}/image/v2/images/{image['id']}/file", headers=headers, timeout=60)
    assert data.content == disk.read_bytes()
    assert requests.delete(f"{ceph_api_url}/image/v2/images/{image['id']}", headers=headers,
                           timeout=30).status_code == 204
    assert image["id"] not in rbd_images(ceph_conf)


def test_discard_partial_removes_what_a_dead_upload_left(store, request):
    """An upload killed mid-way leaves data no location names: a partial
    file (filesystem) or an unfinished RBD image; discard_partial removes it
    (a filesystem upload started again since, written after the cutoff, stays)."""
    from django.utils import timezone

    name = unique("dead")
    if isinstance(store, FilesystemStore):
        store.directory.mkdir(parents=True)
        dead = store.directory / f".{name}.0123.partial"
        dead.write_bytes(b"x" * 1024)
        os.utime(dead, (0, 0))
        cutoff = timezone.now()
        newer = store.directory / f".{name}.4567.partial"
        newer.write_bytes(b"y" * 1024)
        os.utime(newer, (cutoff.timestamp() + 60, cutoff.timestamp() + 60))
        store.discard_partial(name, cutoff)
        assert sorted(path.name for path in store.directory.iterdir()) == [newer.name]
    else:
        import rados
        import rbd

        ceph_conf = request.getfixturevalue("ceph_conf")
        with rados.Rados(conffile=ceph_conf) as cluster, cluster.open_ioctx(settings.IMAGE_RBD_POOL) as ioctx:
            rbd.RBD().create(ioctx, name, 2**20)  # written straight into, never finished
        store.discard_partial(name, timezone.now())
        assert name not in rbd_images(ceph_conf)
    store.discard_partial(name, timezone.now())  # nothing left: fine


def test_add_replaces_what_a_dead_upload_of_the_image_left(store, request):
    """A dead upload's data the reaper could not remove (the store was
    unreachable then) does not stop the next upload of the image."""
    name = unique("retried")
    if isinstance(store, FilesystemStore):
        store.directory.mkdir(parents=True)
        (store.directory / f".{name}.0123.partial").write_bytes(b"old")
    else:
        import rados
        import rbd

        with rados.Rados(conffile=request.getfixturevalue("ceph_conf")) as cluster, \
                cluster.open_ioctx(settings.IMAGE_RBD_POOL) as ioctx:
            rbd.RBD().create(ioctx, name, 2**20)
    url = store.add(name, [b"new data"])
    with store.open(url) as handle:
        assert handle.read() == b"new data"
    store.delete(url)
