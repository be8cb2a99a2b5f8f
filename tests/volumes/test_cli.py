"""The Block Storage API through the real `openstack` CLI, against the live
server, a control worker and a file back end's worker: volumes are made,
grown, snapshotted, copied and deleted as files, with the bytes they should
have."""
import subprocess

import pytest

from tests.volumes.conftest import wait_status

pytestmark = pytest.mark.django_db


def raw_bytes(path, tmp_path, length=None):
    """The guest-visible bytes of a volume file (raw or qcow2)."""
    out = tmp_path / f"{path.name}.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(path), str(out)], check=True)
    data = out.read_bytes()
    return data if length is None else data[:length]


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
    from tests.compute.nodes import wait_until

    wait_until(lambda: not path.exists(), timeout=60, message="the volume's file to go")
    failed = cloud.openstack("volume", "show", volume["id"], expect_fail=True)
    assert "No Volume found" in failed.stderr
