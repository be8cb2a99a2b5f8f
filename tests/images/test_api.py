"""The Image API on the wire: discovery, bad input and its answers, data
edge cases (chunked upload, interrupted upload, Range, quota)."""
import hashlib
import http.client
import json
import socket
import time
from urllib.parse import urlparse

import pytest
import requests

from images.models import Image
from tests.images.conftest import SMALL_QUOTA, make_qcow2, md5_of, store_files, unique

pytestmark = pytest.mark.live

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


@pytest.fixture
def token(cloud):
    return cloud.token()


@pytest.fixture
def queued(api, token):
    """A new queued qcow2 image (id), deleted afterwards."""
    response = api.post("/image/v2/images", token=token,
                        json={"name": unique("api"), "disk_format": "qcow2", "container_format": "bare"})
    assert response.status_code == 201, response.text
    image_id = response.json()["id"]
    yield image_id
    api.delete(f"/image/v2/images/{image_id}", token=token)


def status_of(api, token, image_id):
    return api.get(f"/image/v2/images/{image_id}", token=token).json()["status"]


def test_version_discovery_and_info(api, token):
    root = api.get("/image/")
    assert root.status_code == 300
    versions = root.json()["versions"]
    assert versions[0]["status"] == "CURRENT" and versions[0]["links"][0]["href"].endswith("/image/v2/")
    assert api.get("/image").status_code == 300
    assert api.get("/image/v2").json()["versions"] == versions
    stores = api.get("/image/v2/info/stores", token=token).json()["stores"]
    assert {"id": "file", "description": "Local filesystem", "default": True} in stores
    # No URL allowed by default: glance-direct only, no web-download.
    assert api.get("/image/v2/info/import", token=token).json()["import-methods"]["value"] == ["glance-direct"]
    schema = api.get("/image/v2/schemas/image", token=token).json()
    assert schema["name"] == "image" and "qcow2" in schema["properties"]["disk_format"]["enum"]
    assert api.get("/image/v2/schemas/images", token=token).json()["name"] == "images"


def test_upload_to_an_active_image_is_a_conflict(api, token, queued, tmp_path):
    disk = make_qcow2(tmp_path / "disk.qcow2")
    assert api.put(f"/image/v2/images/{queued}/file", token=token, data=disk.read_bytes(),
                   headers={"Content-Type": "application/octet-stream"}).status_code == 204
    again = api.put(f"/image/v2/images/{queued}/file", token=token, data=b"other data",
                    headers={"Content-Type": "application/octet-stream"})
    assert again.status_code == 409
    assert "active to saving" in again.json()["message"]
    image = api.get(f"/image/v2/images/{queued}", token=token).json()
    assert image["checksum"] == md5_of(disk)


def test_chunked_upload_and_range_download(api, token, queued, tmp_path):
    disk = make_qcow2(tmp_path / "disk.qcow2")
    content = disk.read_bytes()

    def chunks():
        for start in range(0, len(content), 100_000):
            yield content[start:start + 100_000]

    response = api.put(f"/image/v2/images/{queued}/file", token=token, data=chunks(),
                       headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 204, response.text
    image = api.get(f"/image/v2/images/{queued}", token=token).json()
    assert image["size"] == len(content)
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(content).hexdigest()

    whole = api.get(f"/image/v2/images/{queued}/file", token=token)
    assert whole.content == content and whole.headers["Content-MD5"] == image["checksum"]
    part = api.get(f"/image/v2/images/{queued}/file", token=token, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == content[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(content)}"
    tail = api.get(f"/image/v2/images/{queued}/file", token=token, headers={"Range": "bytes=-10"})
    assert tail.content == content[-10:]
    outside = api.get(f"/image/v2/images/{queued}/file", token=token,
                      headers={"Range": f"bytes={len(content)}-"})
    assert outside.status_code == 416


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_interrupted_upload_returns_to_queued_and_leaves_nothing(cloud, api, token, queued, tmp_path, framing):
    before = store_files()
    address = urlparse(cloud.url)
    if framing == "length":
        framed = f"Content-Length: {10 * 2**20}\r\n\r\n".encode() + b"x" * 2**20
    else:
        framed = f"Transfer-Encoding: chunked\r\n\r\n{2**20:x}\r\n".encode() + b"x" * 2**20 + b"\r\n"
    with socket.create_connection((address.hostname, address.port)) as connection:
        connection.sendall(
            f"PUT /image/v2/images/{queued}/file HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"X-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\n".encode() + framed)
        deadline = time.monotonic() + 10
        while status_of(api, token, queued) != "saving" and time.monotonic() < deadline:
            time.sleep(0.05)
    # The client is gone after 1 MiB (of the 10 it announced, or without the last chunk).
    deadline = time.monotonic() + 20
    while status_of(api, token, queued) != "queued" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status_of(api, token, queued) == "queued"
    assert store_files() == before
    # ...and the image takes a complete upload afterwards.
    disk = make_qcow2(tmp_path / "disk.qcow2")
    assert api.put(f"/image/v2/images/{queued}/file", token=token, data=disk.read_bytes(),
                   headers={"Content-Type": "application/octet-stream"}).status_code == 204
    assert status_of(api, token, queued) == "active"


def test_data_that_is_not_its_disk_format_is_refused(api, token, queued):
    response = api.put(f"/image/v2/images/{queued}/file", token=token, data=b"not a qcow2" * 1000,
                       headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 400
    assert "disk_format" in response.json()["message"]
    assert status_of(api, token, queued) == "queued"
    assert queued not in store_files()


@pytest.mark.django_db
@pytest.mark.parametrize("body, named", [
    ([{"op": "move", "path": "/name", "value": "x"}], "/name"),
    ([{"op": "replace", "path": "name", "value": "x"}], "name"),
    ([{"op": "replace", "path": "/min_ram", "value": "lots"}], "/min_ram"),
    ([{"op": "add", "path": "/a/b/c", "value": "x"}], "/a/b/c"),
    ([{"op": "replace", "path": "/visibility"}], "/visibility"),
    ({"op": "replace", "path": "/name", "value": "x"}, "JSON array"),
])
def test_malformed_patch_is_a_400_naming_the_path(api, token, queued, body, named):
    response = api.patch(f"/image/v2/images/{queued}", token=token, json=body, headers=PATCH)
    assert response.status_code == 400, response.text
    assert named in response.json()["message"]
    assert Image.objects.get(pk=queued).name.startswith("api-")


def test_patch_answers_as_glance_does(api, token, queued):
    url = f"/image/v2/images/{queued}"
    read_only = api.patch(url, token=token, json=[{"op": "replace", "path": "/status", "value": "active"}],
                          headers=PATCH)
    assert read_only.status_code == 403 and "read-only" in read_only.json()["message"]
    missing = api.patch(url, token=token, json=[{"op": "remove", "path": "/nothing_here"}], headers=PATCH)
    assert missing.status_code == 409
    wrong_type = api.patch(url, token=token, json=[{"op": "add", "path": "/name", "value": "x"}],
                           headers={"Content-Type": "application/json"})
    assert wrong_type.status_code == 415
    # One bad operation: none of them is applied.
    mixed = api.patch(url, token=token, headers=PATCH, json=[
        {"op": "replace", "path": "/name", "value": "renamed"}, {"op": "add", "path": "/min_disk", "value": -1}])
    assert mixed.status_code == 400 and "/min_disk" in mixed.json()["message"]
    assert api.get(url, token=token).json()["name"] != "renamed"


def test_patch_in_the_v20_form_glance_still_takes(api, token, queued):
    """Tempest's image client sends `{"replace": "/name"}` as
    application/openstack-images-v2.0-json-patch; Glance applies it."""
    url, v20 = f"/image/v2/images/{queued}", {"Content-Type": "application/openstack-images-v2.0-json-patch"}
    renamed = api.patch(url, token=token, headers=v20, json=[
        {"replace": "/name", "value": "renamed-v20"}, {"add": "/os_distro", "value": "cirros"}])
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["os_distro"]) == ("renamed-v20", "cirros")
    removed = api.patch(url, token=token, headers=v20, json=[{"remove": "/os_distro"}])
    assert removed.status_code == 200 and "os_distro" not in removed.json()
    both = api.patch(url, token=token, headers=v20, json=[{"add": "/name", "replace": "/name", "value": "x"}])
    assert both.status_code == 400 and '"replace"' in both.json()["message"]
    assert api.get(url, token=token).json()["name"] == "renamed-v20"


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"disk_format": "floppy"}, "disk_format"),
    ({"container_format": "box"}, "container_format"),
    ({"visibility": "everyone"}, "visibility"),
    ({"min_ram": "64"}, "min_ram"),
    ({"name": 12}, "name"),
    ({"tags": "one"}, "tags"),
    ({"os_distro": 7}, "os_distro"),
    ({"id": "not-a-uuid"}, "id"),
])
def test_bad_create_is_a_400_naming_the_field_and_creates_nothing(api, token, body, field):
    name = unique("bad")
    count = Image.objects.count()
    response = api.post("/image/v2/images", token=token, json={"name": name, **body})
    assert response.status_code == 400, response.text
    assert f"'{field}'" in response.json()["message"]
    assert Image.objects.count() == count


def test_read_only_attribute_on_create_is_403(api, token):
    response = api.post("/image/v2/images", token=token, json={"name": unique("ro"), "status": "active"})
    assert response.status_code == 403


def test_deleting_a_protected_image_is_403_until_unprotected(api, token):
    created = api.post("/image/v2/images", token=token, json={"name": unique("protected"), "protected": True})
    image_id = created.json()["id"]
    response = api.delete(f"/image/v2/images/{image_id}", token=token)
    assert response.status_code == 403 and "protected" in response.json()["message"]
    assert api.get(f"/image/v2/images/{image_id}", token=token).status_code == 200
    assert api.patch(f"/image/v2/images/{image_id}", token=token,
                     json=[{"op": "replace", "path": "/protected", "value": False}],
                     headers={"Content-Type": "application/openstack-images-v2.1-json-patch"}).status_code == 200
    assert api.delete(f"/image/v2/images/{image_id}", token=token).status_code == 204


def test_list_rejects_bad_parameters(api, token):
    for query, field in (("limit=x", "limit"), ("sort_key=colour", "sort_key"), ("size_min=big", "size_min"),
                         ("visibility=secret", "visibility"), ("marker=nope", "marker")):
        response = api.get(f"/image/v2/images?{query}", token=token)
        assert response.status_code == 400, query
        assert field in response.json()["message"]


def test_upload_beyond_the_quota_is_413_and_leaves_nothing(api, token, small_quota_url, tmp_path):
    created = requests.post(f"{small_quota_url}/image/v2/images", headers={"X-Auth-Token": token}, timeout=30,
                            json={"name": unique("quota"), "disk_format": "raw", "container_format": "bare"})
    image_id = created.json()["id"]
    try:
        before = store_files()
        big = b"\1" * (SMALL_QUOTA + 2**20)

        # Announced too big: refused before reading.
        response = requests.put(f"{small_quota_url}/image/v2/images/{image_id}/file", data=big, timeout=60,
                                headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"})
        assert response.status_code == 413
        assert "quota" in response.json()["message"]

        # Streamed without a length: stopped once past the quota.
        def chunks():
            for start in range(0, len(big), 2**18):
                yield big[start:start + 2**18]

        response = requests.put(f"{small_quota_url}/image/v2/images/{image_id}/file", data=chunks(), timeout=60,
                                headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"})
        assert response.status_code == 413
        assert store_files() == before
        image = api.get(f"/image/v2/images/{image_id}", token=token).json()
        assert image["status"] == "queued" and image["size"] is None
    finally:
        api.delete(f"/image/v2/images/{image_id}", token=token)


def test_the_connection_of_an_upload_stopped_mid_body_serves_the_next_request(api, token, small_quota_url):
    """The server reads the rest of a refused body before the connection's
    next request: none of the image data is taken for a request."""
    created = requests.post(f"{small_quota_url}/image/v2/images", headers={"X-Auth-Token": token}, timeout=30,
                            json={"name": unique("keepalive"), "disk_format": "raw", "container_format": "bare"})
    image_id = created.json()["id"]
    # Bytes that read as a request line if the server took them for one.
    piece = b"GET /image/v2/images HTTP/1.1\r\n" * (2**18 // 32)
    address = urlparse(small_quota_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    try:
        headers = {"X-Auth-Token": token, "Content-Type": "application/octet-stream"}
        connection.request("PUT", f"/image/v2/images/{image_id}/file", headers=headers, encode_chunked=True,
                           body=(piece for _ in range(SMALL_QUOTA // len(piece) + 8)))
        refused = connection.getresponse()
        assert refused.status == 413 and "quota" in json.loads(refused.read())["message"]
        sock = connection.sock
        connection.request("GET", f"/image/v2/images/{image_id}", headers={"X-Auth-Token": token})
        shown = connection.getresponse()
        assert connection.sock is sock  # the same connection, kept alive
        assert shown.status == 200 and json.loads(shown.read())["status"] == "queued"
    finally:
        connection.close()
        api.delete(f"/image/v2/images/{image_id}", token=token)


def test_another_projects_private_image_is_404_for_every_operation(cloud, api, token, queued):
    demo = cloud.token("stratus-demo")
    api.patch(f"/image/v2/images/{queued}", token=token, headers=PATCH,
              json=[{"op": "replace", "path": "/visibility", "value": "private"}])
    for method, path in (("GET", ""), ("DELETE", ""), ("PUT", "/file"), ("GET", "/file"), ("GET", "/members"),
                         ("PUT", "/tags/x"), ("POST", "/actions/deactivate")):
        response = api.request(method, f"/image/v2/images/{queued}{path}", token=demo)
        assert response.status_code == 404, (method, path, response.text)
    response = api.patch(f"/image/v2/images/{queued}", token=demo, headers=PATCH,
                         json=[{"op": "replace", "path": "/name", "value": "mine"}])
    assert response.status_code == 404


def test_demo_cannot_publicize(cloud, api):
    demo = cloud.token("stratus-demo")
    response = api.post("/image/v2/images", token=demo, json={"name": unique("pub"), "visibility": "public"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_list_query_count_stays_flat(cloud, api, token):
    """The listing costs the same few queries for 1 or 20 images."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIRequestFactory

    from images.api.views import ImageViewSet

    tag = unique("count")
    made = []
    for _ in range(20):
        created = api.post("/image/v2/images", token=token, json={"name": unique("c"), "tags": [tag, "x"]})
        assert created.status_code == 201
        made.append(created.json()["id"])
    view = ImageViewSet.as_view({"get": "list"})
    factory = APIRequestFactory()
    counts = []
    view(factory.get("/image/v2/images?limit=1", HTTP_X_AUTH_TOKEN=token))  # token checks warm their cache
    for limit in (1, 20):
        request = factory.get(f"/image/v2/images?tag={tag}&limit={limit}", HTTP_X_AUTH_TOKEN=token)
        with CaptureQueriesContext(connection) as queries:
            response = view(request)
        assert len(response.data["images"]) == limit
        counts.append(len(queries))
    assert counts[0] == counts[1]
    for image_id in made:
        api.delete(f"/image/v2/images/{image_id}", token=token)


def test_paging_by_name_passes_unnamed_images(api, token):
    """Sorting on a column that may be NULL (images without a name) pages
    through every image once, whichever the direction."""
    tag = unique("unnamed")
    made = [api.post("/image/v2/images", token=token, json={"tags": [tag], **({"name": name} if name else {})})
            .json()["id"] for name in ("b", None, "a", None, "c")]
    try:
        for direction in ("asc", "desc"):
            seen, url = [], f"/image/v2/images?tag={tag}&sort=name:{direction}&limit=2"
            while url:
                page = api.get(url if url.startswith("/image") else "/image" + url, token=token).json()
                seen += [image["id"] for image in page["images"]]
                url = page.get("next")
            assert sorted(seen) == sorted(made), direction
            names = [api.get(f"/image/v2/images/{image_id}", token=token).json()["name"] for image_id in seen]
            expected = ["a", "b", "c", None, None]
            assert names == (expected if direction == "asc" else expected[::-1])
    finally:
        for image_id in made:
            api.delete(f"/image/v2/images/{image_id}", token=token)


def test_data_missing_from_the_store_is_a_503_not_a_500(api, token, queued, tmp_path):
    from django.conf import settings

    disk = make_qcow2(tmp_path / "disk.qcow2")
    api.put(f"/image/v2/images/{queued}/file", token=token, data=disk.read_bytes(),
            headers={"Content-Type": "application/octet-stream"})
    (settings.IMAGE_STORE_DIR / queued).unlink()  # lost behind the API's back
    response = api.get(f"/image/v2/images/{queued}/file", token=token)
    assert response.status_code == 503
    assert "unavailable" in response.json()["message"]
    assert api.delete(f"/image/v2/images/{queued}", token=token).status_code == 204


def test_without_a_token_is_401_in_glance_format(api):
    response = api.get("/image/v2/images")
    assert response.status_code == 401
    assert response.json()["code"] == "401 Unauthorized"


def test_an_empty_image_id_is_404_not_the_list(api, token):
    """GET and DELETE /v2/images/ (Tempest's null-id tests) name no image."""
    for method in (api.get, api.delete):
        response = method("/image/v2/images/", token=token)
        assert response.status_code == 404 and response.json()["code"] == "404 Not Found", response.text
    assert api.get("/image/v2/images/", token=None).status_code == 401
    assert "images" in api.get("/image/v2/images", token=token).json()
