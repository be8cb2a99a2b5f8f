"""Cinder's admin APIs, with the cloud's admin (and refused to a project
member): snapshot os-reset_status and os-force_delete (and
os-update_snapshot_status, which the owner may use too), os-quota-class-sets (the default class is every
project's defaults, enforced), and os-hosts. The snapshot actions go on
the wire: openstacksdk sends them at microversion 3.65 whatever the cloud
advertises, which a cloud below 3.65 (this one's ceiling is 3.44) refuses
with a 406."""
import pytest

from tests.compute.nodes import wait_until
from tests.volumes.conftest import path, wait_status

pytestmark = pytest.mark.django_db


def snapshot_status(api, who, snapshot_id):
    return api.get(path(who, f"snapshots/{snapshot_id}"), token=who["token"]).json()["snapshot"]


@pytest.fixture
def snapshot(cloud, api, admin, volume_worker):
    volume = cloud.openstack("volume", "create", "--size", "1", "v-snap-admin", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    made = cloud.openstack("volume", "snapshot", "create", "--volume", volume["id"], "s-admin", "-f", "json")
    wait_until(lambda: snapshot_status(api, admin, made["id"])["status"] == "available", timeout=60,
               message="snapshot available")
    yield made
    if api.get(path(admin, f"snapshots/{made['id']}"), token=admin["token"]).status_code == 200:
        api.post(path(admin, f"snapshots/{made['id']}/action"), token=admin["token"], json={"os-force_delete": {}})
    wait_until(lambda: api.get(path(admin, f"snapshots/{made['id']}"), token=admin["token"]).status_code == 404,
               timeout=60, message="snapshot gone")
    cloud.openstack("volume", "delete", volume["id"])


def test_snapshot_reset_and_update_status(cloud, api, admin, demo, snapshot):
    action = path(admin, f"snapshots/{snapshot['id']}/action")
    assert api.post(action, token=admin["token"], json={"os-reset_status": {"status": "error"}}).status_code == 202
    assert snapshot_status(api, admin, snapshot["id"])["status"] == "error"
    bad = api.post(action, token=admin["token"], json={"os-reset_status": {"status": "sleeping"}})
    assert bad.status_code == 400 and "status" in bad.json()["badRequest"]["message"]
    # From error no status update is allowed; from creating, error (with progress) is.
    refused = api.post(action, token=admin["token"], json={"os-update_snapshot_status": {"status": "available"}})
    assert refused.status_code == 400 and "error" in refused.json()["badRequest"]["message"]
    assert api.post(action, token=admin["token"], json={"os-reset_status": {"status": "creating"}}).status_code == 202
    wrong = api.post(action, token=admin["token"], json={"os-update_snapshot_status": {"status": "deleting"}})
    assert wrong.status_code == 400
    updated = api.post(action, token=admin["token"],
                       json={"os-update_snapshot_status": {"status": "error", "progress": "80%"}})
    assert updated.status_code == 202
    shown = snapshot_status(api, admin, snapshot["id"])
    assert shown["status"] == "error" and shown["os-extended-snapshot-attributes:progress"] == "80%"
    unknown = api.post(action, token=admin["token"], json={"os-nap": {}})
    assert unknown.status_code == 400 and "os-nap" in unknown.json()["badRequest"]["message"]


def test_snapshot_admin_actions_are_refused_to_members(cloud, api, admin, demo, volume_worker):
    volume = cloud.openstack("volume", "create", "--size", "1", "v-demo", "-f", "json", cloud="stratus-demo")
    wait_status(cloud, volume["id"], "available", cloud_name="stratus-demo")
    made = cloud.openstack("volume", "snapshot", "create", "--volume", volume["id"], "s-demo", "-f", "json",
                           cloud="stratus-demo")
    wait_until(lambda: snapshot_status(api, demo, made["id"])["status"] == "available", timeout=60,
               message="snapshot available")
    action = path(demo, f"snapshots/{made['id']}/action")
    for body in ({"os-reset_status": {"status": "error"}}, {"os-force_delete": {}}):
        answer = api.post(action, token=demo["token"], json=body)
        assert answer.status_code == 403, body
    # The owner may update the status (as Cinder lets it), here refused only
    # because an available snapshot's status is not one that updates.
    own = api.post(action, token=demo["token"], json={"os-update_snapshot_status": {"status": "error"}})
    assert own.status_code == 400 and "available" in own.json()["badRequest"]["message"]
    # Another project's snapshot is not found.
    foreign = api.post(path(admin, f"snapshots/{made['id']}/action"), token=demo["token"],
                       json={"os-update_snapshot_status": {"status": "error"}})
    assert foreign.status_code == 404
    assert snapshot_status(api, demo, made["id"])["status"] == "available"
    cloud.openstack("volume", "snapshot", "delete", made["id"], cloud="stratus-demo")
    wait_until(lambda: api.get(path(demo, f"snapshots/{made['id']}"), token=demo["token"]).status_code == 404,
               timeout=60, message="snapshot gone")
    cloud.openstack("volume", "delete", volume["id"], cloud="stratus-demo")


def test_snapshot_force_delete_whatever_its_status(cloud, api, admin, snapshot, volume_worker):
    stored = volume_worker.directory / f"snapshot-{snapshot['id']}"
    held = [name for name in volume_worker.files() if snapshot["id"] in name]
    assert held, volume_worker.files()
    action = path(admin, f"snapshots/{snapshot['id']}/action")
    assert api.post(action, token=admin["token"], json={"os-reset_status": {"status": "error_deleting"}}).status_code \
        == 202
    # A plain delete refuses error_deleting; os-force_delete does not.
    cloud.openstack("volume", "snapshot", "delete", snapshot["id"], expect_fail=True)
    assert api.post(action, token=admin["token"], json={"os-force_delete": {}}).status_code == 202
    wait_until(lambda: api.get(path(admin, f"snapshots/{snapshot['id']}"), token=admin["token"]).status_code == 404,
               timeout=60, message="snapshot force-deleted")
    assert not [name for name in volume_worker.files() if snapshot["id"] in name], stored


def quota_class(api, admin, name="default"):
    return api.get(path(admin, f"os-quota-class-sets/{name}"), token=admin["token"])


def test_default_quota_class_sets_every_projects_defaults(cloud, api, admin, demo, volume_worker):
    shown = quota_class(api, admin).json()["quota_class_set"]
    assert shown["id"] == "default" and shown["volumes"] == 10 and shown["backup_gigabytes"] == 1000
    assert shown["volumes___DEFAULT__"] == -1
    original = {key: value for key, value in shown.items() if key != "id"}
    try:
        answer = api.put(path(admin, "os-quota-class-sets/default"), token=admin["token"],
                         json={"quota_class_set": {"volumes": 11, "gigabytes": 1}})
        assert answer.status_code == 200
        body = answer.json()["quota_class_set"]
        assert body["volumes"] == 11 and body["gigabytes"] == 1 and "id" not in body
        defaults = api.get(path(demo, f"os-quota-sets/{demo['project']}/defaults"), token=demo["token"]).json()
        assert defaults["quota_set"]["volumes"] == 11 and defaults["quota_set"]["gigabytes"] == 1
        assert cloud.openstack("quota", "show", "--default", "--volume", "demo", "-f", "json")
        # Enforced for a project with no limit of its own.
        over = api.post(path(demo, "volumes"), token=demo["token"], json={"volume": {"size": 2}})
        assert over.status_code == 413 and "gigabytes" in over.json()["overLimit"]["message"]
        limits = api.get(path(demo, "limits"), token=demo["token"]).json()["limits"]["absolute"]
        assert limits["maxTotalVolumeGigabytes"] == 1 and limits["maxTotalVolumes"] == 11

        for bad in ({"volumes": -2}, {"volumes": "many"}, {"widgets": 3}):
            refused = api.put(path(admin, "os-quota-class-sets/default"), token=admin["token"],
                              json={"quota_class_set": bad})
            assert refused.status_code == 400 and next(iter(bad)) in refused.json()["badRequest"]["message"]
        assert api.get(path(demo, "os-quota-class-sets/default"), token=demo["token"]).status_code == 403
        assert api.put(path(demo, "os-quota-class-sets/default"), token=demo["token"],
                       json={"quota_class_set": {"volumes": 100}}).status_code == 403
        assert quota_class(api, admin).json()["quota_class_set"]["volumes"] == 11
    finally:
        api.put(path(admin, "os-quota-class-sets/default"), token=admin["token"],
                json={"quota_class_set": original})
    assert quota_class(api, admin).json()["quota_class_set"]["gigabytes"] == 1000


def test_hosts_list_and_usage(cloud, api, admin, demo, volume_worker):
    volume = cloud.openstack("volume", "create", "--size", "2", "v-host", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    hosts = api.get(path(admin, "os-hosts"), token=admin["token"]).json()["hosts"]
    [mine] = [host for host in hosts if host["host_name"] == volume_worker.host]
    assert mine["service"] == "cinder-volume" and mine["service-state"] == "enabled"
    assert mine["service-status"] == "available" and mine["zone"] == "nova" and mine["last-update"]
    shown = api.get(path(admin, f"os-hosts/{volume_worker.host}"), token=admin["token"]).json()["host"]
    total, *projects = [row["resource"] for row in shown]
    assert total["project"] == "(total)" and int(total["volume_count"]) >= 1 and int(total["total_volume_gb"]) >= 2
    [own] = [row for row in projects if row["project"] == admin["project"]]
    assert int(own["volume_count"]) >= 1 and isinstance(own["total_snapshot_gb"], str)
    assert api.get(path(admin, "os-hosts/no-such-host@x"), token=admin["token"]).status_code == 404
    assert api.get(path(demo, "os-hosts"), token=demo["token"]).status_code == 403
    assert api.get(path(demo, f"os-hosts/{volume_worker.host}"), token=demo["token"]).status_code == 403
    cloud.openstack("volume", "delete", volume["id"])


def test_services_show_their_cluster_from_3_7(api, admin, volume_worker):
    listed = api.get(path(admin, "os-services"), token=admin["token"]).json()["services"]
    [mine] = [service for service in listed if service["host"] == volume_worker.host]
    assert mine["binary"] == "cinder-volume" and mine["state"] == "up" and "cluster" not in mine
    newer = api.get(path(admin, "os-services"), token=admin["token"],
                    headers={"OpenStack-API-Version": "volume 3.7"}).json()["services"]
    assert [service["cluster"] for service in newer if service["host"] == volume_worker.host] == [None]
    # A node's name finds its back ends' services (host@backend), as in Cinder.
    node = volume_worker.host.split("@")[0]
    by_node = api.get(path(admin, f"os-services?host={node}"), token=admin["token"]).json()["services"]
    assert volume_worker.host in [service["host"] for service in by_node]
    assert api.get(path(admin, f"os-services?host={node}x"), token=admin["token"]).json()["services"] == []


def test_admins_see_the_migration_status(cloud, api, admin, demo, volume_worker):
    volume = api.post(path(demo, "volumes"), token=demo["token"], json={"volume": {"size": 1}}).json()["volume"]
    assert "migration_status" not in volume
    wait_status(cloud, volume["id"], "available", cloud_name="stratus-demo")
    by_admin = api.get(path(admin, f"volumes/{volume['id']}"), token=admin["token"]).json()["volume"]
    assert by_admin["migration_status"] is None and by_admin["os-vol-mig-status-attr:migstat"] is None
    listed = api.get(path(admin, "volumes/detail?all_tenants=1"), token=admin["token"]).json()["volumes"]
    assert [row["migration_status"] for row in listed if row["id"] == volume["id"]] == [None]
    shown = api.get(path(demo, f"volumes/{volume['id']}"), token=demo["token"]).json()["volume"]
    assert "migration_status" not in shown
    cloud.openstack("volume", "delete", volume["id"], cloud="stratus-demo")
