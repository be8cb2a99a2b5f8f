"""A volume worker SIGKILLed in the middle of a create leaves nothing stuck,
on the file back end and on RBD: the reconciler ends the volume in error
with a message once the deadline passed, its space and quota are given
back, and the worker's next start removes the partial file or RBD image it
left (the qemu-img it ran died with it, so nothing writes on into it).
Nor does a node killed mid-detach: the volume is in-use again with a
message, and the node, back, finishes the detach."""
import os
import uuid

import pytest

from tests.compute.nodes import wait_until
from tests.compute.pipeline import start_nodes, stop_nodes, upload_tiny_image
from tests.volumes.conftest import VolumeWorker, forget_backends
from volumes import conf, quotas, tasks
from volumes.models import Attachment, Backend, Message, Volume

IMAGE_BYTES = 192 * 2**20
POOL = "volumes"


# No `db` mark: the reconciler's writes here commit, as a control worker's would.
@pytest.fixture(scope="module")
def worker(live_db, cloud, control, tmp_path_factory):
    forget_backends(*Backend.objects.values_list("host", flat=True))
    base = tmp_path_factory.mktemp("killed")
    made = VolumeWorker(base / "data", base / "worker.log", STRATUS_PUBLIC_URL=cloud.url,
                        STRATUS_IMAGE_CACHE_DIR=str(base / "cache"))
    yield made.start()
    if made.process.poll() is None:
        made.stop()
    forget_backends(made.host)


@pytest.fixture(scope="module")
def rbd_worker(live_db, cloud, control, ceph_conf, tmp_path_factory):
    import rados

    forget_backends(*Backend.objects.values_list("host", flat=True))
    base = tmp_path_factory.mktemp("killed-rbd")
    made = VolumeWorker(base, base / "worker.log", name=f"rbd-{uuid.uuid4().hex[:6]}", capacity_gb=5,
                        backend_args=["--driver", "rbd", "--ceph-conf", ceph_conf, "--pool", POOL],
                        STRATUS_PUBLIC_URL=cloud.url, STRATUS_IMAGE_CACHE_DIR=str(base / "cache"))
    cluster = rados.Rados(conffile=ceph_conf)
    cluster.connect(timeout=10)
    made.ioctx = cluster.open_ioctx(POOL)
    yield made.start()
    if made.process.poll() is None:
        made.stop()
    forget_backends(made.host)
    made.ioctx.close()
    cluster.shutdown()


def partial_files(worker, volume_id):
    """What a create in progress is writing: the image download, or the volume file."""
    cache = worker.directory.parent / "cache"
    found = list(cache.glob(".*.part")) if cache.exists() else []
    return found + list(worker.directory.glob(f".volume-{volume_id}.part"))


def left_files(worker, volume_id):
    return list(worker.directory.glob(f"*{volume_id}*"))


def rbd_images(worker, volume_id):
    import rbd

    return [name for name in rbd.RBD().list(worker.ioctx) if volume_id in name]


def partial_rbd_image(worker, volume_id):
    """Being written: the copy into the pool under the partial name."""
    return [name for name in rbd_images(worker, volume_id) if name.endswith(".part")]


def test_a_worker_killed_mid_create_leaves_nothing_in_creating(cloud, worker, tmp_path, monkeypatch):
    kill_mid_create_then_reconcile_and_restart(cloud, worker, tmp_path, monkeypatch, partial_files, left_files)
    assert worker.files() == []


def test_a_node_killed_mid_detach_leaves_nothing_in_detaching(cloud, worker, tmp_path, monkeypatch):
    nodes, (host,) = start_nodes(cloud, tmp_path, 1, "detach", memory_mb=10**7)
    try:
        server = cloud.openstack("server", "create", "--image", upload_tiny_image(cloud, tmp_path), "--flavor",
                                 "m1.tiny", "--nic", "none", "--wait", f"detach-{uuid.uuid4().hex[:6]}", "-f", "json")
        assert server["OS-EXT-SRV-ATTR:host"] == host
        volume = cloud.openstack("volume", "create", "--size", "1", "detach-me", "-f", "json")
        wait_until(lambda: Volume.objects.get(pk=volume["id"]).status == "available", message="the volume")
        cloud.openstack("server", "add", "volume", server["id"], volume["id"])
        assert Volume.objects.get(pk=volume["id"]).status == "in-use"

        # The node dies; the detach asked meanwhile waits on its queue.
        nodes.kill()
        cloud.openstack("server", "remove", "volume", server["id"], volume["id"])
        assert cloud.openstack("volume", "show", volume["id"], "-f", "json")["status"] == "detaching"
        monkeypatch.setattr(conf, "TASK_DEADLINE", 0)
        assert tasks.reconcile()["ended"] == 1
        shown = cloud.openstack("volume", "show", volume["id"], "-f", "json")
        assert shown["status"] == "in-use" and shown["attachments"][0]["server_id"] == server["id"]
        [message] = Message.objects.filter(resource_uuid=volume["id"])
        assert message.user_message == (f"detach volume: the detach did not finish within 0 seconds; the volume "
                                        f"is still attached to server {server['id']}.")
        assert [row["Volume ID"] for row in cloud.openstack("server", "volume", "list", server["id"],
                                                            "-f", "json")] == [volume["id"]]
        assert tasks.reconcile()["ended"] == 0  # in-use is not stuck

        # Back, the node takes the detach it was sent and finishes it.
        nodes.start()
        wait_until(lambda: Volume.objects.get(pk=volume["id"]).status == "available", timeout=60,
                   message="the node to finish the detach")
        assert not Attachment.objects.filter(volume_id=volume["id"]).exists()
        cloud.openstack("server", "delete", "--wait", server["id"])
        cloud.openstack("volume", "delete", volume["id"])
    finally:
        stop_nodes(nodes, [host])


def test_an_rbd_worker_killed_mid_copy_leaves_nothing_in_creating_nor_in_the_pool(cloud, rbd_worker, tmp_path,
                                                                                  monkeypatch):
    kill_mid_create_then_reconcile_and_restart(cloud, rbd_worker, tmp_path, monkeypatch, partial_rbd_image,
                                               rbd_images)


def kill_mid_create_then_reconcile_and_restart(cloud, worker, tmp_path, monkeypatch, in_progress, left_of):
    """A volume from a 192 MiB image, its worker SIGKILLed once
    `in_progress(worker, volume_id)` finds what the create is writing;
    nothing of it is left after (`left_of(worker, volume_id)`)."""
    source = tmp_path / "big.raw"
    source.write_bytes(os.urandom(IMAGE_BYTES))
    image = cloud.openstack("image", "create", f"big-{uuid.uuid4().hex[:6]}", "--file", str(source),
                            "--disk-format", "raw", "--container-format", "bare", "-f", "json")
    conn = cloud.connect()
    volume = conn.block_storage.create_volume(size=1, image_id=image["id"], name="killed-mid-create")
    wait_until(lambda: in_progress(worker, volume.id), timeout=60, interval=0.01,
               message="the create to be under way")
    worker.kill()
    row = Volume.objects.get(pk=volume.id)
    assert row.status == "creating" and row.backend.host == worker.host
    assert Backend.objects.get(host=worker.host).allocated_capacity_gb == 1

    # The deadline passes with nobody finishing the create.
    monkeypatch.setattr(conf, "TASK_DEADLINE", 0)
    assert tasks.reconcile()["ended"] == 1
    shown = cloud.openstack("volume", "show", volume.id, "-f", "json")
    assert shown["status"] == "error"
    [message] = Message.objects.filter(resource_uuid=str(volume.id))
    assert "did not finish within 0 seconds" in message.user_message
    assert Backend.objects.get(host=worker.host).allocated_capacity_gb == 0
    assert quotas.usage_of(conn.current_project_id)["gigabytes"] == sum(
        Volume.counted().filter(project_id=conn.current_project_id).values_list("size", flat=True))
    assert not Volume.counted().filter(pk=volume.id).exists()

    # The next start cleans up; the create it is handed again finds the
    # volume ended and makes nothing.
    worker.log_path = worker.log_path.with_suffix(".restarted.log")
    worker.start()
    wait_until(lambda: not left_of(worker, volume.id), timeout=60, message="the partial volume to go")
    assert Volume.objects.get(pk=volume.id).status == "error"
    cloud.openstack("volume", "delete", volume.id)
    wait_until(lambda: not Volume.objects.filter(pk=volume.id).exists(), timeout=30, message="the delete")
    assert not left_of(worker, volume.id)
    cloud.openstack("image", "delete", image["id"])
