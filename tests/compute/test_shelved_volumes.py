"""Volumes attached to and detached from a SHELVED_OFFLOADED server (Nova's
microversion 2.20), end to end: the real API, a control worker, a
simulated node (libvirt's test driver) and a real volume worker on a file
back end, driven by the `openstack` CLI as a tenant. Offloaded, the
attachment is recorded with no host and the volume is in-use, as Nova
leaves it; unshelving connects it on the node the server lands on (the
domain there has the disk); a detach while offloaded frees the volume
with no node involved. Below 2.20 both are refused and nothing changes."""
import uuid

import pytest

from compute.models import Instance, VmState
from tests.compute import pipeline
from tests.compute.pipeline import start_nodes, stop_nodes, upload_tiny_image
from tests.compute.test_volume_attachments import DEMO, attachments_api, new_volume, volume_status
from tests.volumes import conftest as volume_fixtures
from tests.volumes.conftest import wait_status
from volumes.models import Attachment

control, live_db, volume_worker = pipeline.control, pipeline.live_db, volume_fixtures.volume_worker

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def nodes(cloud, control, tmp_path_factory):
    directory = tmp_path_factory.mktemp("shelvedvol")
    worker, hosts = start_nodes(cloud, directory, 2, "shvol", STRATUS_IMAGE_CACHE_DIR=str(directory / "cache"))
    yield hosts
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


def settled(cloud, server_id, status):
    shown = cloud.openstack("server", "show", server_id, "-f", "json", cloud=DEMO)
    return shown["status"] == status and not shown["OS-EXT-STS:task_state"] and shown


def shelved_offloaded(cloud, image):
    server = cloud.openstack("server", "create", "--image", image, "--flavor", "m1.nano", "--nic", "none",
                             "--wait", f"shv-{uuid.uuid4().hex[:6]}", "-f", "json", cloud=DEMO)
    assert server["status"] == "ACTIVE"
    return server["id"]


def shelve(cloud, server_id):
    cloud.openstack("server", "shelve", server_id, cloud=DEMO, parse=False)
    pipeline.wait_until(lambda: settled(cloud, server_id, "SHELVED_OFFLOADED"), timeout=120,
                        message="SHELVED_OFFLOADED")
    assert Instance.objects.get(pk=server_id).host is None


def attachment_of(cloud, volume_id):
    (attachment,) = cloud.openstack("volume", "show", volume_id, "-f", "json", cloud=DEMO)["attachments"]
    return attachment


def disks_in_domain(cloud, server_id):
    """The disks the server's domain has, as its node's libvirt reports
    them (an admin's server diagnostics, Nova's flat form before 2.48)."""
    answer = cloud.connect("stratus").compute.get(f"/servers/{server_id}/diagnostics",
                                                  headers={"OpenStack-API-Version": "compute 2.1"})
    assert answer.status_code == 200, answer.text
    return sorted(key.removesuffix("_read") for key in answer.json() if key.endswith("_read"))


def test_attach_and_detach_on_a_shelved_offloaded_server_then_unshelve_connects_them(
        cloud, nodes, image, volume_worker):
    server_id = shelved_offloaded(cloud, image)
    before = new_volume(cloud)
    cloud.openstack("server", "add", "volume", server_id, before["id"], cloud=DEMO, parse=False)
    assert attachment_of(cloud, before["id"])["host_name"] in nodes
    shelve(cloud, server_id)
    # Offloaded, its volume stays attached on no host.
    assert volume_status(cloud, before["id"]) == "in-use"
    assert attachment_of(cloud, before["id"])["host_name"] is None

    added, passing = new_volume(cloud), new_volume(cloud)
    cloud.openstack("server", "add", "volume", server_id, added["id"], cloud=DEMO, parse=False)
    shown = cloud.openstack("volume", "show", added["id"], "-f", "json", cloud=DEMO)
    assert shown["status"] == "in-use"
    (attachment,) = shown["attachments"]
    assert attachment["server_id"] == server_id and attachment["host_name"] is None
    assert attachment["device"] == "/dev/vdc"
    row = Attachment.objects.get(volume_id=added["id"])
    assert row.attached_host is None and row.connector is None
    listed = cloud.openstack("server", "volume", "list", server_id, "-f", "json", cloud=DEMO)
    assert sorted((row["Volume ID"], row["Device"]) for row in listed) == sorted(
        [(before["id"], "/dev/vdb"), (added["id"], "/dev/vdc")])
    assert added["id"] in str(cloud.openstack("server", "show", server_id, "-f", "json",
                                              cloud=DEMO)["volumes_attached"])

    # Attached and detached again while offloaded: free at once, no node asked.
    cloud.openstack("server", "add", "volume", server_id, passing["id"], cloud=DEMO, parse=False)
    assert volume_status(cloud, passing["id"]) == "in-use"
    cloud.openstack("server", "remove", "volume", server_id, passing["id"], cloud=DEMO, parse=False)
    shown = cloud.openstack("volume", "show", passing["id"], "-f", "json", cloud=DEMO)
    assert shown["status"] == "available" and shown["attachments"] == []
    assert not Attachment.objects.filter(volume_id=passing["id"]).exists()
    instance = Instance.objects.get(pk=server_id)
    assert (instance.vm_state, instance.host, instance.task_state) == (VmState.SHELVED_OFFLOADED, None, None)

    # Unshelved, the node it lands on connects both volumes and its domain has their disks.
    cloud.openstack("server", "unshelve", server_id, cloud=DEMO, parse=False)
    pipeline.wait_until(lambda: settled(cloud, server_id, "ACTIVE"), timeout=120, message="ACTIVE")
    host = Instance.objects.get(pk=server_id).host
    assert host in nodes
    for volume_id in (before["id"], added["id"]):
        assert volume_status(cloud, volume_id) == "in-use"
        assert attachment_of(cloud, volume_id)["host_name"] == host
    assert disks_in_domain(cloud, server_id) == ["vda", "vdb", "vdc"]

    # Running again, a detach goes through its node as ever.
    cloud.openstack("server", "remove", "volume", server_id, added["id"], cloud=DEMO, parse=False)
    wait_status(cloud, added["id"], "available", cloud_name=DEMO)
    cloud.openstack("server", "delete", "--wait", server_id, cloud=DEMO)
    storage = cloud.connect(DEMO).block_storage
    for volume in (before, added, passing):
        assert volume_status(cloud, volume["id"]) == "available"
        storage.delete_volume(volume["id"])


def test_before_2_20_an_offloaded_server_takes_no_volume_and_a_deleted_one_frees_them(
        cloud, nodes, image, volume_worker):
    server_id = shelved_offloaded(cloud, image)
    shelve(cloud, server_id)
    volume = new_volume(cloud)
    compute, _headers, path = attachments_api(cloud, server_id)
    old = {"OpenStack-API-Version": "compute 2.19"}
    refused = compute.post(path, json={"volumeAttachment": {"volumeId": volume["id"]}}, headers=old)
    assert refused.status_code == 409 and "shelved_offloaded" in refused.json()["conflictingRequest"]["message"]
    assert volume_status(cloud, volume["id"]) == "available"
    assert not Attachment.objects.filter(volume_id=volume["id"]).exists()

    attached = compute.post(path, json={"volumeAttachment": {"volumeId": volume["id"]}},
                            headers={"OpenStack-API-Version": "compute 2.20"})
    assert attached.status_code == 200, attached.text
    body = attached.json()["volumeAttachment"]
    assert (body["volumeId"], body["serverId"], body["device"]) == (volume["id"], server_id, "/dev/vdb")
    # Another project's volume is not found (404), and stays as it was.
    admins = new_volume(cloud, cloud_name="stratus")
    missing = compute.post(path, json={"volumeAttachment": {"volumeId": admins["id"]}},
                           headers={"OpenStack-API-Version": "compute 2.20"})
    assert missing.status_code == 404 and "itemNotFound" in missing.json()
    assert volume_status(cloud, admins["id"], cloud_name="stratus") == "available"
    cloud.connect("stratus").block_storage.delete_volume(admins["id"])
    # A second attach of the same volume is refused as for any server.
    again = compute.post(path, json={"volumeAttachment": {"volumeId": volume["id"]}},
                         headers={"OpenStack-API-Version": "compute 2.20"})
    assert again.status_code == 400
    refused = compute.delete(f"{path}/{volume['id']}", headers=old)
    assert refused.status_code == 409
    assert volume_status(cloud, volume["id"]) == "in-use"

    # Deleting the offloaded server detaches it.
    cloud.openstack("server", "delete", "--wait", server_id, cloud=DEMO)
    assert volume_status(cloud, volume["id"]) == "available"
    cloud.connect(DEMO).block_storage.delete_volume(volume["id"])
