"""A volume uploaded to an image (os-volume_upload_image) with the stock
CLI's `openstack image create --volume`: the real API, a control worker
and a file back end's worker, which converts the volume and stores it
through the image API's store; the image holds the volume's bytes."""
import subprocess
import uuid

import pytest

from images.models import Image
from tests.compute.nodes import wait_until
from tests.volumes.conftest import wait_status
from volumes.models import Volume

pytestmark = pytest.mark.live

DEMO = "stratus-demo"


def test_image_create_from_a_volume_has_its_bytes(cloud, volume_worker, tmp_path):
    storage = cloud.connect(DEMO).block_storage
    volume = storage.create_volume(size=1, name=f"up-{uuid.uuid4().hex[:6]}")
    wait_status(cloud, volume.id, "available", cloud_name=DEMO)
    path = volume_worker.directory / f"volume-{volume.id}"
    with open(path, "r+b") as file:  # some bytes of its own, at its start and far in
        file.write(b"STRATUS-UPLOAD " * 100)
        file.seek(700 * 2**20)
        file.write(b"far in")

    name = f"from-volume-{uuid.uuid4().hex[:6]}"
    cloud.openstack("image", "create", "--volume", volume.id, "--disk-format", "qcow2", name, cloud=DEMO)
    conn = cloud.connect(DEMO)
    wait_until(lambda: (conn.image.find_image(name) or {}).get("status") == "active", timeout=120, interval=0.5,
               message="the image to be active")
    wait_status(cloud, volume.id, "available", cloud_name=DEMO)
    image = conn.image.find_image(name)
    assert image.disk_format == "qcow2" and image.owner == conn.current_project_id
    downloaded = tmp_path / "image.qcow2"
    with open(downloaded, "wb") as out:
        conn.image.download_image(image, output=out)
    compared = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(path), str(downloaded)],
                              capture_output=True, text=True)
    assert compared.returncode == 0, compared.stdout + compared.stderr

    # Bad input is a 400 naming it; nothing is made.
    before = Image.objects.count()
    for body, words in (({"image_name": name, "disk_format": "vmdk"}, "disk-format"),
                        ({"disk_format": "raw"}, "image_name"),
                        ({"image_name": name, "container_format": "ovf"}, "container-format")):
        answer = storage.post(f"/volumes/{volume.id}/action", json={"os-volume_upload_image": body})
        assert answer.status_code == 400 and words in answer.json()["badRequest"]["message"], answer.text
    # In use needs force (here: a volume marked in-use by the older os-attach action).
    storage.post(f"/volumes/{volume.id}/action", json={"os-attach": {"host_name": "elsewhere", "mountpoint": "/x"}})
    refused = storage.post(f"/volumes/{volume.id}/action", json={"os-volume_upload_image": {"image_name": name}})
    assert refused.status_code == 400 and "force" in refused.json()["badRequest"]["message"]
    assert Image.objects.count() == before
    assert Volume.objects.get(pk=volume.id).status == "in-use"
    storage.post(f"/volumes/{volume.id}/action", json={"os-detach": {}})
    conn.image.delete_image(image)
    storage.delete_volume(volume.id)
