"""A boot from image data the node's image cache refuses (here a
monolithicFlat VMDK naming a file of the host, written into the store
behind the API's back as an older upload could have been) ends in ERROR
with the refusal in the server's fault, without trying another host, and
no disk of it is made."""
import hashlib

import pytest
from django.conf import settings

from images.models import ACTIVE, Image, ImageLocation
from tests.compute.pipeline import (  # noqa: F401  (live_db is a fixture)
    ControlWorker, live_db, start_nodes, stop_nodes, unlimited_quota, wait_settled,
)
from tests.images import disk_files
from tests.images.conftest import unique

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def node(live_db, cloud, tmp_path_factory):
    """Two nodes and a control worker that would try both: a refused image
    must not be tried on the second."""
    base = tmp_path_factory.mktemp("refused")
    control = ControlWorker(base / "control.log").start()
    worker, hosts = start_nodes(cloud, base, 2, "refused")
    yield base, hosts
    stop_nodes(worker, hosts)
    control.stop()


@pytest.fixture
def hostile_image(cloud, api, tmp_path):
    token = cloud.token()
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"HOST-SECRET-" + b"#" * (4096 - 12))
    path = disk_files.flat_vmdk_descriptor(tmp_path / "flat.vmdk", secret, 8)
    image_id = api.post("/image/v2/images", token=token, json={
        "name": unique("hostile"), "disk_format": "vmdk", "container_format": "bare"}).json()["id"]
    content = path.read_bytes()
    stored = settings.IMAGE_STORE_DIR / image_id
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(content)
    ImageLocation.objects.create(image_id=image_id, store="file", url=stored.as_uri())
    Image.objects.filter(pk=image_id).update(
        status=ACTIVE, size=len(content), checksum=hashlib.md5(content, usedforsecurity=False).hexdigest(),
        os_hash_algo="sha512", os_hash_value=hashlib.sha512(content).hexdigest())
    yield image_id
    api.delete(f"/image/v2/images/{image_id}", token=token)


def test_boot_from_a_refused_image_is_error_with_the_reason(cloud, node, hostile_image):
    base, hosts = node
    unlimited_quota(cloud)
    server = cloud.openstack("server", "create", "--image", hostile_image, "--flavor", "m1.nano", "--nic", "none",
                             unique("refused"), "-f", "json")
    shown = wait_settled(cloud, [server["id"]])[server["id"]]
    assert shown.status == "ERROR"
    # The reason is the user's to see (the fault's message); which host
    # found it is for administrators (its details).
    assert shown.fault["message"].startswith(f"Build of instance {server['id']} aborted: "), shown.fault
    assert f"Image {hostile_image} is refused" in shown.fault["message"], shown.fault
    assert "Unsupported subformat" in shown.fault["message"]
    assert any(host in shown.fault["details"] for host in hosts), shown.fault
    events = cloud.openstack("server", "event", "show", server["id"],
                             cloud.openstack("server", "event", "list", server["id"], "-f", "json")[0]["Request ID"],
                             "-f", "json")["events"]
    # One host tried: no reschedule.
    assert [event["event"] for event in events].count("compute_prepare_disk") == 1, events
    made = [path for path in (base / "nodes").rglob("*") if path.is_file()]
    assert not [path for path in made if b"HOST-SECRET" in path.read_bytes()], made
    cloud.openstack("server", "delete", "--wait", server["id"])
