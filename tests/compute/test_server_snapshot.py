"""createImage (server snapshots) through the real CLI and openstacksdk, a
real control worker and a simulated node (libvirt's test driver, real
qcow2 disks): the node flattens the server's disk into a private image of
the project with Nova's snapshot properties, the image goes queued ->
saving -> active, the server is back to idle, and a server boots from the
snapshot (from the node's image cache, without a download). Refusals
change nothing; a snapshot a killed worker left half done is given up
with a fault and its image deleted."""
import json
import subprocess
import uuid

import pytest

from compute.models import Instance, InstanceFault, TaskState, VmState
from images.models import Image
from tests.compute import pipeline
from tests.compute.nodes import wait_until
from tests.compute.pipeline import (
    boot_at_once, start_nodes, stop_nodes, unlimited_quota, upload_tiny_image, wait_settled,
)

live_db, control = pipeline.live_db, pipeline.control

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def node(cloud, control, tmp_path_factory):
    """(host, its node worker, the image cache directory it uses)."""
    directory = tmp_path_factory.mktemp("snapshot")
    cache = directory / "cache"
    worker, hosts = start_nodes(cloud, directory, 1, "snap", STRATUS_IMAGE_CACHE_DIR=str(cache))
    yield hosts[0], worker, cache
    stop_nodes(worker, hosts)


def boot(cloud, image_id, count=1):
    unlimited_quota(cloud)
    ids = boot_at_once(cloud, [f"snap-{uuid.uuid4().hex[:6]}" for _ in range(count)], image_id, "m1.nano")
    servers = wait_settled(cloud, ids)
    assert {server.status for server in servers.values()} == {"ACTIVE"}
    return ids


def idle(server_id):
    instance = Instance.objects.get(pk=server_id)
    return instance.task_state is None and instance


def create_image(api, server_id, body, token, version="2.1"):
    return api.post(f"/compute/v2.1/servers/{server_id}/action", json={"createImage": body}, token=token,
                    headers={"OpenStack-API-Version": f"compute {version}"})


def snapshots_of(server_id):
    return Image.objects.filter(properties__instance_uuid=str(server_id))


def test_server_image_create_through_the_cli_makes_a_bootable_private_snapshot(cloud, node, image, tmp_path):
    host, _worker, cache = node
    server_id, = boot(cloud, image)
    name = f"snap-{uuid.uuid4().hex[:6]}"
    made = cloud.openstack("server", "image", "create", "--name", name, "--property", "purpose=test", "--wait",
                           server_id, "-f", "json")
    assert made["status"] == "active" and made["name"] == name
    shown = cloud.openstack("image", "show", made["id"], "-f", "json")
    admin_project = cloud.openstack("project", "show", "admin", "-f", "json")["id"]
    properties = shown["properties"]
    assert shown["visibility"] == "private" and shown["owner"] == admin_project
    assert (shown["disk_format"], shown["container_format"]) == ("qcow2", "bare")
    assert properties["image_type"] == "snapshot" and properties["instance_uuid"] == server_id
    assert properties["base_image_ref"] == image
    # (openstacksdk reads owner_id as an alias of owner: the row shows it.)
    assert Image.objects.get(pk=made["id"]).properties["owner_id"] == admin_project
    assert properties["purpose"] == "test"
    instance = idle(server_id)
    assert instance and instance.vm_state == VmState.ACTIVE
    assert shown["min_disk"] == instance.root_gb
    # The stored data stands alone: the backing image was folded in.
    data = tmp_path / "snap.qcow2"
    cloud.openstack("image", "save", "--file", str(data), made["id"], parse=False)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(data)], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert info["virtual-size"] == instance.root_gb * 2**30
    actions = cloud.openstack("server", "event", "list", server_id, "-f", "json")
    assert [action["Action"] for action in actions] == ["createImage", "create"]
    events = cloud.openstack("server", "event", "show", server_id, actions[0]["Request ID"], "-f", "json")["events"]
    assert [(event["event"], event["result"]) for event in events] == [("compute_snapshot_instance", "Success")]
    # The node kept the upload as its cached copy: a boot from it there
    # downloads nothing and backs the new disk on it.
    assert (cache / made["id"]).exists()
    booted, = boot(cloud, made["id"])
    assert Instance.objects.get(pk=booted).host == host
    disk = next(cache.parent.glob(f"nodes/*/instances/{booted}/disk"))
    backing = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(disk)], capture_output=True,
                                        text=True, check=True).stdout)["backing-filename"]
    assert backing == str(cache / made["id"])


def test_openstacksdk_snapshots_a_stopped_server_and_the_microversions_answer_as_nova(cloud, api, node, image):
    server_id, = boot(cloud, image)
    conn = cloud.connect()
    conn.compute.stop_server(server_id)
    wait_until(lambda: conn.compute.get_server(server_id).status == "SHUTOFF", timeout=60, message="SHUTOFF")
    made = conn.compute.create_server_image(server_id, f"sdk-{uuid.uuid4().hex[:6]}", metadata={"k": "v"},
                                            wait=True, timeout=120)
    assert made.status == "active" and made.properties["k"] == "v"
    assert idle(server_id).vm_state == VmState.STOPPED

    old = create_image(api, server_id, {"name": "old-style"}, cloud.token())
    assert old.status_code == 202 and not old.content, old.content
    old_id = old.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert old.headers["Location"].endswith(f"/image/v2/images/{old_id}")
    wait_until(lambda: idle(server_id), timeout=60, message="the first snapshot to finish")
    new = create_image(api, server_id, {"name": "new-style"}, cloud.token(), version="2.45")
    assert new.status_code == 202 and new.json() == {"image_id": new.headers["Location"].rsplit("/", 1)[-1]}
    for image_id in (old_id, new.json()["image_id"]):
        wait_until(lambda: Image.objects.filter(pk=image_id, status="active").exists(), timeout=60,
                   message=f"image {image_id} active")


def test_refusals_name_the_field_and_change_nothing(cloud, api, node, image):
    server_id, = boot(cloud, image)
    token = cloud.token()
    for body, field in (({}, "createImage.name"), ({"name": ""}, "createImage.name"),
                        ({"name": "a" * 256}, "createImage.name"), ({"name": 5}, "createImage.name"),
                        ({"name": " padded "}, "createImage.name"),
                        ({"name": "x", "metadata": {"": ""}}, "createImage.metadata"),
                        ({"name": "x", "metadata": {"a" * 256: "b"}}, "createImage.metadata"),
                        ({"name": "x", "metadata": {"k": 1}}, "createImage.metadata"),
                        ({"name": "x", "colour": "red"}, "createImage")):
        response = create_image(api, server_id, body, token)
        assert response.status_code == 400, (body, response.content)
        assert field in response.json()["badRequest"]["message"], (body, response.content)
    reserved = create_image(api, server_id, {"name": "x", "metadata": {"os_glance_x": "y"}}, token)
    assert reserved.status_code == 403 and "reserved" in reserved.text
    too_many = create_image(api, server_id, {"name": "x", "metadata": {f"k{i}": "v" for i in range(200)}}, token)
    assert too_many.status_code == 403 and "metadata_items" in too_many.text

    other_project = create_image(api, server_id, {"name": "x"}, cloud.token("stratus-demo"))
    assert other_project.status_code == 404
    missing = create_image(api, str(uuid.uuid4()), {"name": "x"}, token)
    assert missing.status_code == 404

    assert api.post(f"/compute/v2.1/servers/{server_id}/action", json={"os-resetState": {"state": "error"}},
                    token=token).status_code == 202
    in_error = create_image(api, server_id, {"name": "x"}, token)
    assert in_error.status_code == 409 and "createImage" in in_error.json()["conflictingRequest"]["message"]
    assert not snapshots_of(server_id).exists()
    assert [action["Action"] for action in cloud.openstack("server", "event", "list", server_id, "-f", "json")
            ] == ["reset_state", "create"]


def test_a_second_snapshot_while_one_runs_is_a_conflict_and_deleting_the_queued_image_ends_it(
        cloud, api, node, image):
    server_id, = boot(cloud, image)
    token = cloud.token()
    # Held in image_snapshot_pending (as while the node has not begun).
    Instance.objects.filter(pk=server_id).update(task_state=TaskState.IMAGE_SNAPSHOT_PENDING)
    second = create_image(api, server_id, {"name": "second"}, token)
    assert second.status_code == 409, second.content
    Instance.objects.filter(pk=server_id).update(task_state=None)

    first = create_image(api, server_id, {"name": "first"}, token, version="2.45")
    assert first.status_code == 202
    image_id = first.json()["image_id"]
    deleted = api.delete(f"/image/v2/images/{image_id}", token=token)
    assert deleted.status_code in (204, 404)
    instance = wait_until(lambda: idle(server_id), timeout=60, message="the server idle again")
    assert instance.vm_state == VmState.ACTIVE
    assert not Image.objects.filter(pk=image_id).exists()
    assert api.get(f"/image/v2/images/{image_id}", token=token).status_code == 404


def test_a_snapshot_a_killed_worker_left_uploading_is_given_up_with_a_fault(cloud, api, node, image):
    """The node worker dies mid-upload: on its start the image is deleted
    and the server idle again (not stuck in image_uploading), with a fault."""
    host, worker, _cache = node
    server_id, = boot(cloud, image)
    made = create_image(api, server_id, {"name": "interrupted"}, cloud.token(), version="2.45")
    image_id = made.json()["image_id"]
    wait_until(lambda: idle(server_id), timeout=60, message="the snapshot to finish")
    worker.kill()
    try:
        # What a worker killed mid-upload leaves: the image saving, the server uploading.
        Image.objects.filter(pk=image_id).update(status="saving")
        Instance.objects.filter(pk=server_id).update(task_state=TaskState.IMAGE_UPLOADING)
    finally:
        worker.start()
    instance = wait_until(lambda: idle(server_id), timeout=60, message="the interrupted snapshot given up")
    assert instance.vm_state == VmState.ACTIVE
    assert not Image.objects.filter(pk=image_id).exists()
    fault = InstanceFault.objects.filter(instance_id=server_id).order_by("-created_at").first()
    assert fault is not None and "interrupted" in fault.message
    assert cloud.connect().compute.get_server(server_id).status == "ACTIVE"
