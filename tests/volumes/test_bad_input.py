"""Bad requests get Cinder's error bodies ({"badRequest": ...}, itemNotFound,
overLimit 413 naming the quota), never a 500, and leave nothing behind: no
row, no file on the back end."""
import pytest

from tests.compute.nodes import wait_until
from tests.volumes.conftest import wait_status
from volumes.models import Volume

pytestmark = pytest.mark.django_db


def create(api, who, body, **headers):
    return api.post(f"/volume/v3/{who['project']}/volumes", token=who["token"], json={"volume": body},
                    headers=headers)


def fault(response, status, kind):
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == [kind], body
    assert body[kind]["code"] == status
    return body[kind]["message"]


def test_size_zero_or_not_a_number_is_a_400_naming_the_size(api, admin, volume_worker):
    before = Volume.objects.count()
    for size in (0, -1, "many", None):
        message = fault(create(api, admin, {"size": size, "name": "bad-size"}), 400, "badRequest")
        assert "size" in message
    assert Volume.objects.count() == before
    assert volume_worker.files() == []


def test_unknown_type_or_zone_is_refused(api, admin, volume_worker):
    message = fault(create(api, admin, {"size": 1, "volume_type": "no-such-type"}), 404, "itemNotFound")
    assert message == "Volume type with name no-such-type could not be found."
    message = fault(create(api, admin, {"size": 1, "availability_zone": "moon"}), 400, "badRequest")
    assert "Availability zone 'moon' is invalid" in message
    assert volume_worker.files() == []


def test_over_quota_is_a_413_naming_the_quota(cloud, api, demo, volume_worker):
    cloud.openstack("quota", "set", "--gigabytes", "3", "--volumes", "2", "demo")
    try:
        message = fault(create(api, demo, {"size": 4}), 413, "overLimit")
        assert "gigabytes" in message and "Requested 4G, quota is 3G" in message
        first = create(api, demo, {"size": 1}).json()["volume"]
        second = create(api, demo, {"size": 1}).json()["volume"]
        message = fault(create(api, demo, {"size": 1}), 413, "overLimit")
        assert "quota 'volumes'" in message
        quota = cloud.openstack("quota", "show", "--usage", "demo", "-f", "json")
        volumes_row = [row for row in quota if row["Resource"] == "volumes"][0]
        assert volumes_row["In Use"] == 2 and volumes_row["Limit"] == 2
    finally:
        cloud.openstack("quota", "set", "--gigabytes", "1000", "--volumes", "10", "demo")
    for volume in (first, second):
        wait_status(cloud, volume["id"], "available", cloud_name="stratus-demo")
        cloud.openstack("volume", "delete", volume["id"], cloud="stratus-demo")


def test_shrink_and_delete_with_snapshots_are_400s(cloud, api, admin, volume_worker):
    volume = create(api, admin, {"size": 2, "name": "shrink-me"}).json()["volume"]
    wait_status(cloud, volume["id"], "available")
    action = f"/volume/v3/{admin['project']}/volumes/{volume['id']}/action"
    message = fault(api.post(action, token=admin["token"], json={"os-extend": {"new_size": 1}}), 400, "badRequest")
    assert "New size for extend must be greater than current size. (current: 2, extended: 1)" in message

    snapshot = cloud.openstack("volume", "snapshot", "create", "--volume", volume["id"], "s", "-f", "json")
    wait_status(cloud, snapshot["id"], "available", kind="volume snapshot")
    response = api.delete(f"/volume/v3/{admin['project']}/volumes/{volume['id']}", token=admin["token"])
    assert "have snapshots" in fault(response, 400, "badRequest")
    assert Volume.objects.get(pk=volume["id"]).status == "available"
    response = api.delete(f"/volume/v3/{admin['project']}/volumes/{volume['id']}?cascade=true", token=admin["token"])
    assert response.status_code == 202, response.text
    wait_until(lambda: volume_worker.files() == [], timeout=60, message="the files to go")
    assert not Volume.objects.filter(pk=volume["id"]).exists()


def test_another_projects_volume_is_404(cloud, api, admin, demo, volume_worker):
    volume = create(api, admin, {"size": 1, "name": "admins"}).json()["volume"]
    wait_status(cloud, volume["id"], "available")
    own_path = f"/volume/v3/{demo['project']}/volumes/{volume['id']}"
    message = fault(api.get(own_path, token=demo["token"]), 404, "itemNotFound")
    assert message == f"Volume {volume['id']} could not be found."
    fault(api.delete(own_path, token=demo["token"]), 404, "itemNotFound")
    fault(api.post(own_path + "/action", token=demo["token"], json={"os-extend": {"new_size": 5}}), 404,
          "itemNotFound")
    # The admin project's path itself is not the demo user's.
    fault(api.get(f"/volume/v3/{admin['project']}/volumes", token=demo["token"]), 404, "itemNotFound")
    failed = cloud.openstack("volume", "show", volume["id"], cloud="stratus-demo", expect_fail=True)
    assert "No Volume found" in failed.stderr
    listed = api.get(f"/volume/v3/{demo['project']}/volumes", token=demo["token"]).json()["volumes"]
    assert volume["id"] not in [row["id"] for row in listed]
    # Nor is its id a position in the demo user's list (Cinder looks the marker up in the project).
    fault(api.get(f"/volume/v3/{demo['project']}/volumes", token=demo["token"], params={"marker": volume["id"]}),
          404, "itemNotFound")
    cloud.openstack("volume", "delete", volume["id"])


def test_unknown_action_and_bad_bodies_are_400s(api, admin, volume_worker):
    path = f"/volume/v3/{admin['project']}/volumes"
    for body in ([], "text", {"volume": []}, {"volume": {"size": 1, "metadata": {"k": 5}}}):
        assert api.post(path, token=admin["token"], json=body).status_code == 400
    missing = f"{path}/00000000-0000-0000-0000-000000000000/action"
    assert fault(api.post(missing, token=admin["token"], json={"os-fly": {}}), 400,
                 "badRequest") == "There is no such action: os-fly"
    fault(api.post(missing, token=admin["token"], json={"os-extend": {"new_size": 2}}), 404, "itemNotFound")
    fault(api.post(missing, token=admin["token"], json={"os-extend": {}, "os-detach": {}}), 400, "badRequest")
    fault(api.get(f"{path}?sort=nope:asc", token=admin["token"]), 400, "badRequest")
    fault(api.get(f"{path}?limit=x", token=admin["token"]), 400, "badRequest")
    fault(api.get(f"{path}?marker=nope", token=admin["token"]), 404, "itemNotFound")  # Cinder: MarkerNotFound
