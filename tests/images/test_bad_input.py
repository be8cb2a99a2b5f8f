"""Malformed list filters, dates and sort values, and strings PostgreSQL
cannot store, are Glance's 400 naming the field, never a 500."""
import pytest

from tests.images.conftest import unique

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def token(cloud):
    return cloud.token()


@pytest.mark.parametrize("query, field", [
    ("changes-since=2020-13-01T00:00:00", "changes-since"),
    ("created_at=gt:2020-13-01T00:00:00", "created_at"),
    ("updated_at=lte:2020-02-30T00:00:00", "updated_at"),
    ("created_at=gt:2020-01-01T25:00:00", "created_at"),
    ("sort=name:up", "sort_dir"),
    ("sort=,", "sort_key"),
    ("sort_dir=sideways", "sort_dir"),
    ("limit=-1", "limit"),
    ("protected=perhaps", "protected"),
    ("os_hidden=perhaps", "os_hidden"),
    ("member_status=maybe", "member_status"),
    ("name=a%00b", "name"),
    ("id=in:a,%00", "id"),
    ("os_distro=de%00bian", "os_distro"),
    ("marker=%00", "marker"),
    ("tag=x%00", "tag"),
    ("checksum=in:,", "checksum"),
])
def test_malformed_list_parameter_is_a_400(api, token, query, field):
    response = api.get(f"/image/v2/images?{query}", token=token)
    assert response.status_code == 400, (query, response.status_code, response.text[:300])
    body = response.json()
    assert body["code"] == "400 Bad Request" and field in body["message"], body


@pytest.mark.parametrize("path, field", [
    ("/image/v2/images/a%00b", "image_id"),
    ("/image/v2/images/a%00b/members", "image_id"),
])
def test_nul_in_a_path_is_a_400(api, token, path, field):
    response = api.get(path, token=token)
    assert response.status_code == 400, response.text[:300]
    assert field in response.json()["message"]


def test_changes_since_filters_on_the_update_time(api, token):
    created = api.post("/image/v2/images", token=token, json={"name": "changes-since-probe"}).json()
    try:
        since = created["updated_at"]
        listed = api.get(f"/image/v2/images?changes-since={since}", token=token).json()["images"]
        assert created["id"] in [image["id"] for image in listed]
        later = api.get("/image/v2/images?changes-since=2999-01-01T00:00:00Z", token=token).json()["images"]
        assert later == []
    finally:
        api.delete(f"/image/v2/images/{created['id']}", token=token)


@pytest.mark.parametrize("body, field", [
    ({"name": "a\x00b"}, "name"),
    ({"os_distro": "deb\x00ian"}, "os_distro"),
    ({"tags": ["ok", "bad\x00"]}, "tags"),
    ({"bad\x00key": "value"}, "badkey"),
])
def test_nul_character_in_a_new_image_is_a_400_and_creates_nothing(api, token, body, field):
    name = unique("nul")
    response = api.post("/image/v2/images", token=token, json={"name": name, **body} if "name" not in body else body)
    assert response.status_code == 400, response.text[:300]
    assert f"'{field}'" in response.json()["message"]
    assert api.get(f"/image/v2/images?name={name}", token=token).json()["images"] == []


@pytest.mark.parametrize("operation, field", [
    ({"op": "add", "path": "/os_distro", "value": "deb\x00ian"}, "/os_distro"),
    ({"op": "add", "path": "/bad\x00key", "value": "value"}, "/badkey"),
    ({"op": "replace", "path": "/name", "value": "a\x00b"}, "/name"),
])
def test_nul_character_in_a_patch_is_a_400_and_changes_nothing(api, token, operation, field):
    created = api.post("/image/v2/images", token=token, json={"name": unique("nul-patch")}).json()
    try:
        response = api.patch(f"/image/v2/images/{created['id']}", token=token, json=[operation], headers=PATCH)
        assert response.status_code == 400, response.text[:300]
        assert f"'{field}'" in response.json()["message"]
        assert api.get(f"/image/v2/images/{created['id']}", token=token).json()["name"] == created["name"]
    finally:
        api.delete(f"/image/v2/images/{created['id']}", token=token)


def test_nul_character_in_a_member_is_a_400(api, token):
    created = api.post("/image/v2/images", token=token, json={"name": unique("nul-member")}).json()
    try:
        response = api.post(f"/image/v2/images/{created['id']}/members", token=token, json={"member": "a\x00b"})
        assert response.status_code == 400, response.text[:300]
        assert "'member'" in response.json()["message"]
        assert api.get(f"/image/v2/images/{created['id']}/members", token=token).json()["members"] == []
    finally:
        api.delete(f"/image/v2/images/{created['id']}", token=token)


def test_without_a_token_a_nul_character_is_still_401(api):
    assert api.get("/image/v2/images?name=a%00b").status_code == 401
