"""The Block Storage API through the real `openstack` CLI, against the live
server, a control worker and a file back end's worker: volumes are made,
grown, snapshotted, copied and deleted as files, with the bytes they should
have."""
import json
import os
import subprocess
import uuid

import pytest

from tests.compute.nodes import wait_until
from tests.volumes.conftest import wait_status

pytestmark = pytest.mark.django_db


def read_volume(path, offset, length):
    """Bytes of a volume file of the file back end (raw, as the test's worker makes them)."""
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(path)], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["format"] == "raw", info
    with open(path, "rb") as disk:
        disk.seek(offset)
        return disk.read(length)


def same_contents(first, second):
    """Whether two volume files hold the same bytes (the shorter read as zeros past its end)."""
    return subprocess.run(["qemu-img", "compare", "-q", str(first), str(second)]).returncode == 0


def test_create_show_list_extend_delete(cloud, volume_worker):
    volume = cloud.openstack("volume", "create", "--size", "1", "--property", "team=a", "v-basic", "-f", "json")
    assert volume["status"] == "creating" and volume["size"] == 1
    shown = wait_status(cloud, volume["id"], "available")
    assert shown["properties"] == {"team": "a"} and shown["type"] == "__DEFAULT__"
    path = volume_worker.directory / f"volume-{volume['id']}"
    assert path.exists()
    names = [row["Name"] for row in cloud.openstack("volume", "list", "-f", "json")]
    assert "v-basic" in names

    cloud.openstack("volume", "set", "--size", "2", volume["id"])
    shown = wait_status(cloud, volume["id"], "available")
    assert shown["size"] == 2
    info = subprocess.run(["qemu-img", "info", "--output=json", str(path)], capture_output=True, text=True,
                          check=True).stdout
    assert '"virtual-size": 2147483648' in info

    cloud.openstack("volume", "delete", volume["id"])
    wait_until(lambda: not path.exists(), timeout=60, message="the volume's file to go")
    failed = cloud.openstack("volume", "show", volume["id"], expect_fail=True)
    assert "No Volume found" in failed.stderr


def upload_raw_image(cloud, tmp_path, size_bytes):
    data = os.urandom(size_bytes)
    path = tmp_path / "image.raw"
    path.write_bytes(data)
    image = cloud.openstack("image", "create", f"vol-src-{uuid.uuid4().hex[:6]}", "--file", str(path),
                            "--disk-format", "raw", "--container-format", "bare", "-f", "json")
    return image["id"], data


def test_volume_from_image_has_the_image_bytes(cloud, volume_worker, tmp_path):
    image_id, data = upload_raw_image(cloud, tmp_path, 3 * 2**20 + 512)
    volume = cloud.openstack("volume", "create", "--image", image_id, "--size", "1", "from-image", "-f", "json")
    shown = wait_status(cloud, volume["id"], ("available", "error"))
    assert shown["status"] == "available", shown
    assert shown["bootable"] is True and shown["volume_image_metadata"]["image_id"] == image_id
    path = volume_worker.directory / f"volume-{volume['id']}"
    assert path.stat().st_size == 2**30
    assert read_volume(path, 0, len(data)) == data
    assert read_volume(path, len(data), 2**20) == bytes(2**20)
    cloud.openstack("volume", "delete", volume["id"])


def test_snapshot_then_volume_from_snapshot_and_from_volume_have_the_same_bytes(cloud, volume_worker, tmp_path):
    volume = cloud.openstack("volume", "create", "--size", "1", "snap-src", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    # What a guest would have written.
    written = os.urandom(2**20)
    with open(volume_worker.directory / f"volume-{volume['id']}", "r+b") as disk:
        disk.seek(5 * 2**20)
        disk.write(written)
    source = volume_worker.directory / f"volume-{volume['id']}"

    snapshot = cloud.openstack("volume", "snapshot", "create", "--volume", volume["id"], "--property", "k=v",
                               "snap-1", "-f", "json")
    shown = wait_status(cloud, snapshot["id"], "available", kind="volume snapshot")
    assert shown["properties"] == {"k": "v"} and shown["size"] == 1
    listed = cloud.openstack("volume", "snapshot", "list", "--volume", volume["id"], "-f", "json")
    assert [row["ID"] for row in listed] == [snapshot["id"]]

    copy = cloud.openstack("volume", "create", "--snapshot", snapshot["id"], "--size", "2", "from-snap", "-f", "json")
    clone = cloud.openstack("volume", "create", "--source", volume["id"], "from-volume", "-f", "json")
    for made, size in ((copy, 2), (clone, 1)):
        shown = wait_status(cloud, made["id"], ("available", "error"))
        assert shown["status"] == "available" and shown["size"] == size, shown
        copied = volume_worker.directory / f"volume-{made['id']}"
        assert read_volume(copied, 5 * 2**20, len(written)) == written
        assert same_contents(source, copied)

    # A volume with snapshots is not deleted (400) unless cascade takes them too.
    failed = cloud.openstack("volume", "delete", volume["id"], expect_fail=True)
    assert "have snapshots" in failed.stderr
    cloud.openstack("volume", "delete", copy["id"], clone["id"])
    cloud.openstack("volume", "delete", "--purge", volume["id"])
    made = {f"volume-{row['id']}" for row in (volume, copy, clone)} | {f"snapshot-{snapshot['id']}"}
    wait_until(lambda: not made & set(volume_worker.files()), timeout=60,
               message="the files of the volumes and the snapshot to go")
