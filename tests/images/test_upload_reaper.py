"""An upload whose API process is killed leaves its image `saving` and a
partial file in the store; the reaper (periodic, through beat) puts the
image back to `queued`, removes the partial data, and the owner can upload
again."""
import os
import signal
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from django.conf import settings

from images.data import reap_stalled_uploads
from images.tasks import reap_stalled_uploads as reap_task
from tests.images.conftest import make_qcow2, start_api, stop, unique
from workers.schedule import BEAT_SCHEDULE

pytestmark = pytest.mark.live


def status_of(cloud, token, image_id):
    return requests.get(f"{cloud.url}/image/v2/images/{image_id}", headers={"X-Auth-Token": token},
                        timeout=30).json()["status"]


def worker_pids(master_pid):
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    assert children, "the API server has no worker"
    return [int(pid) for pid in children]


def partial_files(image_id):
    return sorted(settings.IMAGE_STORE_DIR.glob(f".{image_id}.*.partial"))


def test_upload_killed_with_its_api_process_is_reaped_and_can_be_retried(cloud, tmp_path, django_db_blocker):
    token = cloud.token()
    headers = {"X-Auth-Token": token}
    image_id = requests.post(f"{cloud.url}/image/v2/images", headers=headers, timeout=30, json={
        "name": unique("reaped"), "disk_format": "qcow2", "container_format": "bare"}).json()["id"]
    server, url = start_api(tmp_path)
    address = urlparse(url)
    try:
        with socket.create_connection((address.hostname, address.port)) as connection:
            connection.sendall(
                f"PUT /image/v2/images/{image_id}/file HTTP/1.1\r\nHost: {address.netloc}\r\nX-Auth-Token: {token}"
                f"\r\nContent-Type: application/octet-stream\r\nContent-Length: {8 * 2**20}\r\n\r\n".encode()
                + b"\0" * 2**20)
            deadline = time.monotonic() + 20
            while not (status_of(cloud, token, image_id) == "saving" and partial_files(image_id)):
                assert time.monotonic() < deadline, "the upload did not start"
                time.sleep(0.05)
            # The API's processes die mid-upload: its worker (which holds the
            # upload), then the master (which would start another).
            for worker in worker_pids(server.pid):
                os.kill(worker, signal.SIGKILL)
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
    # Nobody is left to finish or undo it.
    assert status_of(cloud, token, image_id) == "saving" and partial_files(image_id)

    with django_db_blocker.unblock():
        assert image_id not in reap_stalled_uploads()  # not silent long enough yet: it may still be alive
        assert status_of(cloud, token, image_id) == "saving"
        assert image_id in reap_stalled_uploads(stale_after=0)
    assert status_of(cloud, token, image_id) == "queued"
    assert partial_files(image_id) == []

    disk = make_qcow2(tmp_path / "disk.qcow2")
    response = requests.put(f"{cloud.url}/image/v2/images/{image_id}/file", data=disk.read_bytes(), timeout=60,
                            headers={**headers, "Content-Type": "application/octet-stream"})
    assert response.status_code == 204, response.text
    assert status_of(cloud, token, image_id) == "active"
    requests.delete(f"{cloud.url}/image/v2/images/{image_id}", headers=headers, timeout=30)


def test_a_slow_upload_that_keeps_sending_is_not_reaped(cloud, tmp_path, django_db_blocker):
    """An upload shows it is alive while data comes (here every half second
    of a 2 s stale period), so the reaper leaves it alone however long it
    takes."""
    token = cloud.token()
    headers = {"X-Auth-Token": token}
    image_id = requests.post(f"{cloud.url}/image/v2/images", headers=headers, timeout=30, json={
        "name": unique("alive"), "disk_format": "raw", "container_format": "bare"}).json()["id"]
    server, url = start_api(tmp_path, STRATUS_IMAGE_UPLOAD_STALE_AFTER="2")
    address = urlparse(url)
    pieces = 10
    try:
        with socket.create_connection((address.hostname, address.port)) as connection:
            connection.sendall(
                f"PUT /image/v2/images/{image_id}/file HTTP/1.1\r\nHost: {address.netloc}\r\nX-Auth-Token: {token}"
                f"\r\nContent-Type: application/octet-stream\r\nContent-Length: {pieces * 2**20}\r\n\r\n".encode())
            started = time.monotonic()
            for _ in range(pieces):
                connection.sendall(b"\1" * 2**20)
                time.sleep(0.4)
                if time.monotonic() - started > 3:  # longer than the stale period since the upload began
                    with django_db_blocker.unblock():
                        assert image_id not in reap_stalled_uploads(stale_after=2)
            assert connection.recv(100).startswith(b"HTTP/1.1 204")
        assert status_of(cloud, token, image_id) == "active"
    finally:
        stop([server])
        requests.delete(f"{cloud.url}/image/v2/images/{image_id}", headers=headers, timeout=30)


def test_the_reaper_runs_periodically_on_the_control_queue():
    entry = next(entry for entry in BEAT_SCHEDULE.values() if entry["task"] == reap_task.name)
    assert entry["schedule"].total_seconds() <= settings.IMAGE_UPLOAD_STALE_AFTER
