"""Volumes attached to servers through Nova's os-volume_attachments, end to
end: the real API, a control worker, a simulated node (libvirt's test
driver, whose definition of the domain takes the disk) and a real volume
worker on a file back end, driven by the `openstack` CLI as a tenant."""
import uuid

import pytest

from compute.models import Instance
from tests.compute import pipeline
from tests.compute.pipeline import start_nodes, stop_nodes, upload_tiny_image
from tests.volumes import conftest as volume_fixtures
from tests.volumes.conftest import wait_status
from volumes.models import Attachment

# The fixtures of the boot-pipeline and block storage tests, on the live database.
control, live_db, volume_worker = pipeline.control, pipeline.live_db, volume_fixtures.volume_worker

pytestmark = pytest.mark.live

DEMO = "stratus-demo"


@pytest.fixture(scope="module")
def nodes(cloud, control, tmp_path_factory):
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("volnodes"), 1, "vol")
    yield hosts
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


def boot(cloud, image, cloud_name=DEMO):
    return cloud.openstack("server", "create", "--image", image, "--flavor", "m1.nano", "--nic", "none",
                           "--wait", f"vol-{uuid.uuid4().hex[:6]}", "-f", "json", cloud=cloud_name)


def new_volume(cloud, cloud_name=DEMO, size=1):
    """An available volume (made through openstacksdk: the CLI is what the
    attach and detach steps test)."""
    volume = cloud.connect(cloud_name).block_storage.create_volume(size=size, name=f"data-{uuid.uuid4().hex[:6]}")
    return wait_status(cloud, volume.id, "available", cloud_name=cloud_name)


def volume_status(cloud, volume_id, cloud_name=DEMO):
    return cloud.connect(cloud_name).block_storage.get_volume(volume_id).status


def delete_volumes(cloud, *volume_ids, cloud_name=DEMO):
    storage = cloud.connect(cloud_name).block_storage
    for volume_id in volume_ids:
        storage.delete_volume(volume_id)


def attachments_api(cloud, server_id, cloud_name=DEMO, version="2.60"):
    compute = cloud.connect(cloud_name).compute
    return compute, {"OpenStack-API-Version": f"compute {version}"}, f"/servers/{server_id}/os-volume_attachments"


def test_attach_list_show_stop_start_and_detach_with_the_cli(cloud, nodes, image, volume_worker):
    server = boot(cloud, image)
    volume = new_volume(cloud)
    sid, vid = server["id"], volume["id"]

    cloud.openstack("server", "add", "volume", sid, vid, cloud=DEMO)
    shown = cloud.openstack("volume", "show", vid, "-f", "json", cloud=DEMO)
    assert shown["status"] == "in-use"
    (attachment,) = shown["attachments"]
    assert attachment["server_id"] == sid and attachment["device"] == "/dev/vdb"
    assert attachment["host_name"] == nodes[0]
    listed = cloud.openstack("server", "volume", "list", sid, "-f", "json", cloud=DEMO)
    assert [(row["Volume ID"], row["Device"]) for row in listed] == [(vid, "/dev/vdb")]
    detail = cloud.openstack("server", "show", sid, "-f", "json", cloud=DEMO)
    assert vid in str(detail["volumes_attached"])

    compute, headers, path = attachments_api(cloud, sid)
    one = compute.get(f"{path}/{vid}", headers=headers)
    assert one.status_code == 200
    assert one.json() == {"volumeAttachment": {"id": vid, "volumeId": vid, "serverId": sid, "device": "/dev/vdb"}}

    # A second volume takes the next device; stop and start keep both.
    second = new_volume(cloud)
    cloud.openstack("server", "add", "volume", sid, second["id"], cloud=DEMO)
    cloud.openstack("server", "stop", sid, cloud=DEMO)
    pipeline.wait_until(lambda: Instance.objects.get(pk=sid).vm_state == "stopped", timeout=60,
                        message="server to stop")
    cloud.openstack("server", "start", sid, cloud=DEMO)
    pipeline.wait_until(lambda: Instance.objects.get(pk=sid).vm_state == "active", timeout=60,
                        message="server to start")
    listed = cloud.openstack("server", "volume", "list", sid, "-f", "json", cloud=DEMO)
    assert sorted((row["Volume ID"], row["Device"]) for row in listed) == sorted(
        [(vid, "/dev/vdb"), (second["id"], "/dev/vdc")])

    # As Nova's, the detach is accepted at once and the node finishes it.
    cloud.openstack("server", "remove", "volume", sid, vid, cloud=DEMO)
    wait_status(cloud, vid, "available", cloud_name=DEMO)
    assert compute.get(f"{path}/{vid}", headers=headers).status_code == 404
    listed = cloud.openstack("server", "volume", "list", sid, "-f", "json", cloud=DEMO)
    assert [row["Volume ID"] for row in listed] == [second["id"]]

    # Deleting the server detaches what it still has.
    cloud.openstack("server", "delete", "--wait", sid, cloud=DEMO)
    shown = cloud.connect(DEMO).block_storage.get_volume(second["id"])
    assert shown.status == "available" and shown.attachments == []
    delete_volumes(cloud, vid, second["id"])


def test_bad_attaches_answer_as_nova_and_change_nothing(cloud, nodes, image, volume_worker):
    first, other = boot(cloud, image), boot(cloud, image)
    volume = new_volume(cloud)
    compute, headers, path = attachments_api(cloud, first["id"])
    _, _, other_path = attachments_api(cloud, other["id"])

    def attach(body, at=path, version_headers=headers):
        return compute.post(at, json={"volumeAttachment": body}, headers=version_headers)

    assert attach({"volumeId": volume["id"]}).status_code == 200
    # Attached to another server already: 400; again to the same one: 400.
    refused = attach({"volumeId": volume["id"]}, at=other_path)
    assert refused.status_code == 400 and "badRequest" in refused.json()
    assert attach({"volumeId": volume["id"]}).status_code == 400
    assert Attachment.objects.filter(volume_id=volume["id"]).count() == 1

    # Another project's volume is not found; nor is one that does not exist.
    admins = new_volume(cloud, cloud_name="stratus")
    missing = attach({"volumeId": admins["id"]}, at=other_path)
    assert missing.status_code == 404 and "itemNotFound" in missing.json()
    assert attach({"volumeId": str(uuid.uuid4())}, at=other_path).status_code == 404
    assert volume_status(cloud, admins["id"], cloud_name="stratus") == "available"

    # Bad input names its field.
    for body, field in (({"volumeId": "nope"}, "volumeId"), ({"volumeId": admins["id"], "device": "vdb"}, "device"),
                        ({"volumeId": admins["id"], "tag": "a/b"}, "tag")):
        answer = attach(body, at=other_path, version_headers={"OpenStack-API-Version": "compute 2.49"})
        assert answer.status_code == 400 and field in answer.json()["badRequest"]["message"]
    before_tag = attach({"volumeId": admins["id"], "tag": "data"}, at=other_path,
                        version_headers={"OpenStack-API-Version": "compute 2.48"})
    assert before_tag.status_code == 400 and "tag" in before_tag.json()["badRequest"]["message"]

    # Swapping is refused; a server in the wrong state is a 409.
    swap = compute.put(f"{path}/{volume['id']}", json={"volumeAttachment": {"volumeId": admins["id"]}},
                       headers=headers)
    assert swap.status_code == 409 and "conflictingRequest" in swap.json()
    Instance.objects.filter(pk=other["id"]).update(task_state="rebooting")
    try:
        busy = new_volume(cloud)
        assert attach({"volumeId": busy["id"]}, at=other_path).status_code == 409
        assert volume_status(cloud, busy["id"]) == "available"
    finally:
        Instance.objects.filter(pk=other["id"]).update(task_state=None)
    # Detaching a volume the server does not have is a 404.
    assert compute.delete(f"{other_path}/{volume['id']}", headers=headers).status_code == 404

    cloud.openstack("server", "delete", "--wait", first["id"], other["id"], cloud=DEMO)
    assert volume_status(cloud, volume["id"]) == "available"
    delete_volumes(cloud, volume["id"], busy["id"])
    delete_volumes(cloud, admins["id"], cloud_name="stratus")
