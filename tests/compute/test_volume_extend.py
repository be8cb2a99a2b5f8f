"""Extending a volume while it is attached (Cinder 3.42+), on a simulated
node and a real file back end, with the stock CLI: before 3.42 an in-use
volume is refused as Cinder does; from 3.42 the back end's file grows, the
volume stays in-use with its new size and the project's usage follows.
What the guest sees is tests/compute/test_volumes_guest.py's."""
import pytest

from tests.compute import pipeline, test_boot_from_volume
from tests.compute.test_volume_attachments import DEMO, boot, new_volume
from tests.volumes import conftest as volume_fixtures
from volumes import quotas
from volumes.models import Volume

control, live_db, volume_worker = pipeline.control, pipeline.live_db, volume_fixtures.volume_worker
nodes, image = test_boot_from_volume.nodes, test_boot_from_volume.image

pytestmark = pytest.mark.live
GiB = 2**30


def test_an_attached_volume_grows_from_3_42_on(cloud, nodes, image, volume_worker):
    server = boot(cloud, image)
    volume = new_volume(cloud)
    cloud.openstack("server", "add", "volume", server["id"], volume["id"], cloud=DEMO)
    project = Volume.objects.get(pk=volume["id"]).project_id
    used = quotas.usage_of(project)["gigabytes"]

    refused = cloud.openstack("--os-volume-api-version", "3.41", "volume", "set", "--size", "2", volume["id"],
                              cloud=DEMO, expect_fail=True)
    assert "in-use" in refused.stderr or "available" in refused.stderr
    # Not smaller (the CLI checks that itself: the API is asked directly).
    shrink = cloud.connect(DEMO).block_storage.post(
        f"/volumes/{volume['id']}/action", json={"os-extend": {"new_size": 1}},
        headers={"OpenStack-API-Version": "volume 3.42"})
    assert shrink.status_code == 400 and "greater than current size" in shrink.json()["badRequest"]["message"]
    assert Volume.objects.get(pk=volume["id"]).status == "in-use"

    cloud.openstack("--os-volume-api-version", "3.42", "volume", "set", "--size", "3", volume["id"], cloud=DEMO)
    pipeline.wait_until(lambda: Volume.objects.filter(pk=volume["id"], status="in-use", size=3).exists(),
                        timeout=60, message="the in-use volume to grow")
    assert (volume_worker.directory / f"volume-{volume['id']}").stat().st_size == 3 * GiB
    assert quotas.usage_of(project)["gigabytes"] == used + 2
    shown = cloud.openstack("volume", "show", volume["id"], "-f", "json", cloud=DEMO)
    assert shown["size"] == 3 and shown["attachments"][0]["server_id"] == server["id"]

    cloud.openstack("server", "delete", "--wait", server["id"], cloud=DEMO)
    cloud.connect(DEMO).block_storage.delete_volume(volume["id"])
