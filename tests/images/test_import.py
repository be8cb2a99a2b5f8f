"""Glance's interoperable import against the live API and a real control
worker: `openstack image create --import` and openstacksdk's stage and
import (glance-direct), and web-download from a local HTTP server that is
an allowed URL only because this module's API server and worker are told
so. Every refused case (outside the allow-list, file://, a redirect out of
it, a body past the quota, a qcow2 with a backing file) leaves the image
queued or records the failure, and nothing in the stores."""
import time
from datetime import timedelta

import openstack
import pytest
import requests
from django.conf import settings
from django.utils import timezone

from images.importing import reap_stalled
from images.models import Image, ImageTask

from tests.compute.pipeline import ControlWorker
from tests.images import disk_files
from tests.images.conftest import fresh_project, make_qcow2, md5_of, start_api, stop, store_files, unique
from tests.images.web_server import serve_files

pytestmark = pytest.mark.live

# The import server's and worker's image quota: what bounds a download.
IMPORT_QUOTA = 8 * 2**20
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def web():
    with serve_files(endless_bytes=4 * IMPORT_QUOTA) as server:
        yield server


importer_worker = []  # the module's control worker (a test kills and restarts it)


@pytest.fixture(scope="module")
def importer(cloud, web, tmp_path_factory):
    """An API server and a control worker that allow downloads from
    {web}/images/ only, with IMPORT_QUOTA per project; the worker also runs
    the imports the module's main API server starts."""
    env = {"STRATUS_IMAGE_IMPORT_ALLOWED_URLS": f"{web.base}/images/",
           "STRATUS_IMAGE_QUOTA_BYTES": str(IMPORT_QUOTA)}
    logs = tmp_path_factory.mktemp("import")
    server, url = start_api(logs, **env)
    worker = ControlWorker(logs / "control.log", **env).start()
    importer_worker.append(worker)
    yield url
    worker.stop()
    stop([server])


@pytest.fixture(scope="module")
def project(cloud):
    with fresh_project(cloud, "import") as made:
        yield made


class Client:
    def __init__(self, url, token):
        self.url, self.headers = f"{url}/image/v2", {"X-Auth-Token": token}

    def __call__(self, method, path, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def new_image(self, disk_format="qcow2"):
        response = self("POST", "/images", json={"name": unique("import"), "disk_format": disk_format,
                                                  "container_format": "bare"})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def show(self, image_id):
        return self("GET", f"/images/{image_id}").json()

    def wait(self, image_id, timeout=60):
        """The image once its import ended (active, or queued with a failure)."""
        deadline = time.monotonic() + timeout
        while True:
            image = self.show(image_id)
            if image["status"] in ("active", "queued") and "os_glance_import_task" not in image:
                return image
            assert time.monotonic() < deadline, f"import of {image_id} still {image['status']}: {image}"
            time.sleep(0.2)

    def tasks(self, image_id):
        response = self("GET", f"/images/{image_id}/tasks")
        assert response.status_code == 200, response.text
        return response.json()["tasks"]

    def web_download(self, image_id, uri):
        return self("POST", f"/images/{image_id}/import", json={"method": {"name": "web-download", "uri": uri}})


@pytest.fixture(scope="module")
def client(importer, project):
    return Client(importer, project["token"])


@pytest.fixture(scope="module")
def main_client(cloud, importer, project):
    """The main API server: no URL allowed, so no web-download."""
    return Client(cloud.url, project["token"])


def staging_files():
    directory = settings.IMAGE_STORE_DIR.parent / "staging"
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def test_info_import_lists_web_download_only_where_urls_are_allowed(main_client, client):
    assert main_client("GET", "/info/import").json()["import-methods"]["value"] == ["glance-direct"]
    assert client("GET", "/info/import").json()["import-methods"]["value"] == ["glance-direct", "web-download"]
    stores = main_client("GET", "/info/stores").json()["stores"]
    assert [store["id"] for store in stores if store.get("default")] == ["file"]

    image_id = main_client.new_image()
    response = main_client.web_download(image_id, "http://127.0.0.1:1/images/x.qcow2")
    assert response.status_code == 400 and "web-download is not enabled" in response.text
    assert main_client.show(image_id)["status"] == "queued"
    assert main_client.tasks(image_id) == []


def test_cli_image_create_import_stages_and_imports(cloud, importer, project, tmp_path):
    disk = make_qcow2(tmp_path / "disk.qcow2", data_bytes=256 * 2**10)
    name = unique("cli-import")
    auth = ["--os-username", project["username"], "--os-password", project["password"],
            "--os-project-name", project["username"], "--os-project-domain-id", "default",
            "--os-user-domain-id", "default"]
    created = cloud.openstack(*auth, "image", "create", "--import", "--file", disk, "--disk-format", "qcow2",
                              "--container-format", "bare", name, "-f", "json")
    client = Client(cloud.url, project["token"])
    image = client.wait(created["id"])
    assert image["status"] == "active", image
    assert image["checksum"] == md5_of(disk) and image["size"] == disk.stat().st_size
    assert image["virtual_size"] == 256 * 2**10 and image["stores"] == "file"
    assert image["os_glance_failed_import"] == "" and image["os_glance_importing_to_stores"] == ""
    [task] = client.tasks(image["id"])
    assert task["status"] == "success" and task["type"] == "api_image_import"
    assert task["input"]["import_req"]["method"]["name"] == "glance-direct"
    assert image["id"] not in staging_files()
    saved = tmp_path / "saved.qcow2"
    cloud.openstack(*auth, "image", "save", "--file", saved, image["id"])
    assert saved.read_bytes() == disk.read_bytes()


def test_sdk_stage_then_glance_direct_import(cloud, importer, project, tmp_path):
    conn = openstack.connect(auth_url=f"{cloud.url}/identity/v3", username=project["username"],
                             password=project["password"], project_name=project["username"],
                             user_domain_id="default", project_domain_id="default")
    disk = make_qcow2(tmp_path / "disk.qcow2", data_bytes=128 * 2**10)
    image = conn.image.create_image(name=unique("sdk-import"), disk_format="qcow2", container_format="bare")
    conn.image.stage_image(image, data=disk.read_bytes())
    assert conn.image.get_image(image).status == "uploading"
    assert image.id in staging_files()
    response = conn.image.import_image(image, method="glance-direct")
    assert response.status_code == 202
    client = Client(cloud.url, conn.auth_token)
    assert client.wait(image.id)["status"] == "active"
    shown = conn.image.get_image(image)
    assert shown.checksum == md5_of(disk)
    [task] = client.tasks(image.id)
    # The task carries the id of the request that started it (Tempest checks it).
    assert task["request_id"] == response.headers["X-Openstack-Request-Id"]
    assert client("GET", f"/tasks/{task['id']}").json()["status"] == "success"
    # Importing again: the image is no longer staged.
    again = client("POST", f"/images/{image.id}/import", json={"method": {"name": "glance-direct"}})
    assert again.status_code == 409 and "staged" in again.text


def test_glance_direct_of_a_qcow2_with_a_backing_file_fails_and_stores_nothing(client, tmp_path):
    host_file = tmp_path / "host-secret"
    host_file.write_bytes(b"HOST-SECRET" * 512)
    backed = disk_files.qcow2_with_backing_file(tmp_path / "backed.qcow2", host_file)
    image_id = client.new_image()
    before = store_files()
    assert client("PUT", f"/images/{image_id}/stage", data=backed.read_bytes(), headers=OCTETS).status_code == 204
    assert client("POST", f"/images/{image_id}/import",
                  json={"method": {"name": "glance-direct"}}).status_code == 202
    image = client.wait(image_id)
    assert image["status"] == "queued" and image["os_glance_failed_import"] == "file"
    assert image["checksum"] is None and "stores" not in image
    [task] = client.tasks(image_id)
    assert task["status"] == "failure" and "backing" in task["message"]
    assert store_files() == before and image_id not in staging_files()


def test_web_download_of_an_allowed_url(client, web, tmp_path):
    disk = make_qcow2(tmp_path / "web.qcow2", data_bytes=300 * 2**10)
    web.routes["/images/web.qcow2"] = ("data", disk.read_bytes())
    # A redirect that stays under the allowed prefix is followed.
    web.routes["/images/latest"] = ("redirect", f"{web.base}/images/web.qcow2")
    image_id = client.new_image()
    response = client.web_download(image_id, f"{web.base}/images/latest")
    assert response.status_code == 202, response.text
    image = client.wait(image_id)
    assert image["status"] == "active", image
    assert image["checksum"] == md5_of(disk) and image["size"] == disk.stat().st_size
    [task] = client.tasks(image_id)
    assert task["status"] == "success" and task["input"]["import_req"]["method"]["uri"].endswith("/latest")
    data = client("GET", f"/images/{image_id}/file")
    assert data.content == disk.read_bytes()


@pytest.mark.parametrize("uri", [
    "{base}/private/disk.qcow2",           # same host, outside the allowed path
    "http://localhost:{port}/images/x",    # another host name
    "https://127.0.0.1:{port}/images/x",   # another scheme
    "file:///etc/passwd",
    "ftp://127.0.0.1/images/x",
    "{base}/images/../private/disk.qcow2",
    "{base}/images/%2e%2e/private/disk.qcow2",
    "http://user:secret@127.0.0.1:{port}/images/x",
])
def test_web_download_outside_the_allow_list_is_a_400_and_changes_nothing(client, web, uri):
    uri = uri.format(base=web.base, port=web.server_address[1])
    web.routes["/private/disk.qcow2"] = ("data", b"secret")
    image_id = client.new_image()
    served = len(web.requests)
    response = client.web_download(image_id, uri)
    assert response.status_code == 400, response.text
    assert "does not pass filtering" in response.json()["message"] or "not a valid" in response.text
    image = client.show(image_id)
    assert image["status"] == "queued" and "os_glance_import_task" not in image
    assert client.tasks(image_id) == [] and len(web.requests) == served


def test_web_download_redirected_out_of_the_allow_list_fails_without_fetching_it(client, web):
    web.routes["/images/moved"] = ("redirect", f"{web.base}/private/disk.qcow2")
    web.routes["/private/disk.qcow2"] = ("data", b"secret")
    image_id = client.new_image()
    before = store_files()
    assert client.web_download(image_id, f"{web.base}/images/moved").status_code == 202
    image = client.wait(image_id)
    assert image["status"] == "queued" and image["os_glance_failed_import"] == "file"
    [task] = client.tasks(image_id)
    assert task["status"] == "failure" and "/private/disk.qcow2" in task["message"]
    assert "does not pass filtering" in task["message"]
    assert "/private/disk.qcow2" not in web.requests
    assert store_files() == before and image_id not in staging_files()


def test_web_download_bigger_than_the_quota_is_cut_off(client, web):
    web.routes["/images/endless.raw"] = ("endless", b"\0" * 2**16)
    web.routes["/images/declared.raw"] = ("data", b"\0" * (IMPORT_QUOTA + 1))
    for path in ("/images/endless.raw", "/images/declared.raw"):
        image_id = client.new_image(disk_format="raw")
        before = store_files()
        assert client.web_download(image_id, web.base + path).status_code == 202
        image = client.wait(image_id)
        assert image["status"] == "queued" and image["os_glance_failed_import"] == "file", image
        [task] = client.tasks(image_id)
        assert task["status"] == "failure" and "quota" in task["message"], task
        assert store_files() == before and image_id not in staging_files()
        # Nothing is held against the quota: a small upload still fits.
        assert client("PUT", f"/images/{image_id}/file", data=b"\0" * 2**20, headers=OCTETS).status_code == 204


def test_import_refusals_name_the_problem(client, web):
    image_id = client.new_image()
    for body, status, words in [
        ({"method": {"name": "glance-direct"}}, 409, "staged"),
        ({"method": {"name": "nothing"}}, 400, "method/name"),
        ({"method": "glance-direct"}, 400, "'method'"),
        ({"method": {"name": "web-download"}}, 400, "method/uri"),
        ({"method": {"name": "glance-direct"}, "stores": ["nowhere"]}, 400, "'stores'"),
        ({"method": {"name": "glance-direct"}, "all_stores": "yes"}, 400, "all_stores"),
        ({"method": {"name": "copy-image"}}, 400, "not enabled"),
    ]:
        response = client("POST", f"/images/{image_id}/import", json=body)
        assert response.status_code == status and words in response.text, (body, response.text)
    assert client.show(image_id)["status"] == "queued"
    # Staging twice: the second is a 409, the first staging stays.
    assert client("PUT", f"/images/{image_id}/stage", data=b"x" * 1024, headers=OCTETS).status_code == 204
    assert client("PUT", f"/images/{image_id}/stage", data=b"y", headers=OCTETS).status_code == 409
    assert client("PUT", f"/images/{image_id}/file", data=b"y", headers=OCTETS).status_code == 409
    assert client.show(image_id)["status"] == "uploading"
    # Deleting a staged image removes its staged data.
    assert client("DELETE", f"/images/{image_id}").status_code == 204
    assert image_id not in staging_files()


def test_another_projects_image_cannot_be_staged_or_imported(client, api, cloud):
    image_id = client.new_image()
    demo = cloud.token("stratus-demo")
    # (The api fixture adds the token to the headers it is given: a copy.)
    for method, path, kwargs in [("PUT", "stage", {"data": b"x", "headers": dict(OCTETS)}),
                                 ("POST", "import", {"json": {"method": {"name": "glance-direct"}}}),
                                 ("GET", "tasks", {})]:
        response = api.request(method, f"/image/v2/images/{image_id}/{path}", token=demo, **kwargs)
        assert response.status_code == 404, response.text
    assert client.show(image_id)["status"] == "queued"


def test_os_glance_properties_are_reserved_to_the_import(client):
    response = client("POST", "/images", json={"name": unique("reserved"), "os_glance_import_task": "mine"})
    assert response.status_code == 403 and "reserved" in response.json()["message"]
    image_id = client.new_image()
    for name in ("os_glance_failed_import", "os_glance_importing_to_stores", "os_glance_anything"):
        response = client("PATCH", f"/images/{image_id}", json=[{"op": "add", "path": f"/{name}", "value": "x"}],
                          headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        assert response.status_code == 403 and "reserved" in response.json()["message"], name
    assert not any(key.startswith("os_glance") for key in client.show(image_id))


def test_a_worker_killed_mid_download_leaves_a_visible_failure_not_a_stuck_image(client, web, django_db_blocker):
    web.routes["/images/slow.raw"] = ("slow", (b"\0" * (2 * 2**20), 0.15))
    image_id = client.new_image(disk_format="raw")
    assert client.web_download(image_id, f"{web.base}/images/slow.raw").status_code == 202
    deadline = time.monotonic() + 60
    while "Downloaded" not in "".join(task["message"] for task in client.tasks(image_id)):
        assert time.monotonic() < deadline, client.tasks(image_id)
        time.sleep(0.2)
    [worker] = importer_worker
    worker.process.kill()
    worker.process.wait(timeout=30)
    assert client.show(image_id)["status"] == "importing"
    time.sleep(1.5)
    with django_db_blocker.unblock():
        assert image_id in reap_stalled(stale_after=1)
    image = client.show(image_id)
    assert image["status"] == "queued" and image["os_glance_failed_import"] == "file"
    assert "os_glance_import_task" not in image
    [task] = client.tasks(image_id)
    assert task["status"] == "failure" and "no worker ran it" in task["message"]
    # The broker hands the killed worker's task to the next worker, which
    # finds it ended and leaves the image as it is; the owner may try again.
    worker.start()
    web.routes["/images/small.raw"] = ("data", b"\1" * 4096)
    assert client.web_download(image_id, f"{web.base}/images/small.raw").status_code == 202
    image = client.wait(image_id)
    assert image["status"] == "active" and image["size"] == 4096
    assert [task["status"] for task in client.tasks(image_id)] == ["failure", "success"]
    assert image_id not in staging_files()


def test_finished_tasks_are_deleted_once_expired(client, django_db_blocker):
    image_id = client.new_image(disk_format="raw")
    staged = client("PUT", f"/images/{image_id}/stage", data=b"\0" * 512, headers=OCTETS)
    assert staged.status_code == 204, staged.text
    assert client("POST", f"/images/{image_id}/import", json={"method": {"name": "glance-direct"}}).status_code == 202
    assert client.wait(image_id)["status"] == "active"
    [task] = client.tasks(image_id)
    with django_db_blocker.unblock():
        reap_stalled()
        assert client.tasks(image_id) == [task]  # 48 hours to go
        ImageTask.objects.filter(pk=task["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
        reap_stalled()
    assert client.tasks(image_id) == []
    assert client("GET", f"/tasks/{task['id']}").status_code == 404


# --- Glance's tasks API: POST /v2/tasks of type import --------------------

def task_body(uri, disk_format="qcow2", **properties):
    return {"type": "import", "input": {"import_from": uri, "import_from_format": disk_format, "image_properties": {
        "name": unique("task"), "disk_format": disk_format, "container_format": "bare", **properties}}}


def wait_task(client, task_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        task = client("GET", f"/tasks/{task_id}").json()
        if task["status"] in ("success", "failure"):
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.2)


def test_sdk_task_import_downloads_an_allowed_url_into_a_new_image(importer, project, web, tmp_path):
    disk = make_qcow2(tmp_path / "task.qcow2", data_bytes=256 * 2**10)
    web.routes["/images/task.qcow2"] = ("data", disk.read_bytes())
    conn = openstack.connect(auth_url=f"{importer}/identity/v3", username=project["username"],
                             password=project["password"], project_name=project["username"],
                             user_domain_id="default", project_domain_id="default",
                             image_endpoint_override=f"{importer}/image/v2")
    body = task_body(f"{web.base}/images/task.qcow2", min_disk=1, os_distro="stratus")
    task = conn.image.create_task(**body)
    assert task.status in ("pending", "processing", "success") and task.type == "import"
    assert task.input == body["input"] and task.owner_id == project["id"]
    task = conn.image.wait_for_task(task, status="success", failures=["failure"], interval=0.3, wait=60)
    assert task.message == "Imported." and task.expires_at
    image = conn.image.get_image(task.result["image_id"])
    assert image.status == "active" and image.disk_format == "qcow2" and image.name == body["input"][
        "image_properties"]["name"]
    assert image.checksum == md5_of(disk) and image.virtual_size == 256 * 2**10 and image.min_disk == 1
    assert image.os_distro == "stratus" and image.owner == project["id"]
    # Listed (without input, result and message, as Glance lists tasks), filtered by type and status.
    listed = [found for found in conn.image.tasks(type="import", status="success") if found.id == task.id]
    assert len(listed) == 1 and listed[0].input is None and listed[0].result is None
    assert all(found.type == "import" for found in conn.image.tasks(type="import"))
    assert conn.image.get_task_schema().properties["type"]["enum"] == ["import", "api_image_import"]
    assert "input" not in conn.image.get_tasks_schema().properties["tasks"]["items"]["properties"]


def test_task_import_that_fails_says_why_and_stores_nothing(client, web):
    before = store_files()
    response = client("POST", "/tasks", json=task_body(f"{web.base}/images/missing.qcow2"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"].endswith(f"/image/v2/tasks/{created['id']}")
    task = wait_task(client, created["id"])
    assert task["status"] == "failure" and "HTTP 404" in task["message"] and task["result"] is None
    image = client.show(task["image_id"])
    assert image["status"] == "queued" and image["os_glance_failed_import"] == "file"
    assert store_files() == before and task["image_id"] not in staging_files()


def test_bad_task_input_is_a_400_naming_the_field_and_creates_nothing(client, web, django_db_blocker):
    good = f"{web.base}/images/task.qcow2"

    def without(name):
        body = task_body(good)
        del body["input"][name]
        return body

    cases = [
        ([], "Invalid input"),
        ({"input": task_body(good)["input"]}, "'type'"),
        ({"type": "import"}, "'input'"),
        ({**task_body(good), "status": "success"}, "'status'"),
        ({**task_body(good), "type": "api_image_import"}, "'type'"),
        ({"type": "import", "input": "x"}, "'input'"),
        (without("import_from"), "'input/import_from'"),
        (without("import_from_format"), "'input/import_from_format'"),
        (without("image_properties"), "'input/image_properties'"),
        (task_body("http://198.51.100.7/images/task.qcow2"), "'input/import_from'"),
        (task_body("file:///etc/passwd"), "'input/import_from'"),
        (task_body(f"{web.base}/elsewhere/task.qcow2"), "'input/import_from'"),
        (task_body(f"{web.base}/images/../secret"), "'input/import_from'"),
        ({"type": "import", "input": {**task_body(good)["input"], "import_from_format": "raw"}},
         "'input/import_from_format'"),
        (task_body(good, disk_format="floppy"), "'input/image_properties/disk_format'"),
        (task_body(good, min_ram="lots"), "'input/image_properties/min_ram'"),
        ({"type": "import", "input": {**task_body(good)["input"], "image_properties": {"disk_format": "qcow2"}}},
         "'input/image_properties'"),
    ]
    with django_db_blocker.unblock():
        counts = (ImageTask.objects.count(), Image.objects.count())
    for body, field in cases:
        response = client("POST", "/tasks", json=body)
        assert response.status_code == 400, (body, response.text)
        assert field in response.json()["message"], (body, response.text)
    with django_db_blocker.unblock():
        assert (ImageTask.objects.count(), Image.objects.count()) == counts
    # A public image is the cloud admin's to make (Glance's 403), and nothing is made either.
    assert client("POST", "/tasks", json=task_body(good, visibility="public")).status_code == 403
    for query, field in (("status=done", "status"), ("type=convert", "type"), ("sort_key=colour", "sort_key"),
                         ("limit=x", "limit"), ("marker=nope", "marker")):
        response = client("GET", f"/tasks?{query}")
        assert response.status_code == 400 and field in response.json()["message"], query
    with django_db_blocker.unblock():
        assert (ImageTask.objects.count(), Image.objects.count()) == counts


def test_tasks_are_paged_and_sorted_and_another_projects_are_404(client, api, cloud, web):
    web.routes["/images/page.raw"] = ("data", b"\2" * 4096)
    made = []
    for _ in range(3):
        response = client("POST", "/tasks", json=task_body(f"{web.base}/images/page.raw", disk_format="raw"))
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
    for task_id in made:
        assert wait_task(client, task_id)["status"] == "success"
    page = client("GET", "/tasks?limit=2&type=import").json()
    assert [task["id"] for task in page["tasks"]] == made[::-1][:2]
    rest = client("GET", page["next"][len("/v2"):]).json()
    assert made[0] in [task["id"] for task in rest["tasks"]]
    oldest_first = client("GET", "/tasks?sort_key=created_at&sort_dir=asc").json()["tasks"]
    created = [task["created_at"] for task in oldest_first]
    assert len(created) > 1 and created == sorted(created)
    # Tasks are removed only by expiry, as Glance's.
    refused = client("DELETE", f"/tasks/{made[0]}")
    assert refused.status_code == 405 and client("GET", f"/tasks/{made[0]}").status_code == 200

    demo = cloud.token("stratus-demo")
    assert api.get(f"/image/v2/tasks/{made[0]}", token=demo).status_code == 404
    assert made[0] not in [task["id"] for task in api.get("/image/v2/tasks", token=demo).json()["tasks"]]
    marker = api.get(f"/image/v2/tasks?marker={made[0]}", token=demo)
    assert marker.status_code == 400 and "marker" in marker.json()["message"]
