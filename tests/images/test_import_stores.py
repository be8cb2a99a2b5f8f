"""The interoperable import into several stores (Glance's `stores` and
`all_stores`, image API 2.9+): the filesystem store and Ceph RBD on a real
single-node cluster, with an API server and a control worker that both
have the Ceph store enabled."""
import pytest
import requests

from tests.compute.nodes import wait_until
from tests.compute.pipeline import ControlWorker
from tests.images.conftest import make_qcow2, md5_of, start_api, stop, unique
from tests.images.test_stores import rbd_images

pytestmark = pytest.mark.live

OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def ceph_importer(cloud, ceph_conf, tmp_path_factory):
    logs = tmp_path_factory.mktemp("import-stores")
    env = {"STRATUS_IMAGE_RBD_CEPH_CONF": ceph_conf}
    server, url = start_api(logs, **env)
    worker = ControlWorker(logs / "control.log", **env).start()
    yield url
    worker.stop()
    stop([server])


def call(url, token, method, path, **kwargs):
    headers = {"X-Auth-Token": token, **kwargs.pop("headers", {})}
    return requests.request(method, f"{url}/image/v2{path}", headers=headers, timeout=60, **kwargs)


def staged_image(url, token, disk):
    created = call(url, token, "POST", "/images", json={"name": unique("stores"), "disk_format": "qcow2",
                                                        "container_format": "bare"})
    assert created.status_code == 201, created.text
    assert created.headers["OpenStack-image-store-ids"] == "file,ceph"
    image_id = created.json()["id"]
    assert call(url, token, "PUT", f"/images/{image_id}/stage", data=disk.read_bytes(),
                headers=OCTETS).status_code == 204
    return image_id


def wait_imported(url, token, image_id):
    def ended():
        image = call(url, token, "GET", f"/images/{image_id}").json()
        return image if "os_glance_import_task" not in image and image["status"] in ("active", "queued") else None

    wait_until(ended, timeout=120, message=f"the import of {image_id}")
    return ended()


@pytest.mark.parametrize("request_stores, expected", [({"all_stores": True}, "ceph,file"),
                                                      ({"stores": ["ceph"]}, "ceph")])
def test_glance_direct_into_the_stores_asked_for(cloud, ceph_importer, ceph_conf, tmp_path, request_stores, expected):
    token = cloud.token()
    disk = make_qcow2(tmp_path / "disk.qcow2", data_bytes=512 * 2**10)
    stores = call(ceph_importer, token, "GET", "/info/stores").json()["stores"]
    assert sorted(store["id"] for store in stores) == ["ceph", "file"]
    image_id = staged_image(ceph_importer, token, disk)
    response = call(ceph_importer, token, "POST", f"/images/{image_id}/import",
                    json={"method": {"name": "glance-direct"}, **request_stores})
    assert response.status_code == 202, response.text
    image = wait_imported(ceph_importer, token, image_id)
    assert image["status"] == "active" and image["stores"] == expected, image
    assert image["os_glance_failed_import"] == "" and image["checksum"] == md5_of(disk)
    assert image_id in rbd_images(ceph_conf)
    data = call(ceph_importer, token, "GET", f"/images/{image_id}/file")
    assert data.content == disk.read_bytes()
    assert call(ceph_importer, token, "DELETE", f"/images/{image_id}").status_code == 204
    assert image_id not in rbd_images(ceph_conf)
