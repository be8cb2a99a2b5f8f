"""Retype (`openstack volume set --type`, Cinder's os-retype) against the
live server with a file back end and an RBD one (the Ceph cluster the tests
start) both live: a type its back end also serves changes at once; a type
of the other back end moves an available volume's bytes there with the
on-demand policy (the file goes, the RBD image has them, the space moves),
and is refused with the never policy, while attached, or to an unknown
type, with nothing changed."""
import os
import uuid

import pytest
import requests

from tests.compute.nodes import wait_until
from tests.volumes.conftest import VolumeWorker, forget_backends, wait_status
from volumes.models import Backend, Message, Volume

POOL = "volumes"
MiB = 2**20


@pytest.fixture(scope="module")
def backends(live_db, cloud, control, ceph_conf, tmp_path_factory):
    """(file worker, rbd worker), the module's only live back ends, and a librbd I/O context on the pool."""
    import rados

    forget_backends(*Backend.objects.values_list("host", flat=True))
    base = tmp_path_factory.mktemp("retype")
    file_worker = VolumeWorker(base / "data", base / "file.log", STRATUS_PUBLIC_URL=cloud.url).start()
    rbd_worker = VolumeWorker(base, base / "rbd.log", name=f"rbd-{uuid.uuid4().hex[:6]}", capacity_gb=5,
                              backend_args=["--driver", "rbd", "--ceph-conf", ceph_conf, "--pool", POOL],
                              STRATUS_PUBLIC_URL=cloud.url).start()
    cluster = rados.Rados(conffile=ceph_conf)
    cluster.connect(timeout=10)
    ioctx = cluster.open_ioctx(POOL)
    yield file_worker, rbd_worker, ioctx
    ioctx.close()
    cluster.shutdown()
    for worker in (file_worker, rbd_worker):
        worker.stop()
        forget_backends(worker.host)


def volume_type(cloud, backend_name):
    name = f"retype-{uuid.uuid4().hex[:6]}"
    cloud.openstack("volume", "type", "create", "--property", f"volume_backend_name={backend_name}", name)
    return name


def action(cloud, volume_id, body):
    conn = cloud.connect()
    return requests.post(f"{cloud.url}/volume/v3/{conn.current_project_id}/volumes/{volume_id}/action",
                         json=body, headers={"X-Auth-Token": conn.auth_token}, timeout=60)


def test_retype_in_place_then_to_the_other_back_end_moves_the_bytes(cloud, backends):
    import rbd

    file_worker, rbd_worker, ioctx = backends
    on_file, also_file, on_rbd = (volume_type(cloud, name) for name in (
        file_worker.name, file_worker.name, rbd_worker.name))
    volume = cloud.openstack("volume", "create", "--size", "1", "--type", on_file, "retyped", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    path = file_worker.directory / f"volume-{volume['id']}"
    head, far = os.urandom(MiB), os.urandom(4096)
    with open(path, "r+b") as file:  # what a guest would have written
        file.write(head)
        file.seek(700 * MiB)
        file.write(far)
    file_host, rbd_host = Backend.objects.get(host=file_worker.host), Backend.objects.get(host=rbd_worker.host)

    # Never is the default policy: a move is refused, nothing changes.
    refused = cloud.openstack("volume", "set", "--type", on_rbd, volume["id"], expect_fail=True)
    assert "migration policy is never" in refused.stderr
    shown = cloud.openstack("volume", "show", volume["id"], "-f", "json")
    assert shown["type"] == on_file and shown["status"] == "available"

    # A type its back end serves too: only the type changes.
    cloud.openstack("volume", "set", "--type", also_file, volume["id"])
    shown = cloud.openstack("volume", "show", volume["id"], "-f", "json")
    assert shown["type"] == also_file and shown["os-vol-host-attr:host"].startswith(file_worker.host)

    cloud.openstack("volume", "set", "--type", on_rbd, "--retype-policy", "on-demand", volume["id"])
    wait_until(lambda: Volume.objects.get(pk=volume["id"]).status != "retyping", timeout=120, interval=0.2,
               message="the retype")
    shown = cloud.openstack("volume", "show", volume["id"], "-f", "json")
    assert shown["status"] == "available", list(Message.objects.filter(resource_uuid=volume["id"]).values_list(
        "user_message", flat=True))
    assert shown["type"] == on_rbd and shown["os-vol-host-attr:host"].startswith(rbd_worker.host)
    with rbd.Image(ioctx, f"volume-{volume['id']}", read_only=True) as image:
        assert image.size() == 2**30
        assert image.read(0, MiB) == head and image.read(700 * MiB, 4096) == far
    assert Volume.objects.get(pk=volume["id"]).connection_info["driver_volume_type"] == "rbd"
    wait_until(lambda: not path.exists(), timeout=30, message="the file copy to go")
    assert Backend.objects.get(host=file_worker.host).allocated_capacity_gb == file_host.allocated_capacity_gb - 1
    assert Backend.objects.get(host=rbd_worker.host).allocated_capacity_gb == rbd_host.allocated_capacity_gb + 1

    cloud.openstack("volume", "delete", volume["id"])
    wait_until(lambda: not Volume.objects.filter(pk=volume["id"]).exists(), timeout=60, message="the delete")
    assert f"volume-{volume['id']}" not in rbd.RBD().list(ioctx)


def test_retype_refused_while_attached_and_to_an_unknown_type(cloud, backends):
    file_worker, rbd_worker, _ioctx = backends
    on_file, on_rbd = volume_type(cloud, file_worker.name), volume_type(cloud, rbd_worker.name)
    volume = cloud.openstack("volume", "create", "--size", "1", "--type", on_file, "attached", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    attached = action(cloud, volume["id"], {"os-attach": {"instance_uuid": str(uuid.uuid4()),
                                                          "mountpoint": "/dev/vdb"}})
    assert attached.status_code == 202, attached.text
    answer = action(cloud, volume["id"], {"os-retype": {"new_type": on_rbd, "migration_policy": "on-demand"}})
    assert answer.status_code == 400 and "in-use" in answer.json()["badRequest"]["message"], answer.text
    answer = action(cloud, volume["id"], {"os-retype": {"new_type": "no-such-type"}})
    assert answer.status_code == 404 and "no-such-type" in answer.json()["itemNotFound"]["message"], answer.text
    answer = action(cloud, volume["id"], {"os-retype": {"new_type": on_rbd, "migration_policy": "sometimes"}})
    assert answer.status_code == 400 and "migration_policy" in answer.json()["badRequest"]["message"]
    shown = cloud.openstack("volume", "show", volume["id"], "-f", "json")
    assert shown["status"] == "in-use" and shown["type"] == on_file
    assert (file_worker.directory / f"volume-{volume['id']}").exists()
    assert action(cloud, volume["id"], {"os-detach": {}}).status_code == 202
    cloud.openstack("volume", "delete", volume["id"])
    wait_until(lambda: not Volume.objects.filter(pk=volume["id"]).exists(), timeout=60, message="the delete")
