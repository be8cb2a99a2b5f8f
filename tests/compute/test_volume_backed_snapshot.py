"""createImage of a server whose root disk is a volume, as Nova does it,
end to end: the real API, a control worker, a simulated node (libvirt's
test driver) and a real volume worker on a file back end, driven by the
`openstack` CLI as a tenant. Each attached volume gets a Cinder snapshot
(forced: it is in-use) made by the volume worker; the image holds no data
and names those snapshots in its block_device_mapping; `server create
--image` of it boots from new volumes made from them, with the same bytes.
A snapshot a killed node worker left half done, or whose volume worker
was killed, ends with a fault and leaves no image and no volume snapshot
behind (none left creating); so does one over the snapshot quota."""
import json
import uuid

import pytest

from compute.models import Instance, InstanceFault, TaskState, VmState
from images.models import Image
from tests.compute import pipeline
from tests.compute.pipeline import start_nodes, stop_nodes, upload_tiny_image
from tests.compute.test_volume_attachments import DEMO, new_volume, volume_status
from tests.volumes import conftest as volume_fixtures
from volumes.models import Snapshot, Volume

control, live_db, volume_worker = pipeline.control, pipeline.live_db, volume_fixtures.volume_worker

pytestmark = pytest.mark.live

MiB = 2**20
SNAPSHOT_WAIT = 15


@pytest.fixture(scope="module")
def node(cloud, control, tmp_path_factory):
    # A short wait for volumes, so a snapshot whose volume worker is gone fails soon.
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("vbsnap"), 1, "vbsnap",
                                STRATUS_BLOCK_DEVICE_TIMEOUT=str(SNAPSHOT_WAIT))
    yield worker, hosts[0]
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


def name():
    return f"vbs-{uuid.uuid4().hex[:6]}"


def boot_from_volume(cloud, image):
    server = cloud.openstack("server", "create", "--boot-from-volume", "1", "--image", image, "--flavor", "m1.nano",
                             "--nic", "none", "--wait", name(), "-f", "json", cloud=DEMO)
    assert server["status"] == "ACTIVE", server.get("fault")
    return server["id"]


def volumes_of(cloud, server_id):
    """{device: volume id} of the server, as `openstack server volume list` shows them."""
    return {row["Device"]: row["Volume ID"] for row in cloud.openstack(
        "server", "volume", "list", server_id, "-f", "json", cloud=DEMO)}


def write_mark(worker, volume_id, offset, mark):
    """What a guest's write leaves in the volume (the file back end's raw file)."""
    with open(worker.directory / f"volume-{volume_id}", "r+b") as file:
        file.seek(offset)
        file.write(mark)


def read(worker, volume_id, offset, length):
    with open(worker.directory / f"volume-{volume_id}", "rb") as file:
        file.seek(offset)
        return file.read(length)


def idle(server_id):
    instance = Instance.objects.get(pk=server_id)
    return instance.task_state is None and instance


def test_server_image_create_of_a_volume_backed_server_snapshots_its_volumes_and_boots_again(
        cloud, node, image, volume_worker):
    server_id = boot_from_volume(cloud, image)
    data = new_volume(cloud)
    cloud.openstack("server", "add", "volume", server_id, data["id"], cloud=DEMO, parse=False)
    pipeline.wait_until(lambda: volume_status(cloud, data["id"]) == "in-use", timeout=60, message="in-use")
    devices = volumes_of(cloud, server_id)
    root, attached = devices["/dev/vda"], devices["/dev/vdb"]
    root_mark, data_mark = uuid.uuid4().bytes * 64, uuid.uuid4().bytes * 64
    write_mark(volume_worker, root, 3 * MiB, root_mark)
    write_mark(volume_worker, attached, 5 * MiB, data_mark)

    made = cloud.openstack("server", "image", "create", "--name", name(), "--wait", server_id, "-f", "json",
                           cloud=DEMO)
    assert made["status"] == "active"
    shown = cloud.openstack("image", "show", made["id"], "-f", "json", cloud=DEMO)
    assert shown["size"] in (0, None) and shown["visibility"] == "private"
    properties = shown["properties"]
    assert properties["image_type"] == "snapshot" and properties["instance_uuid"] == server_id
    assert str(properties["bdm_v2"]).lower() == "true" and properties["root_device_name"] == "/dev/vda"
    mappings = properties["block_device_mapping"]
    mappings = json.loads(mappings) if isinstance(mappings, str) else mappings
    assert [(entry["boot_index"], entry["device_name"], entry["source_type"], entry["destination_type"],
             entry["volume_size"]) for entry in mappings] == [
        (0, "/dev/vda", "snapshot", "volume", 1), (None, "/dev/vdb", "snapshot", "volume", 1)]

    # Each mapping names an available snapshot of the server's volume, forced while it was in-use.
    for entry, volume_id in zip(mappings, (root, attached)):
        snapshot = cloud.openstack("volume", "snapshot", "show", entry["snapshot_id"], "-f", "json", cloud=DEMO)
        assert snapshot["status"] == "available" and snapshot["volume_id"] == volume_id
        assert snapshot["name"] == f"snapshot for {made['name']}"
    assert volume_status(cloud, root) == "in-use" and volume_status(cloud, attached) == "in-use"

    # The server is as it was; the action and its event as for an image-backed snapshot.
    instance = idle(server_id)
    assert instance and instance.vm_state == VmState.ACTIVE
    actions = cloud.openstack("server", "event", "list", server_id, "-f", "json", cloud=DEMO)
    assert [action["Action"] for action in actions][:1] == ["createImage"]
    events = cloud.openstack("server", "event", "show", server_id, actions[0]["Request ID"], "-f", "json",
                             cloud=DEMO)["events"]
    assert [(event["event"], event["result"]) for event in events] == [("compute_snapshot_instance", "Success")]

    # The guest wrote on after the snapshot: the new server must not see it.
    write_mark(volume_worker, root, 3 * MiB, b"\0" * len(root_mark))
    booted = cloud.openstack("server", "create", "--image", made["id"], "--flavor", "m1.nano", "--nic", "none",
                             "--wait", name(), "-f", "json", cloud=DEMO)
    assert booted["status"] == "ACTIVE", booted.get("fault")
    new_devices = volumes_of(cloud, booted["id"])
    assert set(new_devices) == {"/dev/vda", "/dev/vdb"}
    new_root, new_data = new_devices["/dev/vda"], new_devices["/dev/vdb"]
    assert {new_root, new_data}.isdisjoint({root, attached})
    assert str(Volume.objects.get(pk=new_root).snapshot_id) == mappings[0]["snapshot_id"]
    assert read(volume_worker, new_root, 3 * MiB, len(root_mark)) == root_mark
    assert read(volume_worker, new_data, 5 * MiB, len(data_mark)) == data_mark
    assert read(volume_worker, root, 3 * MiB, len(root_mark)) != root_mark

    cloud.openstack("server", "delete", "--wait", booted["id"], server_id, cloud=DEMO)
    storage = cloud.connect(DEMO).block_storage
    cloud.openstack("image", "delete", made["id"], cloud=DEMO)
    for entry in mappings:
        storage.delete_snapshot(entry["snapshot_id"])
    pipeline.wait_until(lambda: not Snapshot.objects.filter(volume_id__in=(root, attached)).exists(), timeout=60,
                        message="the snapshots deleted")
    for volume_id in (root, attached, new_root, new_data):
        pipeline.wait_until(lambda: volume_status(cloud, volume_id) == "available", timeout=60,
                            message="volumes detached")
        storage.delete_volume(volume_id)


def test_a_backup_of_a_volume_backed_server_is_refused_and_changes_nothing(cloud, api, node, image,
                                                                            volume_worker):
    server_id = boot_from_volume(cloud, image)
    answer = api.post(f"/compute/v2.1/servers/{server_id}/action", token=cloud.token(DEMO), json={
        "createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}})
    assert answer.status_code == 400 and "volume-backed" in answer.json()["badRequest"]["message"]
    assert idle(server_id)
    assert not Image.objects.filter(properties__instance_uuid=server_id).exists()
    (root,) = volumes_of(cloud, server_id).values()
    assert not Snapshot.objects.filter(volume_id=root).exists()
    cloud.openstack("server", "delete", "--wait", server_id, cloud=DEMO)
    cloud.connect(DEMO).block_storage.delete_volume(root)


def test_a_snapshot_a_killed_node_worker_left_is_given_up_and_leaves_no_volume_snapshot(
        cloud, api, node, image, volume_worker):
    """The volume worker is down, so the snapshots stay creating while the
    node waits; the node worker is killed there. Its next start gives the
    snapshot up: a fault, no image; the volume worker, back, makes and
    then deletes the snapshots, so none is left creating or at all."""
    worker, _host = node
    server_id = boot_from_volume(cloud, image)
    (root,) = volumes_of(cloud, server_id).values()
    volume_worker.kill()
    try:
        made = api.post(f"/compute/v2.1/servers/{server_id}/action", token=cloud.token(DEMO),
                        json={"createImage": {"name": "interrupted"}},
                        headers={"OpenStack-API-Version": "compute 2.45"})
        assert made.status_code == 202, made.text
        image_id = made.json()["image_id"]
        pipeline.wait_until(lambda: Instance.objects.get(pk=server_id).task_state == TaskState.IMAGE_SNAPSHOT
                            and Snapshot.objects.filter(volume_id=root, status="creating").exists(),
                            timeout=60, message="the node waiting on the volume snapshot")
        worker.kill()
        worker.start()
        instance = pipeline.wait_until(lambda: idle(server_id), timeout=60,
                                       message="the interrupted snapshot given up")
    finally:
        volume_worker.start()
    assert instance.vm_state == VmState.ACTIVE
    fault = InstanceFault.objects.filter(instance_id=server_id).order_by("-created_at").first()
    assert fault is not None and "interrupted" in fault.message
    assert not Image.objects.filter(pk=image_id).exists()
    pipeline.wait_until(lambda: not Snapshot.objects.filter(volume_id=root).exists(), timeout=60,
                        message="the volume snapshot deleted")
    assert not any(path.name.startswith("snapshot-") for path in volume_worker.directory.iterdir())
    assert volume_status(cloud, root) == "in-use"
    cloud.openstack("server", "delete", "--wait", server_id, cloud=DEMO)
    cloud.connect(DEMO).block_storage.delete_volume(root)


def test_a_snapshot_over_the_projects_snapshot_quota_fails_with_a_fault_and_leaves_nothing(
        cloud, api, node, image, volume_worker):
    server_id = boot_from_volume(cloud, image)
    (root,) = volumes_of(cloud, server_id).values()
    project = cloud.connect(DEMO).current_project_id
    cloud.openstack("quota", "set", "--snapshots", "0", project, parse=False)
    try:
        made = api.post(f"/compute/v2.1/servers/{server_id}/action", token=cloud.token(DEMO),
                        json={"createImage": {"name": "over-quota"}},
                        headers={"OpenStack-API-Version": "compute 2.45"})
        assert made.status_code == 202, made.text
        instance = pipeline.wait_until(lambda: idle(server_id), timeout=60, message="the snapshot to end")
    finally:
        cloud.openstack("quota", "set", "--snapshots", "1000", project, parse=False)
    assert instance.vm_state == VmState.ACTIVE
    fault = InstanceFault.objects.filter(instance_id=server_id).order_by("-created_at").first()
    assert fault is not None and "snapshots" in fault.message, fault and fault.message
    assert not Image.objects.filter(pk=made.json()["image_id"]).exists()
    assert not Snapshot.objects.filter(volume_id=root).exists()
    actions = cloud.openstack("server", "event", "list", server_id, "-f", "json", cloud=DEMO)
    events = cloud.openstack("server", "event", "show", server_id, actions[0]["Request ID"], "-f", "json",
                             cloud=DEMO)["events"]
    assert [(event["event"], event["result"]) for event in events] == [("compute_snapshot_instance", "Error")]
    cloud.openstack("server", "delete", "--wait", server_id, cloud=DEMO)
    cloud.connect(DEMO).block_storage.delete_volume(root)


def test_a_snapshot_whose_volume_worker_was_killed_fails_after_the_wait_and_leaves_none_creating(
        cloud, api, node, image, volume_worker):
    """The volume worker is SIGKILLed, so the snapshot is never made: past
    the node's wait the createImage ends with a fault and no image, its
    volume snapshot is not left creating, and once a volume worker is
    back, nothing of it is left."""
    server_id = boot_from_volume(cloud, image)
    (root,) = volumes_of(cloud, server_id).values()
    volume_worker.kill()
    try:
        made = api.post(f"/compute/v2.1/servers/{server_id}/action", token=cloud.token(DEMO),
                        json={"createImage": {"name": "no-worker"}},
                        headers={"OpenStack-API-Version": "compute 2.45"})
        assert made.status_code == 202, made.text
        instance = pipeline.wait_until(lambda: idle(server_id), timeout=SNAPSHOT_WAIT + 45,
                                       message="the snapshot to fail")
        assert instance.vm_state == VmState.ACTIVE
        fault = InstanceFault.objects.filter(instance_id=server_id).order_by("-created_at").first()
        assert fault is not None and "waited" in fault.message, fault and fault.message
        assert not Image.objects.filter(pk=made.json()["image_id"]).exists()
        assert not Snapshot.objects.filter(volume_id=root, status="creating").exists()
    finally:
        volume_worker.start()
    pipeline.wait_until(lambda: not Snapshot.objects.filter(volume_id=root).exists(), timeout=60,
                        message="the volume snapshot deleted")
    assert not any(path.name.startswith("snapshot-") for path in volume_worker.directory.iterdir())
    assert cloud.connect(DEMO).compute.get_server(server_id).status == "ACTIVE"
    cloud.openstack("server", "delete", "--wait", server_id, cloud=DEMO)
    cloud.connect(DEMO).block_storage.delete_volume(root)
