"""The node image cache against the live Image API: it downloads as the
`stratus` service user from the catalog, once per image, verifies the
hashes, and builds qcow2 overlays on its copy."""
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from images.cache import ImageCache, ImageCacheError
from tests.images.conftest import make_qcow2, md5_of, unique

pytestmark = pytest.mark.live


@pytest.fixture
def upload(cloud, tmp_path):
    """Uploads a new qcow2 (as the demo project, private) and returns
    (image id, local file)."""
    token = cloud.token("stratus-demo")
    made = []

    def make(data_bytes=256 * 1024, virtual_bytes=None):
        path = make_qcow2(tmp_path / f"{unique('disk')}.qcow2", data_bytes, virtual_bytes)
        image = requests.post(f"{cloud.url}/image/v2/images", headers={"X-Auth-Token": token}, timeout=30, json={
            "name": unique("cached"), "disk_format": "qcow2", "container_format": "bare",
            "visibility": "private"}).json()
        response = requests.put(f"{cloud.url}/image/v2/images/{image['id']}/file", data=path.read_bytes(),
                                headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"},
                                timeout=60)
        assert response.status_code == 204, response.text
        made.append(image["id"])
        return image["id"], path

    yield make
    for image_id in made:
        requests.delete(f"{cloud.url}/image/v2/images/{image_id}", headers={"X-Auth-Token": token}, timeout=30)


class CountingCache(ImageCache):
    """The real cache, counting the downloads it makes."""

    downloads = 0
    lock = threading.Lock()

    def _download(self, image, partial):
        with self.lock:
            CountingCache.downloads += 1
        return super()._download(image, partial)


def cache_at(cloud, directory, cls=ImageCache):
    return cls(directory=directory, auth_url=f"{cloud.url}/identity")


def test_concurrent_fetches_download_once_and_verify(cloud, upload, tmp_path):
    image_id, source = upload(data_bytes=4 * 2**20)
    directory = tmp_path / "cache"
    CountingCache.downloads = 0
    results, errors = [], []

    def fetch():
        try:
            results.append(cache_at(cloud, directory, CountingCache).fetch(image_id))
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert CountingCache.downloads == 1
    assert set(results) == {directory / image_id}
    assert md5_of(results[0]) == md5_of(source)
    # Fetching again is served from the cache.
    assert cache_at(cloud, directory, CountingCache).fetch(image_id) == directory / image_id
    assert CountingCache.downloads == 1


def test_hash_mismatch_discards_the_copy_and_says_why(cloud, upload, tmp_path):
    image_id, _ = upload()
    stored = Path(settings.IMAGE_STORE_DIR) / image_id
    with open(stored, "r+b") as handle:  # the store's copy rots
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    directory = tmp_path / "cache"
    with pytest.raises(ImageCacheError, match=f"Image {image_id}: the downloaded data does not match .*sha512.*"
                                              "the partial copy was discarded"):
        cache_at(cloud, directory).fetch(image_id)
    left = [path.name for path in directory.iterdir() if not path.name.endswith(".lock")]
    assert left == []


def test_image_not_active_or_missing_is_a_clear_error(cloud, tmp_path):
    token = cloud.token()
    image = requests.post(f"{cloud.url}/image/v2/images", headers={"X-Auth-Token": token}, timeout=30,
                          json={"name": unique("empty"), "disk_format": "qcow2", "container_format": "bare"}).json()
    try:
        with pytest.raises(ImageCacheError, match="is queued, not active"):
            cache_at(cloud, tmp_path).fetch(image["id"])
    finally:
        requests.delete(f"{cloud.url}/image/v2/images/{image['id']}", headers={"X-Auth-Token": token}, timeout=30)
    with pytest.raises(ImageCacheError, match="does not exist"):
        cache_at(cloud, tmp_path).fetch("00000000-0000-0000-0000-000000000000")


def test_overlay_is_backed_by_the_cached_copy(cloud, upload, tmp_path):
    image_id, _ = upload(virtual_bytes=64 * 2**20)
    cache = cache_at(cloud, tmp_path / "cache")
    (tmp_path / "instance").mkdir()
    disk = cache.create_overlay(image_id, tmp_path / "instance" / "disk", size_bytes=128 * 2**20)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output", "json", str(disk)],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(tmp_path / "cache" / image_id)
    assert info["virtual-size"] == 128 * 2**20
    assert disk.stat().st_size < 1024 * 1024  # copy on write: the overlay starts nearly empty
    subprocess.run(["qemu-img", "check", str(disk)], check=True, capture_output=True)

    with pytest.raises(ImageCacheError, match="smaller than image"):
        cache.create_overlay(image_id, tmp_path / "instance" / "small", size_bytes=2**20)


def test_disks_of_one_size_are_copies_of_one_overlay_yet_each_its_own(cloud, upload, tmp_path):
    image_id, _ = upload(virtual_bytes=64 * 2**20)
    cache = cache_at(cloud, tmp_path / "cache")
    (tmp_path / "vm").mkdir()
    first, second = (cache.create_overlay(image_id, tmp_path / "vm" / name, size_bytes=96 * 2**20)
                     for name in ("first", "second"))
    templates = list((tmp_path / "cache").glob(f".{image_id}.*.overlay"))
    assert len(templates) == 1  # qemu-img ran once for the two disks
    # A write into one disk is not in the other, nor in the image (whose
    # data ends well before 32 MiB).
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 32M 64k", str(first)], check=True,
                   capture_output=True)
    for disk, pattern in ((first, "0x5a"), (second, "0x00")):
        subprocess.run(["qemu-img", "check", str(disk)], check=True, capture_output=True)
        read = subprocess.run(["qemu-io", "-f", "qcow2", "-r", "-c", f"read -P {pattern} 32M 64k", str(disk)],
                              capture_output=True, text=True)
        assert "Pattern verification failed" not in read.stdout and read.returncode == 0, read.stdout
    info = json.loads(subprocess.run(["qemu-img", "info", "--output", "json", str(second)],
                                     capture_output=True, text=True, check=True).stdout)
    assert (info["backing-filename"], info["virtual-size"]) == (str(cache.path(image_id)), 96 * 2**20)
    # An image evicted takes its overlay templates with it.
    first.unlink()
    second.unlink()
    assert cache.evict(max_bytes=0) == [image_id]
    assert list((tmp_path / "cache").glob(f".{image_id}.*.overlay")) == [] and not cache.path(image_id).exists()


def test_overlays_of_a_cached_image_do_not_wait_for_each_other(cloud, upload, tmp_path):
    image_id, _ = upload()
    cache = cache_at(cloud, tmp_path / "cache")
    (tmp_path / "vm").mkdir()
    cache.fetch(image_id)
    made = []
    # Another boot on this node is in the middle of making its overlay
    # (it holds the image's shared lock): this one goes ahead meanwhile.
    with cache._locked(image_id, shared=True):
        worker = threading.Thread(target=lambda: made.append(cache.create_overlay(image_id, tmp_path / "vm" / "a")))
        worker.start()
        worker.join(timeout=60)
        assert made == [tmp_path / "vm" / "a"]
    # ...while an eviction waits for no one and skips the image in use.
    assert cache.evict(0) == []


def test_evict_removes_unused_images_oldest_first(cloud, upload, tmp_path):
    cache = cache_at(cloud, tmp_path / "cache")
    oldest, older, newest = (upload()[0] for _ in range(3))
    (tmp_path / "vm").mkdir()
    cache.create_overlay(older, tmp_path / "vm" / "disk")  # an instance uses `older`...
    now = time.time()
    for age, image_id in ((300, oldest), (200, older), (100, newest)):
        path = cache.fetch(image_id)
        os.utime(path, (now - age, now - age))

    size = cache.path(newest).stat().st_size
    # Room for two images: only the oldest unused one goes.
    assert cache.evict(max_bytes=2 * size + 10) == [oldest]
    # Room for none: everything unused goes, but not `older` (its disk exists) nor a given in-use id.
    assert cache.evict(max_bytes=0, in_use_image_ids=[newest]) == []
    assert cache.path(older).exists() and cache.path(newest).exists()
    (tmp_path / "vm" / "disk").unlink()  # ...until the instance is gone
    assert cache.evict(max_bytes=0) == [older, newest]
    assert not cache.path(older).exists() and not cache.path(newest).exists()
