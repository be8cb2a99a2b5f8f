"""A volume worker SIGKILLed in the middle of a create leaves nothing stuck:
the reconciler ends the volume in error with a message once the deadline
passed, its space and quota are given back, and the worker's next start
removes the partial file it left."""
import os
import uuid

import pytest

from tests.compute.nodes import wait_until
from tests.volumes.conftest import VolumeWorker, forget_backends
from volumes import conf, quotas, tasks
from volumes.models import Backend, Message, Volume

IMAGE_BYTES = 192 * 2**20


# No `db` mark: the reconciler's writes here commit, as a control worker's would.
@pytest.fixture(scope="module")
def worker(live_db, cloud, control, tmp_path_factory):
    forget_backends(*Backend.objects.values_list("host", flat=True))
    base = tmp_path_factory.mktemp("killed")
    made = VolumeWorker(base / "data", base / "worker.log", STRATUS_PUBLIC_URL=cloud.url,
                        STRATUS_IMAGE_CACHE_DIR=str(base / "cache"))
    made.cache = base / "cache"
    yield made.start()
    if made.process.poll() is None:
        made.stop()
    forget_backends(made.host)


def partial_files(worker, volume_id):
    """What a create in progress is writing: the image download, or the volume file."""
    found = list(worker.cache.glob(".*.part")) if worker.cache.exists() else []
    found += list(worker.directory.glob(f".volume-{volume_id}.part"))
    return found


def test_a_worker_killed_mid_create_leaves_nothing_in_creating(cloud, worker, tmp_path, monkeypatch):
    source = tmp_path / "big.raw"
    source.write_bytes(os.urandom(IMAGE_BYTES))
    image = cloud.openstack("image", "create", f"big-{uuid.uuid4().hex[:6]}", "--file", str(source),
                            "--disk-format", "raw", "--container-format", "bare", "-f", "json")
    conn = cloud.connect()
    volume = conn.block_storage.create_volume(size=1, image_id=image["id"], name="killed-mid-create")
    wait_until(lambda: partial_files(worker, volume.id), timeout=60, interval=0.01,
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

    # The next start cleans the directory; the create it is handed again
    # finds the volume ended and makes nothing.
    worker.log_path = worker.log_path.with_suffix(".restarted.log")
    worker.start()
    wait_until(lambda: not list(worker.directory.glob(f"*{volume.id}*")), timeout=30,
               message="the partial file to go")
    assert Volume.objects.get(pk=volume.id).status == "error"
    cloud.openstack("volume", "delete", volume.id)
    wait_until(lambda: not Volume.objects.filter(pk=volume.id).exists(), timeout=30, message="the delete")
    assert worker.files() == []
