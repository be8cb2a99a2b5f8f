"""Malformed list filters, dates and sort values are Glance's 400 naming
the field, never a 500. (Text no database column can hold, a NUL
character, is refused for every service in cloud/, see tests/test_fuzz.py.)"""
import pytest

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
    ("checksum=in:,", "checksum"),
])
def test_malformed_list_parameter_is_a_400(api, token, query, field):
    response = api.get(f"/image/v2/images?{query}", token=token)
    assert response.status_code == 400, (query, response.status_code, response.text[:300])
    body = response.json()
    assert body["code"] == "400 Bad Request" and field in body["message"], body


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
