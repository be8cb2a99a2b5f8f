"""The Ceph RBD back end through the real `openstack` CLI, against the live
server, a control worker and an RBD back end's worker on the single-node
Ceph cluster the tests start: volumes are RBD images with the bytes they
should have (read back with librbd), snapshots native, clones copy-on-write,
and nothing is left in the pool after a failure. About 40 s besides the
cluster and the cloud."""
import os
import struct
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings

from tests.compute.nodes import wait_until
from tests.images.conftest import start_api, stop
from tests.volumes.conftest import VolumeWorker, forget_backends, wait_status
from volumes.backends import BackendError
from volumes.backends.rbd import RbdBackend
from volumes.models import Backend, Message, Snapshot, Volume

pytestmark = pytest.mark.django_db
POOL = "volumes"
# Room for the snapshot test's volumes and snapshot (5 GiB), not for the race's posts.
CAPACITY_GB = 5
RACE_POSTS = CAPACITY_GB + 3
MiB = 2**20


@pytest.fixture(scope="module")
def rbd_worker(live_db, cloud, control, ceph_conf, tmp_path_factory):
    """An RBD back end of CAPACITY_GB, the module's only live back end."""
    forget_backends(*Backend.objects.values_list("host", flat=True))
    base = tmp_path_factory.mktemp("rbd")
    worker = VolumeWorker(base, base / "worker.log", name=f"rbd-{uuid.uuid4().hex[:6]}", capacity_gb=CAPACITY_GB,
                          backend_args=["--driver", "rbd", "--ceph-conf", ceph_conf, "--pool", POOL],
                          STRATUS_PUBLIC_URL=cloud.url, STRATUS_IMAGE_CACHE_DIR=str(base / "image-cache")).start()
    yield worker
    worker.stop()
    forget_backends(worker.host)


@pytest.fixture(scope="module")
def ceph_images_url(cloud, ceph_conf, tmp_path_factory):
    """An API server whose image uploads may go to the RBD image store."""
    server, url = start_api(tmp_path_factory.mktemp("ceph-images"), STRATUS_IMAGE_RBD_CEPH_CONF=ceph_conf)
    yield url
    stop([server])


class Pool:
    """The volumes pool, read with librbd."""

    def __init__(self, ceph_conf, pool=POOL):
        import rados

        self.cluster = rados.Rados(conffile=ceph_conf)
        self.cluster.connect(timeout=10)
        self.ioctx = self.cluster.open_ioctx(pool)

    def names(self):
        import rbd

        return set(rbd.RBD().list(self.ioctx))

    def image(self, name):
        import rbd

        return rbd.Image(self.ioctx, name)

    def read(self, volume_id, offset, length):
        with self.image(f"volume-{volume_id}") as image:
            return image.read(offset, length)

    def close(self):
        self.ioctx.close()
        self.cluster.shutdown()


@pytest.fixture(scope="module")
def pool(ceph_conf):
    opened = Pool(ceph_conf)
    yield opened
    opened.close()


def volume_images(pool, *volume_ids):
    """The pool's images (whole or partial) of these volumes."""
    return {name for name in pool.names() for volume_id in volume_ids if name.startswith(f"volume-{volume_id}")}


def upload_to_ceph(cloud, url, data, disk_format="raw"):
    headers = {"X-Auth-Token": cloud.token()}
    image = requests.post(f"{url}/image/v2/images", headers=headers, timeout=30, json={
        "name": f"rbd-src-{uuid.uuid4().hex[:6]}", "disk_format": disk_format, "container_format": "bare"}).json()
    response = requests.put(f"{url}/image/v2/images/{image['id']}/file", data=data, timeout=60, headers={
        **headers, "Content-Type": "application/octet-stream", "X-Image-Meta-Store": "ceph"})
    assert response.status_code == 204, response.text
    return image["id"]


def test_create_show_list_extend_delete(cloud, rbd_worker, pool, ceph_conf):
    volume = cloud.openstack("volume", "create", "--size", "1", "rbd-basic", "-f", "json")
    shown = wait_status(cloud, volume["id"], ("available", "error"))
    assert shown["status"] == "available", shown
    assert shown["os-vol-host-attr:host"].startswith(rbd_worker.host)
    with pool.image(f"volume-{volume['id']}") as image:
        assert image.size() == 2**30
    assert "rbd-basic" in [row["Name"] for row in cloud.openstack("volume", "list", "-f", "json")]

    # What a node gets to build its network disk: Cinder's shape.
    info = Volume.objects.get(pk=volume["id"]).connection_info
    port = next(line.split(":")[-1] for line in open(ceph_conf) if line.startswith("mon_host"))
    assert info["driver_volume_type"] == "rbd"
    assert info["data"]["name"] == f"{POOL}/volume-{volume['id']}"
    assert info["data"]["hosts"] == ["127.0.0.1"] and info["data"]["ports"] == [port.strip()]
    assert info["data"]["auth_enabled"] is False

    cloud.openstack("volume", "set", "--size", "2", volume["id"])
    assert wait_status(cloud, volume["id"], "available")["size"] == 2
    with pool.image(f"volume-{volume['id']}") as image:
        assert image.size() == 2 * 2**30

    cloud.openstack("volume", "delete", volume["id"])
    wait_until(lambda: not volume_images(pool, volume["id"]), timeout=60, message="the volume's RBD image to go")
    assert "No Volume found" in cloud.openstack("volume", "show", volume["id"], expect_fail=True).stderr


def test_volume_from_an_rbd_image_is_a_clone_with_its_bytes(cloud, rbd_worker, pool, ceph_images_url, tmp_path):
    data = os.urandom(3 * MiB + 512)
    image_id = upload_to_ceph(cloud, ceph_images_url, data)
    volume = cloud.openstack("volume", "create", "--image", image_id, "--size", "1", "rbd-from-image", "-f", "json")
    shown = wait_status(cloud, volume["id"], ("available", "error"))
    assert shown["status"] == "available", shown
    assert shown["bootable"] is True
    with pool.image(f"volume-{volume['id']}") as image:
        assert image.parent_info() == (settings.IMAGE_RBD_POOL, image_id, "snap")  # copy-on-write
        assert image.size() == 2**30
    assert pool.read(volume["id"], 0, len(data)) == data
    assert pool.read(volume["id"], len(data), MiB) == bytes(MiB)
    # Its clone holds the image's data: the image cannot go before it (Glance's
    # 409), through the API server that has the RBD store.
    headers = {"X-Auth-Token": cloud.token()}
    refused = requests.delete(f"{ceph_images_url}/image/v2/images/{image_id}", headers=headers, timeout=30)
    assert refused.status_code == 409 and "in use" in refused.text, refused.text
    assert cloud.openstack("image", "show", image_id, "-f", "json")["status"] == "active"

    # An image in the file store is copied in through the image cache.
    path = tmp_path / "image.raw"
    path.write_bytes(data)
    file_image = cloud.openstack("image", "create", f"rbd-src-{uuid.uuid4().hex[:6]}", "--file", str(path),
                                 "--disk-format", "raw", "--container-format", "bare", "-f", "json")
    copied = cloud.openstack("volume", "create", "--image", file_image["id"], "--size", "1", "rbd-copied",
                             "-f", "json")
    assert wait_status(cloud, copied["id"], ("available", "error"))["status"] == "available"
    with pool.image(f"volume-{copied['id']}") as image:
        assert image.size() == 2**30
    assert pool.read(copied["id"], 0, len(data)) == data
    cloud.openstack("volume", "delete", volume["id"], copied["id"])
    wait_until(lambda: not volume_images(pool, volume["id"], copied["id"]), timeout=60,
               message="the volumes' RBD images to go")
    deleted = requests.delete(f"{ceph_images_url}/image/v2/images/{image_id}", headers=headers, timeout=30)
    assert deleted.status_code == 204, deleted.text  # no clone left


def test_snapshot_then_volume_from_snapshot_and_from_volume_have_the_same_bytes(cloud, rbd_worker, pool):
    volume = cloud.openstack("volume", "create", "--size", "1", "rbd-snap-src", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    written = os.urandom(MiB)
    with pool.image(f"volume-{volume['id']}") as image:  # what a guest would have written
        image.write(written, 5 * MiB)

    snapshot = cloud.openstack("volume", "snapshot", "create", "--volume", volume["id"], "rbd-snap", "-f", "json")
    assert wait_status(cloud, snapshot["id"], ("available", "error"), kind="volume snapshot")["status"] == "available"
    with pool.image(f"volume-{volume['id']}") as image:
        assert f"snapshot-{snapshot['id']}" in [snap["name"] for snap in image.list_snaps()]
        image.write(os.urandom(MiB), 5 * MiB)  # written after the snapshot: not in it

    from_snapshot = cloud.openstack("volume", "create", "--snapshot", snapshot["id"], "--size", "2", "rbd-from-snap",
                                    "-f", "json")
    from_volume = cloud.openstack("volume", "create", "--source", volume["id"], "rbd-from-volume", "-f", "json")
    for made, size in ((from_snapshot, 2), (from_volume, 1)):
        shown = wait_status(cloud, made["id"], ("available", "error"))
        assert shown["status"] == "available" and shown["size"] == size, shown
    assert pool.read(from_snapshot["id"], 5 * MiB, MiB) == written
    assert pool.read(from_volume["id"], 5 * MiB, MiB) == pool.read(volume["id"], 5 * MiB, MiB) != written
    with pool.image(f"volume-{from_snapshot['id']}") as image:
        assert image.parent_info() == (POOL, f"volume-{volume['id']}", f"snapshot-{snapshot['id']}")
        assert image.size() == 2 * 2**30

    # Deleting the snapshot keeps its clone whole (flattened first).
    cloud.openstack("volume", "snapshot", "delete", snapshot["id"])
    wait_until(lambda: not Snapshot.objects.filter(pk=snapshot["id"]).exists(), timeout=60,
               message="the snapshot to go")
    with pool.image(f"volume-{volume['id']}") as image:
        assert not list(image.list_snaps())
    assert pool.read(from_snapshot["id"], 5 * MiB, MiB) == written
    made = (volume["id"], from_snapshot["id"], from_volume["id"])
    cloud.openstack("volume", "delete", *made)
    wait_until(lambda: not volume_images(pool, *made), timeout=60, message="the volumes' RBD images to go")


def test_image_create_from_an_rbd_volume_has_its_bytes(cloud, rbd_worker, pool, tmp_path):
    """`openstack image create --volume`: the worker reads the RBD image
    through QEMU's rbd driver and stores it as the image's data."""
    volume = cloud.openstack("volume", "create", "--size", "1", "rbd-upload", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    head, far = os.urandom(MiB), os.urandom(4096)
    with pool.image(f"volume-{volume['id']}") as image:  # what a guest would have written
        image.write(head, 0)
        image.write(far, 700 * MiB)

    name = f"rbd-uploaded-{uuid.uuid4().hex[:6]}"
    cloud.openstack("image", "create", "--volume", volume["id"], "--disk-format", "raw", name)
    conn = cloud.connect()
    wait_until(lambda: (conn.image.find_image(name) or {}).get("status") in ("active", "killed", None) and
               Volume.objects.get(pk=volume["id"]).status == "available", timeout=120, interval=0.5,
               message="the upload to finish")
    image = conn.image.find_image(name)
    assert image is not None and image.status == "active", list(Message.objects.filter(
        resource_uuid=volume["id"]).values_list("user_message", flat=True))
    assert image.size == 2**30 and image.disk_format == "raw"
    downloaded = tmp_path / "image.raw"
    with open(downloaded, "wb") as out:
        conn.image.download_image(image, output=out)
    with open(downloaded, "rb") as data:
        assert data.read(MiB) == head
        data.seek(700 * MiB)
        assert data.read(4096) == far
    conn.image.delete_image(image)
    cloud.openstack("volume", "delete", volume["id"])
    wait_until(lambda: not volume_images(pool, volume["id"]), timeout=60, message="the volume's RBD image to go")


def test_concurrent_creates_never_pass_the_back_ends_capacity(cloud, rbd_worker, pool):
    conn = cloud.connect("stratus")
    token, project = conn.auth_token, conn.current_project_id

    def post(index):
        return requests.post(f"{cloud.url}/volume/v3/{project}/volumes", headers={"X-Auth-Token": token},
                             json={"volume": {"size": 1, "name": f"rbd-race-{index}"}}, timeout=60)

    with ThreadPoolExecutor(max_workers=RACE_POSTS) as threads:
        responses = list(threads.map(post, range(RACE_POSTS)))
    assert [response.status_code for response in responses] == [202] * RACE_POSTS
    ids = [response.json()["volume"]["id"] for response in responses]

    def settled():
        statuses = list(Volume.objects.filter(pk__in=ids).values_list("status", flat=True))
        return statuses if "creating" not in statuses else None

    statuses = wait_until(settled, timeout=120, interval=0.5, message="the creates to settle")
    assert sorted(statuses) == ["available"] * CAPACITY_GB + ["error"] * (RACE_POSTS - CAPACITY_GB)
    available = Volume.objects.filter(pk__in=ids, status="available").values_list("pk", flat=True)
    assert volume_images(pool, *ids) == {f"volume-{pk}" for pk in available}
    cloud.openstack("volume", "delete", *ids)
    wait_until(lambda: not Volume.objects.filter(pk__in=ids).exists(), timeout=60, message="the deletes")
    assert not volume_images(pool, *ids)
    assert Backend.objects.get(host=rbd_worker.host).allocated_capacity_gb == 0


def test_a_failed_create_leaves_no_rbd_image(cloud, rbd_worker, pool, ceph_images_url, ceph_conf):
    # The image's data vanished from the image store behind the cloud's back.
    image_id = upload_to_ceph(cloud, ceph_images_url, os.urandom(MiB))
    images = Pool(ceph_conf, settings.IMAGE_RBD_POOL)
    try:
        import rbd

        with images.image(image_id) as image:
            image.unprotect_snap("snap")
            image.remove_snap("snap")
        rbd.RBD().remove(images.ioctx, image_id)
    finally:
        images.close()
    volume = cloud.openstack("volume", "create", "--image", image_id, "--size", "1", "rbd-broken", "-f", "json")
    shown = wait_status(cloud, volume["id"], ("available", "error"))
    assert shown["status"] == "error"
    assert not volume_images(pool, volume["id"])
    cloud.openstack("volume", "delete", volume["id"])


def test_a_copy_that_fails_midway_leaves_no_rbd_image(ceph_conf, pool, tmp_path):
    """qemu-img copies a qcow2 whose first L2 table offset is corrupt into
    the RBD image it makes, and fails on reading it: no image is left."""
    raw = tmp_path / "disk.raw"
    raw.write_bytes(os.urandom(8 * MiB))
    qcow2 = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)], check=True)
    with open(qcow2, "r+b") as disk:
        disk.seek(40)  # the header's l1_table_offset
        disk.seek(struct.unpack(">Q", disk.read(8))[0])
        disk.write(struct.pack(">Q", 2**63 | 0x10200))  # an unaligned L2 table
    backend = RbdBackend(ceph_conf, POOL)
    volume_id = str(uuid.uuid4())
    with pytest.raises(BackendError, match="Image is corrupt"):
        backend.create_from_image(volume_id, 1, qcow2, "qcow2")
    assert not volume_images(pool, volume_id)


def test_discard_partial_removes_what_a_killed_create_left(ceph_conf, pool):
    import rbd

    backend = RbdBackend(ceph_conf, POOL)
    volume_id = str(uuid.uuid4())
    rbd.RBD().create(pool.ioctx, f"volume-{volume_id}.part", MiB)
    assert volume_id not in backend.volume_ids()
    assert backend.discard_partial() == [f"volume-{volume_id}.part"]
    assert not volume_images(pool, volume_id)


def test_a_partial_image_another_client_still_watches_is_removed_once_it_lets_go(ceph_conf, pool):
    """What a killed worker's librbd leaves until Ceph ends its watch: the
    partial image is busy. It is left (the worker starts all the same) and
    removed by a later call, which touches no other partial image (the
    worker's own creates under way)."""
    import rbd

    backend = RbdBackend(ceph_conf, POOL)
    watched, own = str(uuid.uuid4()), str(uuid.uuid4())
    rbd.RBD().create(pool.ioctx, f"volume-{watched}.part", MiB)
    watcher = subprocess.Popen(["rbd", "-c", str(ceph_conf), "watch", f"{POOL}/volume-{watched}.part"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def watchers():
            # Opened read-only: no watch of its own.
            with rbd.Image(pool.ioctx, f"volume-{watched}.part", read_only=True) as image:
                return list(image.watchers_list())

        wait_until(lambda: watcher.poll() is not None or watchers(), timeout=30, message="the watch")
        assert watcher.poll() is None, watcher.stdout.read()
        assert backend.discard_partial() == []
        assert backend.partial_left == {f"volume-{watched}.part"}
        assert volume_images(pool, watched)
        rbd.RBD().create(pool.ioctx, f"volume-{own}.part", MiB)
    finally:
        watcher.communicate("\n", timeout=30)  # it lets go
    assert backend.discard_partial(only_left=True) == [f"volume-{watched}.part"]
    assert backend.partial_left == set() and not volume_images(pool, watched)
    assert volume_images(pool, own) == {f"volume-{own}.part"}
    assert backend.discard_partial() == [f"volume-{own}.part"]
