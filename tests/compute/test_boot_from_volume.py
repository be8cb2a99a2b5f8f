"""Boot from volume, end to end: the real API, a control worker, a
simulated node (libvirt's test driver: its definition of the domain shows
the root disk) and a real volume worker on a file back end, driven by the
stock `openstack` CLI as a tenant (`--boot-from-volume N --image`,
`--volume`) and by Nova's block_device_mapping_v2 bodies."""
import subprocess
import uuid

import pytest
from django.utils import timezone

from compute.models import Instance, InstanceFault
from tests.compute import pipeline
from tests.compute.pipeline import start_nodes, stop_nodes, upload_tiny_image
from tests.compute.test_volume_attachments import DEMO, new_volume, volume_status
from tests.volumes import conftest as volume_fixtures
from volumes.models import Volume

control, live_db, volume_worker = pipeline.control, pipeline.live_db, volume_fixtures.volume_worker

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def nodes(cloud, control, tmp_path_factory):
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("bfvnodes"), 1, "bfv")
    yield hosts
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


def name():
    return f"bfv-{uuid.uuid4().hex[:6]}"


def compute_api(cloud, cloud_name=DEMO, version="2.60"):
    return cloud.connect(cloud_name).compute, {"OpenStack-API-Version": f"compute {version}"}


def create(cloud, mappings, cloud_name=DEMO, image_ref=""):
    compute, headers = compute_api(cloud, cloud_name)
    flavor = compute.find_flavor("m1.nano", ignore_missing=False).id
    return compute.post("/servers", json={"server": {
        "name": name(), "imageRef": image_ref, "flavorRef": flavor, "networks": "none",
        "block_device_mapping_v2": mappings}}, headers=headers)


def wait_server(cloud, server_id, statuses=("ACTIVE", "ERROR"), cloud_name=DEMO):
    compute = cloud.connect(cloud_name).compute
    pipeline.wait_until(lambda: compute.get_server(server_id).status in statuses, timeout=180, interval=0.5,
                        message=f"server {server_id} to be {statuses}")
    return cloud.openstack("server", "show", server_id, "-f", "json", cloud=cloud_name)


def test_boot_from_a_new_volume_of_an_image_with_the_cli_then_delete(cloud, nodes, image, volume_worker):
    server = cloud.openstack("server", "create", "--boot-from-volume", "1", "--image", image, "--flavor",
                             "m1.nano", "--nic", "none", "--wait", name(), "-f", "json", cloud=DEMO)
    assert server["status"] == "ACTIVE"
    # No image: Nova's "" (the CLI says the server booted from a volume).
    compute, headers = compute_api(cloud)
    body = compute.get(f"/servers/{server['id']}", headers=headers).json()["server"]
    assert body["image"] == ""
    (attached,) = body["os-extended-volumes:volumes_attached"]
    volume_id = attached["id"]
    assert attached == {"id": volume_id, "delete_on_termination": False}
    assert volume_id in str(server["volumes_attached"])
    volume = cloud.openstack("volume", "show", volume_id, "-f", "json", cloud=DEMO)
    assert volume["status"] == "in-use" and volume["bootable"] in (True, "true") and volume["size"] == 1
    (attachment,) = volume["attachments"]
    assert attachment["server_id"] == server["id"] and attachment["device"] == "/dev/vda"
    assert volume["volume_image_metadata"]["image_id"] == image

    # The root volume cannot be detached; deleting the server leaves it available (not delete_on_termination).
    refused = compute.delete(f"/servers/{server['id']}/os-volume_attachments/{volume_id}", headers=headers)
    assert refused.status_code == 400 and "root" in refused.json()["badRequest"]["message"]
    cloud.openstack("server", "delete", "--wait", server["id"], cloud=DEMO)
    assert volume_status(cloud, volume_id) == "available"

    # That volume boots another server (--volume), which again leaves it available.
    again = cloud.openstack("server", "create", "--volume", volume_id, "--flavor", "m1.nano", "--nic", "none",
                            "--wait", name(), "-f", "json", cloud=DEMO)
    assert again["status"] == "ACTIVE"
    shown = cloud.openstack("volume", "show", volume_id, "-f", "json", cloud=DEMO)
    assert shown["status"] == "in-use" and shown["attachments"][0]["server_id"] == again["id"]
    # In use: another boot from it is refused, as Nova does (400 Invalid volume).
    busy = create(cloud, [{"boot_index": 0, "uuid": volume_id, "source_type": "volume",
                           "destination_type": "volume"}])
    assert busy.status_code == 400 and "Invalid volume" in busy.json()["badRequest"]["message"]
    cloud.openstack("server", "delete", "--wait", again["id"], cloud=DEMO)
    assert volume_status(cloud, volume_id) == "available"
    cloud.connect(DEMO).block_storage.delete_volume(volume_id)


def test_delete_on_termination_and_a_volume_from_a_snapshot(cloud, nodes, image, volume_worker):
    source = new_volume(cloud)
    storage = cloud.connect(DEMO).block_storage
    snapshot = storage.create_snapshot(volume_id=source["id"], name=name())
    pipeline.wait_until(lambda: storage.get_snapshot(snapshot.id).status == "available", timeout=60,
                        message="snapshot")
    answer = create(cloud, [{"boot_index": 0, "uuid": snapshot.id, "source_type": "snapshot",
                             "destination_type": "volume", "delete_on_termination": True},
                            {"boot_index": None, "source_type": "blank", "destination_type": "volume",
                             "volume_size": 1, "delete_on_termination": False}])
    assert answer.status_code == 202, answer.text
    server = wait_server(cloud, answer.json()["server"]["id"])
    assert server["status"] == "ACTIVE", server.get("fault")
    compute, headers = compute_api(cloud)
    body = compute.get(f"/servers/{server['id']}", headers=headers).json()["server"]
    listed = body["os-extended-volumes:volumes_attached"]
    assert [entry["delete_on_termination"] for entry in listed] == [True, False]
    root, data = listed[0]["id"], listed[1]["id"]
    devices = {row["Volume ID"]: row["Device"] for row in cloud.openstack(
        "server", "volume", "list", server["id"], "-f", "json", cloud=DEMO)}
    assert devices == {root: "/dev/vda", data: "/dev/vdb"}
    assert Volume.objects.get(pk=root).snapshot_id == uuid.UUID(snapshot.id)
    # No local disk to rebuild (400, Nova's words); resize is tests/compute/test_resize_volumes.py.
    action = f"/servers/{server['id']}/action"
    rebuilt = compute.post(action, json={"rebuild": {"imageRef": image}}, headers=headers)
    assert rebuilt.status_code == 400 and "volume-backed" in rebuilt.json()["badRequest"]["message"]

    cloud.openstack("server", "delete", "--wait", server["id"], cloud=DEMO)
    pipeline.wait_until(lambda: not Volume.objects.filter(pk=root).exists(), timeout=60,
                        message="the delete_on_termination volume to go")
    assert volume_status(cloud, data) == "available"
    storage.delete_volume(data)
    storage.delete_snapshot(snapshot.id)
    pipeline.wait_until(lambda: not Volume.objects.get(pk=source["id"]).snapshots.exists(),
                        timeout=60, message="snapshot deleted")
    storage.delete_volume(source["id"])


def test_an_admin_boots_from_a_volume_of_another_projects_private_image(cloud, nodes, volume_worker, tmp_path):
    """The admin may name the image; the server's project may not see it:
    the volume step makes the volume with the admin's rights, as Cinder
    does with the context Nova hands it."""
    path = tmp_path / "private.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    private = cloud.openstack("image", "create", name(), "--file", str(path), "--disk-format", "qcow2",
                              "--container-format", "bare", "--private", "-f", "json", cloud=DEMO)
    admin_project = cloud.connect("stratus").current_project_id
    assert private["owner"] != admin_project
    pipeline.unlimited_quota(cloud)
    server = cloud.openstack("server", "create", "--boot-from-volume", "1", "--image", private["id"], "--flavor",
                             "m1.nano", "--nic", "none", "--wait", name(), "-f", "json")
    assert server["status"] == "ACTIVE", server.get("fault")
    (row,) = cloud.openstack("server", "volume", "list", server["id"], "-f", "json")
    root = cloud.openstack("volume", "show", row["Volume ID"], "-f", "json")
    assert root["os-vol-tenant-attr:tenant_id"] == admin_project
    assert root["volume_image_metadata"]["image_id"] == private["id"] and root["bootable"] in (True, "true")
    cloud.openstack("server", "delete", "--wait", server["id"])
    assert volume_status(cloud, root["id"], cloud_name="stratus") == "available"
    cloud.connect("stratus").block_storage.delete_volume(root["id"])
    cloud.openstack("image", "delete", private["id"], cloud=DEMO)


def test_bad_mappings_answer_400_naming_the_field_and_make_nothing(cloud, nodes, image, volume_worker):
    before, started = Instance.objects.count(), timezone.now()
    admins = new_volume(cloud, cloud_name="stratus")
    blank = new_volume(cloud)  # made empty: not bootable
    cases = [
        ([{"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume"}],
         "volume_size"),
        ([{"boot_index": 0, "uuid": image, "source_type": "disk", "destination_type": "volume"}], "source_type"),
        ([{"boot_index": 0, "uuid": "nope", "source_type": "volume", "destination_type": "volume"}], "uuid"),
        ([{"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume",
           "volume_size": "x"}], "volume_size"),
        # Another project's volume is not found, as Nova answers (400).
        ([{"boot_index": 0, "uuid": admins["id"], "source_type": "volume", "destination_type": "volume"}],
         f"failed to get volume {admins['id']}"),
        ([{"boot_index": 0, "uuid": str(uuid.uuid4()), "source_type": "snapshot", "destination_type": "volume"}],
         "failed to get snapshot"),
        ([{"boot_index": 0, "uuid": blank["id"], "source_type": "volume", "destination_type": "volume"}],
         "is not bootable"),
    ]
    for mappings, words in cases:
        answer = create(cloud, mappings)
        assert answer.status_code == 400, (mappings, answer.text)
        assert words in answer.json()["badRequest"]["message"], answer.text
    # No image and no boot volume: imageRef is required.
    answer = create(cloud, [{"boot_index": 1, "source_type": "blank", "destination_type": "volume",
                             "volume_size": 1}])
    assert answer.status_code == 400 and "imageRef" in answer.json()["badRequest"]["message"]
    assert Instance.objects.count() == before
    assert set(Volume.objects.filter(created_at__gte=started).values_list("pk", flat=True)) == {
        uuid.UUID(admins["id"]), uuid.UUID(blank["id"])}
    cloud.connect("stratus").block_storage.delete_volume(admins["id"])
    cloud.connect(DEMO).block_storage.delete_volume(blank["id"])


def test_a_failed_volume_step_ends_in_error_with_its_cause_and_leaves_no_volume(cloud, nodes, image, volume_worker):
    project = cloud.connect(DEMO).current_project_id
    cloud.openstack("quota", "set", "--gigabytes", "2", project)
    try:
        answer = create(cloud, [{"boot_index": 0, "uuid": image, "source_type": "image",
                                 "destination_type": "volume", "volume_size": 5, "delete_on_termination": True}])
        assert answer.status_code == 202, answer.text
        server_id = answer.json()["server"]["id"]
        server = wait_server(cloud, server_id)
    finally:
        cloud.openstack("quota", "set", "--gigabytes", "1000", project)
    assert server["status"] == "ERROR"
    fault = InstanceFault.objects.filter(instance_id=server_id).latest("created_at")
    assert "gigabytes" in fault.message and "aborted" in fault.message
    assert Instance.objects.get(pk=server_id).task_state is None
    assert not Volume.objects.filter(name__startswith=server["name"]).exists()
    cloud.openstack("server", "delete", "--wait", server_id, cloud=DEMO)
