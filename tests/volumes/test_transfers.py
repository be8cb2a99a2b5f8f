"""Volume transfers (`os-volume-transfer`) through the `openstack` CLI and
on the wire: create (the auth key shown once), list, show, accept by
another project with its quota, delete; a wrong key, another project's
transfer and a volume that is not available are refused."""
import pytest

from tests.compute.nodes import wait_until
from tests.volumes.conftest import path, wait_status

pytestmark = pytest.mark.django_db


def usage(api, admin, project_id):
    quota = api.get(path(admin, f"os-quota-sets/{project_id}?usage=true"), token=admin["token"]).json()["quota_set"]
    return {resource: quota[resource]["in_use"] for resource in ("volumes", "snapshots", "gigabytes")}


def test_create_list_show_accept_by_another_project(cloud, api, admin, demo, volume_worker):
    volume = cloud.openstack("volume", "create", "--size", "2", "v-given", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    snapshot = cloud.openstack("volume", "snapshot", "create", "--volume", volume["id"], "s-given", "-f", "json")
    conn = cloud.connect()
    wait_until(lambda: conn.block_storage.get_snapshot(snapshot["id"]).status == "available", timeout=60,
               message="snapshot available")
    before = usage(api, admin, demo["project"])

    transfer = cloud.openstack("volume", "transfer", "request", "create", "--name", "t-1", volume["id"], "-f", "json")
    assert transfer["volume_id"] == volume["id"] and len(transfer["auth_key"]) == 16
    assert cloud.openstack("volume", "show", volume["id"], "-f", "json")["status"] == "awaiting-transfer"
    listed = cloud.openstack("volume", "transfer", "request", "list", "-f", "json")
    assert [row["Name"] for row in listed if row["ID"] == transfer["id"]] == ["t-1"]
    shown = cloud.openstack("volume", "transfer", "request", "show", transfer["id"], "-f", "json")
    assert shown["volume_id"] == volume["id"] and "auth_key" not in shown and shown["created_at"]
    # Another project neither lists nor sees it, and cannot delete it.
    assert api.get(path(demo, "os-volume-transfer"), token=demo["token"]).json()["transfers"] == []
    assert api.get(path(demo, f"os-volume-transfer/{transfer['id']}"), token=demo["token"]).status_code == 404
    assert api.delete(path(demo, f"os-volume-transfer/{transfer['id']}"), token=demo["token"]).status_code == 404
    # An awaiting volume is not deleted.
    cloud.openstack("volume", "delete", volume["id"], expect_fail=True)

    wrong = api.post(path(demo, f"os-volume-transfer/{transfer['id']}/accept"), token=demo["token"],
                     json={"accept": {"auth_key": "0" * 16}})
    assert wrong.status_code == 400 and "auth key" in wrong.json()["badRequest"]["message"]
    assert cloud.openstack("volume", "show", volume["id"], "-f", "json")["status"] == "awaiting-transfer"

    accepted = cloud.openstack("volume", "transfer", "request", "accept", "--auth-key", transfer["auth_key"],
                               transfer["id"], "-f", "json", cloud="stratus-demo")
    assert accepted["id"] == transfer["id"] and accepted["volume_id"] == volume["id"]
    taken = wait_status(cloud, volume["id"], "available", cloud_name="stratus-demo")
    assert taken["user_id"] == demo["user"] and taken["os-vol-tenant-attr:tenant_id"] == demo["project"]
    demo_snapshots = cloud.openstack("volume", "snapshot", "list", "-f", "json", cloud="stratus-demo")
    assert [row["ID"] for row in demo_snapshots] == [snapshot["id"]]
    # The volume, its snapshot and their gigabytes are the receiving project's now.
    after = usage(api, admin, demo["project"])
    assert after["volumes"] == before["volumes"] + 1 and after["snapshots"] == before["snapshots"] + 1
    assert after["gigabytes"] == before["gigabytes"] + 4
    # The giving project sees it no more; the transfer is gone.
    assert api.get(path(admin, f"volumes/{volume['id']}"), token=demo["token"]).status_code == 404
    assert api.get(path(admin, f"os-volume-transfer/{transfer['id']}"), token=admin["token"]).status_code == 404
    again = api.post(path(demo, f"os-volume-transfer/{transfer['id']}/accept"), token=demo["token"],
                     json={"accept": {"auth_key": transfer["auth_key"]}})
    assert again.status_code == 404

    cloud.openstack("volume", "snapshot", "delete", snapshot["id"], cloud="stratus-demo")
    wait_until(lambda: api.get(path(demo, f"snapshots/{snapshot['id']}"), token=demo["token"]).status_code == 404,
               timeout=60, message="snapshot deleted")
    cloud.openstack("volume", "delete", volume["id"], cloud="stratus-demo")


def test_create_list_delete_gives_the_volume_back(cloud, api, admin, volume_worker):
    volume = cloud.openstack("volume", "create", "--size", "1", "v-kept", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    transfer = cloud.openstack("volume", "transfer", "request", "create", volume["id"], "-f", "json")
    # One transfer at a time: the volume is no longer available.
    again = api.post(path(admin, "os-volume-transfer"), token=admin["token"],
                     json={"transfer": {"volume_id": volume["id"]}})
    assert again.status_code == 400 and "awaiting-transfer" in again.json()["badRequest"]["message"]
    detail = api.get(path(admin, "os-volume-transfer/detail"), token=admin["token"]).json()["transfers"]
    assert {"id", "name", "volume_id", "links", "created_at"} == set(
        next(row for row in detail if row["id"] == transfer["id"]))
    cloud.openstack("volume", "transfer", "request", "delete", transfer["id"])
    assert wait_status(cloud, volume["id"], "available")["status"] == "available"
    assert transfer["id"] not in [row["ID"] for row in cloud.openstack("volume", "transfer", "request", "list",
                                                                         "-f", "json")]
    cloud.openstack("volume", "delete", volume["id"])


def test_bad_transfer_requests_are_4xx(cloud, api, admin, demo, volume_worker):
    unknown = api.post(path(admin, "os-volume-transfer"), token=admin["token"],
                       json={"transfer": {"volume_id": "00000000-0000-0000-0000-000000000000"}})
    assert unknown.status_code == 404 and "itemNotFound" in unknown.json()
    not_an_id = api.post(path(admin, "os-volume-transfer"), token=admin["token"], json={"transfer": {"volume_id": 5}})
    assert not_an_id.status_code == 400 and "volume_id" in not_an_id.json()["badRequest"]["message"]
    no_body = api.post(path(admin, "os-volume-transfer"), token=admin["token"], json={})
    assert no_body.status_code == 400 and "transfer" in no_body.json()["badRequest"]["message"]
    # Another project's volume cannot be offered.
    volume = cloud.openstack("volume", "create", "--size", "1", "v-admins", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    foreign = api.post(path(demo, "os-volume-transfer"), token=demo["token"],
                       json={"transfer": {"volume_id": volume["id"]}})
    assert foreign.status_code == 404
    assert cloud.openstack("volume", "show", volume["id"], "-f", "json")["status"] == "available"
    no_key = api.post(path(demo, "os-volume-transfer/00000000-0000-0000-0000-000000000000/accept"),
                      token=demo["token"], json={"accept": {}})
    assert no_key.status_code == 400 and "auth_key" in no_key.json()["badRequest"]["message"]
    cloud.openstack("volume", "delete", volume["id"])
