"""Image data that would make qemu-img read a file of the host (a VMDK
descriptor's extent, a qcow2 backing or data file), data that is not its
declared disk_format and a virtual size past the limit: refused with a 400
at upload, and refused again by the node's image cache before any qemu-img
call when such data reached the store anyway (CVE-2024-32498)."""
import hashlib
import os

import pytest
from django.conf import settings

from images.cache import ImageCache, ImageCacheError
from images.models import ACTIVE, Image, ImageLocation
from tests.images import disk_files
from tests.images.conftest import store_files, unique

pytestmark = pytest.mark.live

OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def token(cloud):
    return cloud.token()


@pytest.fixture
def secret(tmp_path):
    """A file of the host that no image may ever show (whole sectors of it)."""
    path = tmp_path / "host-secret"
    path.write_bytes(b"HOST-SECRET-" + os.urandom(8).hex().encode() + b"\n" + b"#" * (4096 - 29))
    return path


def hostile(kind, directory, host_file):
    """(declared disk_format, file) of one kind of bad image; making it
    leaves `host_file` as it was."""
    before = host_file.read_bytes()
    made = _hostile(kind, directory, host_file)
    assert host_file.read_bytes() == before, f"making {kind} changed {host_file}"
    return made


def _hostile(kind, directory, host_file):
    if kind == "vmdk-flat-extent":
        return "vmdk", disk_files.flat_vmdk_descriptor(directory / "flat.vmdk", host_file,
                                                       os.path.getsize(host_file) // 512)
    if kind == "qcow2-backing-file":
        return "qcow2", disk_files.qcow2_with_backing_file(directory / "backed.qcow2", host_file)
    if kind == "qcow2-data-file":
        return "qcow2", disk_files.qcow2_with_data_file(directory / "data-file.qcow2", host_file)
    if kind == "qcow2-declared-raw":
        return "raw", disk_files.qcow2(directory / "really.qcow2")
    if kind == "vmdk-declared-qcow2":
        return "qcow2", disk_files.vmdk(directory / "really.vmdk", "streamOptimized")
    if kind == "vmdk-flat-declared-raw":
        return "raw", disk_files.flat_vmdk_descriptor(directory / "flat.raw", host_file, 8)
    if kind == "huge-virtual-size":
        return "qcow2", disk_files.huge_qcow2(directory / "huge.qcow2")
    raise AssertionError(kind)


HOSTILE = ["vmdk-flat-extent", "qcow2-backing-file", "qcow2-data-file", "qcow2-declared-raw",
           "vmdk-declared-qcow2", "vmdk-flat-declared-raw", "huge-virtual-size"]


def new_image(api, token, disk_format):
    response = api.post("/image/v2/images", token=token,
                        json={"name": unique("safety"), "disk_format": disk_format, "container_format": "bare"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_upload_is_a_400_and_stores_nothing(api, token, tmp_path, secret, kind):
    disk_format, path = hostile(kind, tmp_path, secret)
    image_id = new_image(api, token, disk_format)
    try:
        before = store_files()
        response = api.put(f"/image/v2/images/{image_id}/file", token=token, data=path.read_bytes(), headers=OCTETS)
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["code"] == "400 Bad Request" and "disk_format" in body["message"], body
        image = api.get(f"/image/v2/images/{image_id}", token=token).json()
        assert image["status"] == "queued" and image["size"] is None
        assert store_files() == before
    finally:
        api.delete(f"/image/v2/images/{image_id}", token=token)


def test_cli_upload_of_a_vmdk_naming_a_host_file_fails_with_the_reason(cloud, tmp_path, secret):
    path = disk_files.flat_vmdk_descriptor(tmp_path / "flat.vmdk", secret, 4)
    name = unique("flat")
    failed = cloud.openstack("image", "create", "--file", path, "--disk-format", "vmdk", "--container-format",
                             "bare", name, expect_fail=True)
    assert "400" in failed.stderr and "disk_format" in failed.stderr, failed.stderr
    images = cloud.openstack("image", "list", "--name", name, "--long", "-f", "json")
    assert [row["Status"] for row in images] in ([], ["queued"])
    for row in images:
        cloud.openstack("image", "delete", row["ID"])


@pytest.mark.parametrize("disk_format, make, virtual_size", [
    ("qcow2", lambda directory: disk_files.qcow2(directory / "ok.qcow2"), 2**20),
    ("raw", lambda directory: disk_files.raw_disk(directory / "ok.raw"), 2 * 2**20),
    ("vmdk", lambda directory: disk_files.vmdk(directory / "stream.vmdk", "streamOptimized"), 2**20),
    ("vmdk", lambda directory: disk_files.vmdk(directory / "sparse.vmdk", "monolithicSparse"), 2**20),
    ("iso", lambda directory: disk_files.iso(directory / "ok.iso"), 64 * 2048),
    ("aki", lambda directory: disk_files.kernel_like(directory / "vmlinuz"), None),
])
def test_valid_images_of_every_format_are_accepted(api, token, tmp_path, disk_format, make, virtual_size):
    path = make(tmp_path)
    image_id = new_image(api, token, disk_format)
    try:
        response = api.put(f"/image/v2/images/{image_id}/file", token=token, data=path.read_bytes(), headers=OCTETS)
        assert response.status_code == 204, response.text
        image = api.get(f"/image/v2/images/{image_id}", token=token).json()
        assert image["status"] == "active"
        assert image["virtual_size"] == virtual_size
    finally:
        api.delete(f"/image/v2/images/{image_id}", token=token)


@pytest.fixture
def stored_behind_the_api(api, token, django_db_blocker):
    """Makes an active image of any data, written into the store directly
    (an upload from before the checks existed); deleted afterwards."""
    made = []

    def make(disk_format, path):
        image_id = new_image(api, token, disk_format)
        made.append(image_id)
        content = path.read_bytes()
        stored = settings.IMAGE_STORE_DIR / image_id
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(content)
        with django_db_blocker.unblock():
            ImageLocation.objects.create(image_id=image_id, store="file", url=stored.as_uri())
            Image.objects.filter(pk=image_id).update(
                status=ACTIVE, size=len(content), checksum=hashlib.md5(content, usedforsecurity=False).hexdigest(),
                os_hash_algo="sha512", os_hash_value=hashlib.sha512(content).hexdigest())
        return image_id

    yield make
    for image_id in made:
        api.delete(f"/image/v2/images/{image_id}", token=token)


@pytest.mark.parametrize("kind", HOSTILE)
def test_node_cache_refuses_hostile_data_before_qemu_img(cloud, stored_behind_the_api, tmp_path, secret, kind):
    (tmp_path / "made").mkdir()
    disk_format, path = hostile(kind, tmp_path / "made", secret)
    image_id = stored_behind_the_api(disk_format, path)
    directory = tmp_path / "cache"
    cache = ImageCache(directory=directory, auth_url=f"{cloud.url}/identity")
    with pytest.raises(ImageCacheError, match=f"Image {image_id} is refused: .*"):
        cache.fetch(image_id)
    # Nothing was cached or converted, and the host file's contents are in no file of the cache.
    left = sorted(path.name for path in directory.iterdir())
    assert left == [f".{image_id}.lock"]
    (tmp_path / "vm").mkdir()
    with pytest.raises(ImageCacheError, match="is refused"):
        cache.create_overlay(image_id, tmp_path / "vm" / "disk")
    assert not (tmp_path / "vm" / "disk").exists()
    marker = secret.read_bytes()[:28]
    for written in [*directory.rglob("*"), *(tmp_path / "vm").rglob("*")]:
        assert not written.is_file() or marker not in written.read_bytes(), written


def test_node_cache_still_converts_a_valid_vmdk(cloud, stored_behind_the_api, tmp_path):
    image_id = stored_behind_the_api("vmdk", disk_files.vmdk(tmp_path / "ok.vmdk", "streamOptimized"))
    cache = ImageCache(directory=tmp_path / "cache", auth_url=f"{cloud.url}/identity")
    cached = cache.fetch(image_id)
    assert cached.read_bytes()[:4] == b"QFI\xfb"  # converted to qcow2 once, on download
