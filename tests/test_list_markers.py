"""Another project's id is no position in a list: a member who pages with
the id of a server, image, network or volume they cannot see gets the
service's marker-not-found error (as if the id did not exist), never the
page after it, which would tell where that resource sorts. The owner pages
from the same id as usual. (Block Storage's lists: tests/volumes/test_bad_input.py.)"""
import io
import uuid

import pytest

from compute.models import Instance
from tests.compute.pipeline import live_db  # noqa: F401  (fixture: committed rows the server sees)

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def who(cloud):
    found = {}
    for name, cloud_name in (("admin", "stratus"), ("demo", "stratus-demo")):
        conn = cloud.connect(cloud_name)
        found[name] = {"token": conn.auth_token, "project": conn.current_project_id}
    return found


def test_a_member_cannot_page_from_another_projects_ids(live_db, cloud, api, who):
    admin, demo = who["admin"], who["demo"]
    server = Instance.objects.create(name=f"marker-{uuid.uuid4().hex[:6]}", project_id=admin["project"],
                                     user_id="u", flavor_id_at_boot="42", flavor_name="m1.nano", vcpus=1,
                                     memory_mb=128, root_gb=1)
    image = api.post("/image/v2/images", token=admin["token"], json={
        "name": "marker-image", "disk_format": "raw", "container_format": "bare", "visibility": "private"}).json()
    api.request("PUT", f"/image/v2/images/{image['id']}/file", token=admin["token"], data=io.BytesIO(b"x" * 512),
                headers={"Content-Type": "application/octet-stream"})
    network = api.post("/network/v2.0/networks", token=admin["token"],
                       json={"network": {"name": "marker-net"}}).json()["network"]
    lists = [
        ("/compute/v2.1/servers", str(server.pk), 400),
        ("/image/v2/images", image["id"], 400),
        ("/network/v2.0/networks", network["id"], 400),
    ]
    try:
        for path, marker, status in lists:
            refused = api.get(path, token=demo["token"], params={"marker": marker, "limit": 5})
            assert refused.status_code == status, (path, refused.text)
            assert marker in refused.text
            assert api.get(path, token=admin["token"], params={"marker": marker}).status_code == 200, path
    finally:
        Instance.objects.filter(pk=server.pk).delete()
        api.delete(f"/image/v2/images/{image['id']}", token=admin["token"])
        api.delete(f"/network/v2.0/networks/{network['id']}", token=admin["token"])
