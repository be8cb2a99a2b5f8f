"""Parallel uploads of one project never store more than its image quota:
each upload reserves its bytes under the project's lock when it starts,
not only once its size is known."""
import socket
import threading
from urllib.parse import urlparse

import pytest
import requests

from tests.images.conftest import SMALL_QUOTA, fresh_project, start_api, stop, store_files, unique

pytestmark = pytest.mark.live

UPLOADS = 8
UPLOAD_BYTES = 2**20  # two of them fill SMALL_QUOTA


@pytest.fixture(scope="module")
def quota_server(cloud, tmp_path_factory):
    """An API server with the small quota that serves every upload at once."""
    server, url = start_api(tmp_path_factory.mktemp("quota-race"), threads=UPLOADS + 2,
                            STRATUS_IMAGE_QUOTA_BYTES=str(SMALL_QUOTA))
    yield url
    stop([server])


@pytest.fixture(scope="module")
def fresh_project_token(cloud):
    """A token of a member of a new project (no image data yet)."""
    with fresh_project(cloud, "quota-race") as project:
        yield project["token"], project["id"]


def read_response(connection):
    """(status, body text) of one HTTP/1.1 response on a socket."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), body.decode(errors="replace")


def framed(data, chunked):
    """The body as sent: as it is (Content-Length), or as one HTTP chunk."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_parallel_uploads_never_pass_the_quota(quota_server, fresh_project_token, framing):
    """With Content-Length each upload reserves its length at once: exactly
    the two that fit are stored. Chunked, an upload reserves as its data
    comes (taking what room is left): at least one is stored, never more
    than fit."""
    token, project_id = fresh_project_token
    headers = {"X-Auth-Token": token}
    image_ids = [requests.post(f"{quota_server}/image/v2/images", headers=headers, timeout=30, json={
        "name": unique("race"), "disk_format": "raw", "container_format": "bare"}).json()["id"]
        for _ in range(UPLOADS)]
    address = urlparse(quota_server)
    half = UPLOAD_BYTES // 2
    # Every upload is under way (half its data sent) before any sends the rest.
    all_started = threading.Barrier(UPLOADS, timeout=60)
    results = {}
    before = store_files()

    chunked = framing == "chunked"

    def upload(image_id):
        data = bytes([len(results) % 251]) * UPLOAD_BYTES
        length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {UPLOAD_BYTES}"
        with socket.create_connection((address.hostname, address.port), timeout=60) as connection:
            connection.sendall(
                f"PUT /image/v2/images/{image_id}/file HTTP/1.1\r\nHost: {address.netloc}\r\n"
                f"X-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\n"
                f"{length}\r\nConnection: close\r\n\r\n".encode() + framed(data[:half], chunked))
            all_started.wait()
            try:
                connection.sendall(framed(data[half:], chunked) + (b"0\r\n\r\n" if chunked else b""))
            except OSError:
                pass  # refused already, without reading the rest
            results[image_id] = read_response(connection)

    threads = [threading.Thread(target=upload, args=(image_id,)) for image_id in image_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        statuses = sorted(status for status, _ in results.values())
        stored_count = statuses.count(204)
        assert stored_count in ((1, 2) if chunked else (2,)), results
        assert statuses == [204] * stored_count + [413] * (UPLOADS - stored_count), results
        for status, body in results.values():
            if status == 413:
                assert "exceeds the quota" in body
        images = [requests.get(f"{quota_server}/image/v2/images/{image_id}", headers=headers, timeout=30).json()
                  for image_id in image_ids]
        stored = sum(image["size"] or 0 for image in images)
        assert stored <= SMALL_QUOTA
        assert sorted(image["status"] for image in images) == (
            ["active"] * stored_count + ["queued"] * (UPLOADS - stored_count))
        assert len(set(store_files()) - set(before)) == stored_count
    finally:
        for image_id in image_ids:
            requests.delete(f"{quota_server}/image/v2/images/{image_id}", headers=headers, timeout=30)
