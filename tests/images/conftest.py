"""Image fixtures: real qcow2 files made with qemu-img, and a second API
server with a small image quota (settings come from the environment, so a
quota test needs its own server process on the same database)."""
import hashlib
import os
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
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


def start_api(log_dir, threads=2, **env):
    """(process, url) of another API server on this run's database, with
    settings of its own from `env` (settings are read from the environment,
    so a different quota or store needs its own process) and `threads`
    requests served at once."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(log_dir / "api.log", "w")
    server = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", str(threads),
         "cloud.wsgi"],
        cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT, env=server_env(STRATUS_API_PORT=str(port), **env))
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/image/", timeout=5)
            return server, url
        except (requests.ConnectionError, requests.Timeout):
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"API server did not start: {Path(log.name).read_text()[-3000:]}")
            time.sleep(0.2)


def stop(processes):
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def small_quota_url(cloud, tmp_path_factory):
    """An API server whose projects may store SMALL_QUOTA bytes of images."""
    server, url = start_api(tmp_path_factory.mktemp("small-quota"), STRATUS_IMAGE_QUOTA_BYTES=str(SMALL_QUOTA))
    yield url
    stop([server])


@pytest.fixture(scope="module")
def ceph_api_url(cloud, ceph_conf, tmp_path_factory):
    """An API server with the Ceph RBD store enabled besides the filesystem."""
    server, url = start_api(tmp_path_factory.mktemp("ceph-api"), STRATUS_IMAGE_RBD_CEPH_CONF=ceph_conf)
    yield url
    stop([server])


@contextmanager
def fresh_project(cloud, prefix):
    """A new project (no image data yet) and a member user of it:
    {"id", "token", "username", "password"}; both deleted afterwards."""
    admin = {"X-Auth-Token": cloud.token()}
    identity = f"{cloud.url}/identity/v3"
    name, password = unique(prefix), uuid.uuid4().hex
    project = requests.post(f"{identity}/projects", headers=admin, timeout=30,
                            json={"project": {"name": name, "domain_id": "default"}}).json()["project"]
    user = requests.post(f"{identity}/users", headers=admin, timeout=30, json={"user": {
        "name": name, "password": password, "domain_id": "default", "default_project_id": project["id"]}}
    ).json()["user"]
    role = requests.get(f"{identity}/roles?name=member", headers=admin, timeout=30).json()["roles"][0]
    assert requests.put(f"{identity}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}",
                        headers=admin, timeout=30).status_code == 204
    response = requests.post(f"{identity}/auth/tokens", timeout=30, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"id": user["id"], "password": password}}},
        "scope": {"project": {"id": project["id"]}}}})
    assert response.status_code == 201, response.text
    try:
        yield {"id": project["id"], "token": response.headers["X-Subject-Token"], "username": name,
               "password": password}
    finally:
        requests.delete(f"{identity}/users/{user['id']}", headers=admin, timeout=30)
        requests.delete(f"{identity}/projects/{project['id']}", headers=admin, timeout=30)
