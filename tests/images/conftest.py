"""Image fixtures: real qcow2 files made with qemu-img, and a second API
server with a small image quota (settings come from the environment, so a
quota test needs its own server process on the same database)."""
import hashlib
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.conftest import VENV_BIN, free_port, server_env

SMALL_QUOTA = 2 * 2**20


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_qcow2(path, data_bytes=2 * 2**20, virtual_bytes=None):
    """A qcow2 holding random data (so every file differs)."""
    raw = path.with_suffix(".raw")
    raw.write_bytes(os.urandom(data_bytes))
    if virtual_bytes:
        with open(raw, "r+b") as handle:
            handle.truncate(virtual_bytes)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(path)], check=True)
    raw.unlink()
    return path


def md5_of(path):
    return hashlib.md5(Path(path).read_bytes(), usedforsecurity=False).hexdigest()


def store_files():
    """What the filesystem store holds now (partial files included)."""
    directory = settings.IMAGE_STORE_DIR
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def qcow2(tmp_path):
    return make_qcow2(tmp_path / "disk.qcow2")


@pytest.fixture
def image_of(cloud):
    """Uploads a file with the CLI and returns `image show` of it."""
    made = []

    def upload(path, *extra, name=None, cloud_name="stratus"):
        name = name or unique("img")
        image = cloud.openstack("image", "create", "--file", path, "--disk-format", "qcow2",
                                "--container-format", "bare", *extra, name, "-f", "json", cloud=cloud_name)
        made.append((image["id"], cloud_name))
        return image

    yield upload
    # Tests may have deleted some already: ask the API directly, ignore 404s.
    token = cloud.token()
    for image_id, _ in made:
        requests.delete(f"{cloud.url}/image/v2/images/{image_id}", headers={"X-Auth-Token": token}, timeout=30)


@pytest.fixture(scope="module")
def small_quota_url(cloud, tmp_path_factory):
    """Another API server on the same database whose projects may store
    SMALL_QUOTA bytes of images."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("logs") / "api-small-quota.log", "w")
    server = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2", "cloud.wsgi"],
        cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
        env=server_env(STRATUS_API_PORT=str(port), STRATUS_IMAGE_QUOTA_BYTES=str(SMALL_QUOTA)))
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/image/", timeout=5)
            break
        except (requests.ConnectionError, requests.Timeout):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"API server did not start: {Path(log.name).read_text()[-3000:]}")
            time.sleep(0.2)
    yield url
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=10)
    log.close()
