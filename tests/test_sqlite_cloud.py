"""The all-in-one's default database is SQLite (`make up` with no
DATABASE_URL): an API server on a SQLite database of its own answers the
requests whose queries differ there (JSON lookups)."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.conftest import VENV_BIN


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def sqlite_cloud(tmp_path_factory):
    """(url, admin token, admin project id) of an API server on SQLite."""
    var = tmp_path_factory.mktemp("sqlite-cloud")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(STRATUS_VAR_DIR=str(var), STRATUS_API_PORT=str(port), STRATUS_PUBLIC_URL=url,
               STRATUS_CACHE_PREFIX=f"sqlite-cloud-{port}", DJANGO_SETTINGS_MODULE="cloud.settings")
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    for command in (["migrate", "--noinput"], ["bootstrap", "--clouds-yaml", str(var / "clouds.yaml")]):
        subprocess.run(manage + command, env=env, cwd=settings.BASE_DIR, check=True, capture_output=True)
    log = open(var / "api.log", "w")
    server = subprocess.Popen([str(VENV_BIN / "gunicorn"), "-c", "python:cloud.gunicorn_conf", "--bind",
                               f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", "cloud.wsgi"],
                              cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{url}/identity/", timeout=5)
            break
        except requests.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"the API on SQLite did not start: {Path(var / 'api.log').read_text()[-3000:]}")
            time.sleep(0.2)
    assert (var / "stratus.sqlite3").exists(), "the API is not on SQLite"
    issued = requests.post(f"{url}/identity/v3/auth/tokens", timeout=30, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": settings.ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    assert issued.status_code == 201, issued.text
    yield url, issued.headers["X-Subject-Token"], issued.json()["token"]["project"]["id"]
    server.terminate()
    server.wait(timeout=20)
    log.close()


def test_volumes_filtered_by_metadata(sqlite_cloud):
    url, token, project_id = sqlite_cloud
    headers = {"X-Auth-Token": token}
    base = f"{url}/volume/v3/{project_id}/volumes"
    made = {}
    for name, metadata in (("kept", {"Type": "work", "n": "1"}), ("other", {"Type": "play"})):
        answer = requests.post(base, headers=headers, timeout=30,
                               json={"volume": {"size": 1, "name": name, "metadata": metadata}})
        assert answer.status_code == 202, answer.text
        made[name] = answer.json()["volume"]["id"]
    for listing in (base, base + "/detail"):
        found = requests.get(listing, headers=headers, timeout=30, params={"metadata": "{'Type': 'work'}"})
        assert found.status_code == 200, found.text
        assert [row["id"] for row in found.json()["volumes"]] == [made["kept"]]
        both = requests.get(listing, headers=headers, timeout=30, params={"metadata": '{"Type": "work", "n": "2"}'})
        assert both.status_code == 200 and both.json()["volumes"] == []


def test_images_filtered_by_a_property(sqlite_cloud):
    url, token, _project_id = sqlite_cloud
    headers = {"X-Auth-Token": token}
    made = {}
    for name, kind in (("nightly", "backup"), ("by-hand", "snapshot")):
        answer = requests.post(f"{url}/image/v2/images", headers=headers, timeout=30, json={
            "name": name, "disk_format": "qcow2", "container_format": "bare", "image_type": kind,
            "backup_type": "daily"})
        assert answer.status_code == 201, answer.text
        made[name] = answer.json()["id"]
    found = requests.get(f"{url}/image/v2/images", headers=headers, timeout=30,
                         params={"image_type": "backup", "backup_type": "daily"})
    assert found.status_code == 200, found.text
    assert [row["id"] for row in found.json()["images"]] == [made["nightly"]]
