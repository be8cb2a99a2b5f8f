"""The Block Storage v3 API on the wire: version discovery and the
microversion header, the catalog's volumev3 endpoint, paging and filters,
volume types (private access, a back end no worker serves), attachments and
the admin-only actions."""
import pytest

from tests.compute.nodes import wait_until
from tests.volumes.conftest import path, wait_status
from volumes.models import Volume

pytestmark = pytest.mark.django_db


def test_version_discovery_and_microversions(cloud, api, admin):
    root = api.get("/volume/")
    assert root.status_code == 300
    [version] = root.json()["versions"]
    assert version["id"] == "v3.0" and version["min_version"] == "3.0" and version["version"] == "3.44"
    assert version["links"][0]["href"] == f"{cloud.url}/volume/v3/"
    assert api.get("/volume/v3/").json()["versions"] == [version]

    listed = api.get(path(admin, "volumes"), token=admin["token"], headers={"OpenStack-API-Version": "volume 3.27"})
    assert listed.headers["OpenStack-API-Version"] == "volume 3.27"
    latest = api.get(path(admin, "volumes"), token=admin["token"], headers={"OpenStack-API-Version": "volume latest"})
    assert latest.headers["OpenStack-API-Version"] == "volume 3.44"
    assert api.get(path(admin, "volumes"), token=admin["token"]).headers["OpenStack-API-Version"] == "volume 3.0"
    too_new = api.get(path(admin, "volumes"), token=admin["token"], headers={"OpenStack-API-Version": "volume 3.99"})
    assert too_new.status_code == 406
    assert "Minimum is 3.0 and maximum is 3.44" in too_new.json()["computeFault"]["message"]
    bad = api.get(path(admin, "volumes"), token=admin["token"], headers={"OpenStack-API-Version": "volume x"})
    assert bad.status_code == 400 and "badRequest" in bad.json()
    # The messages API starts at 3.3.
    assert api.get(path(admin, "messages"), token=admin["token"]).status_code == 404
    assert api.get(path(admin, "messages"), token=admin["token"],
                   headers={"OpenStack-API-Version": "volume 3.3"}).status_code == 200


def test_the_catalogs_volume_endpoint_is_served(cloud, admin, volume_worker):
    conn = cloud.connect()
    endpoint = conn.block_storage.get_endpoint()
    assert endpoint.rstrip("/") == f"{cloud.url}/volume/v3/{admin['project']}"
    zones = cloud.openstack("availability", "zone", "list", "--volume", "-f", "json")
    assert {"Zone Name": "nova", "Zone Status": "available"}.items() <= zones[0].items()


def test_paging_sorting_and_filters(cloud, api, admin, volume_worker):
    ids = []
    for index in range(3):
        response = api.post(path(admin, "volumes"), token=admin["token"],
                            json={"volume": {"size": 1, "name": f"page-{index}", "metadata": {"n": str(index)}}})
        ids.append(response.json()["volume"]["id"])
    for volume_id in ids:
        wait_status(cloud, volume_id, "available")
    first = api.get(path(admin, "volumes/detail?sort=name:asc&limit=2&name=page-0"), token=admin["token"]).json()
    assert [row["id"] for row in first["volumes"]] == [ids[0]]
    page = api.get(path(admin, "volumes?sort=name:asc&limit=2"), token=admin["token"]).json()
    names = [row["name"] for row in page["volumes"]]
    assert names == ["page-0", "page-1"] and page["volumes_links"][0]["rel"] == "next"
    rest = api.get(page["volumes_links"][0]["href"][len(cloud.url):], token=admin["token"]).json()
    assert [row["name"] for row in rest["volumes"]] == ["page-2"]
    by_metadata = api.get(path(admin, "volumes/detail?metadata={'n': '1'}"), token=admin["token"]).json()
    assert [row["id"] for row in by_metadata["volumes"]] == [ids[1]]
    cloud.openstack("volume", "delete", *ids)


def test_private_type_and_a_back_end_nobody_serves(cloud, api, admin, demo, volume_worker):
    cloud.openstack("volume", "type", "create", "--private", "--property", "volume_backend_name=nowhere", "private-t")
    try:
        assert api.post(path(demo, "volumes"), token=demo["token"],
                        json={"volume": {"size": 1, "volume_type": "private-t"}}).status_code == 404
        cloud.openstack("volume", "type", "set", "--project", "demo", "private-t")
        volume = api.post(path(demo, "volumes"), token=demo["token"],
                          json={"volume": {"size": 1, "volume_type": "private-t"}}).json()["volume"]
        shown = wait_status(cloud, volume["id"], "error", cloud_name="stratus-demo")
        assert shown["type"] == "private-t"
        messages = api.get(path(demo, f"messages?resource_uuid={volume['id']}"), token=demo["token"],
                           headers={"OpenStack-API-Version": "volume 3.3"}).json()["messages"]
        assert "CapabilitiesFilter removed 1" in messages[0]["user_message"]
        in_use = cloud.openstack("volume", "type", "delete", "private-t", expect_fail=True)
        assert "still in use" in in_use.stderr
        cloud.openstack("volume", "delete", volume["id"], cloud="stratus-demo")
        assert not Volume.objects.filter(pk=volume["id"]).exists()
    finally:
        Volume.objects.filter(volume_type__name="private-t").delete()
        cloud.openstack("volume", "type", "delete", "private-t")


def test_attachments_and_legacy_actions(cloud, api, admin, demo, volume_worker):
    headers = {"OpenStack-API-Version": "volume 3.44"}
    volume = api.post(path(admin, "volumes"), token=admin["token"], json={"volume": {"size": 1}}).json()["volume"]
    wait_status(cloud, volume["id"], "available")
    server = "6f1c2a8e-93c1-4ef4-9a43-1a0f1d6a2c11"
    made = api.post(path(admin, "attachments"), token=admin["token"], headers=headers,
                    json={"attachment": {"volume_uuid": volume["id"], "instance_uuid": server}})
    assert made.status_code == 200, made.text
    attachment = made.json()["attachment"]
    assert attachment["status"] == "reserved" and attachment["connection_info"] is None
    assert Volume.objects.get(pk=volume["id"]).status == "reserved"
    updated = api.put(path(admin, f"attachments/{attachment['id']}"), token=admin["token"], headers=headers,
                      json={"attachment": {"connector": {"host": "node-1", "initiator": None}}}).json()["attachment"]
    info = updated["connection_info"]
    assert info["driver_volume_type"] == "file"
    assert info["data"]["device_path"] == str(volume_worker.directory / f"volume-{volume['id']}")
    assert api.post(path(admin, f"attachments/{attachment['id']}/action"), token=admin["token"], headers=headers,
                    json={"os-complete": None}).status_code == 204
    shown = cloud.openstack("volume", "show", volume["id"], "-f", "json")
    assert shown["status"] == "in-use" and shown["attachments"][0]["server_id"] == server
    # Attached: not deleted, not attached again, not reserved by the old actions.
    response = api.delete(path(admin, f"volumes/{volume['id']}"), token=admin["token"])
    assert response.status_code == 400 and "attached" in response.json()["badRequest"]["message"]
    again = api.post(path(admin, "attachments"), token=admin["token"], headers=headers,
                     json={"attachment": {"volume_uuid": volume["id"], "instance_uuid": server}})
    assert again.status_code == 400
    # Another project's attachment is not found.
    assert api.get(path(demo, f"attachments/{attachment['id']}"), token=demo["token"],
                   headers=headers).status_code == 404
    assert api.delete(path(admin, f"attachments/{attachment['id']}"), token=admin["token"],
                      headers=headers).status_code == 200
    assert Volume.objects.get(pk=volume["id"]).status == "available"

    action = path(admin, f"volumes/{volume['id']}/action")
    for body, status in (({"os-reserve": None}, "attaching"),
                         ({"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb"}}, "in-use"),
                         ({"os-begin_detaching": None}, "detaching"), ({"os-detach": {}}, "available")):
        assert api.post(action, token=admin["token"], json=body).status_code == 202, body
        assert Volume.objects.get(pk=volume["id"]).status == status
    cloud.openstack("volume", "delete", volume["id"])
    wait_until(lambda: not Volume.objects.filter(pk=volume["id"]).exists(), timeout=30, message="the delete")


def test_admin_actions_are_for_admins(cloud, api, demo, volume_worker):
    volume = api.post(path(demo, "volumes"), token=demo["token"], json={"volume": {"size": 1}}).json()["volume"]
    wait_status(cloud, volume["id"], "available", cloud_name="stratus-demo")
    action = path(demo, f"volumes/{volume['id']}/action")
    for body in ({"os-reset_status": {"status": "error"}}, {"os-force_delete": {}}):
        response = api.post(action, token=demo["token"], json=body)
        assert response.status_code == 403 and "forbidden" in response.json()
    cloud.openstack("volume", "set", "--state", "error", volume["id"])
    assert Volume.objects.get(pk=volume["id"]).status == "error"
    cloud.openstack("volume", "set", "--bootable", "--read-only", volume["id"], cloud="stratus-demo")
    shown = cloud.openstack("volume", "show", volume["id"], "-f", "json", cloud="stratus-demo")
    assert shown["bootable"] is True and shown["properties"].get("readonly") == "True"
    cloud.openstack("volume", "delete", "--force", volume["id"])
    wait_until(lambda: not Volume.objects.filter(pk=volume["id"]).exists(), timeout=30, message="the delete")
    assert volume_worker.files() == []


def test_limits_services_and_quota_defaults(cloud, api, admin):
    limits = api.get(path(admin, "limits"), token=admin["token"]).json()["limits"]["absolute"]
    assert limits["maxTotalVolumes"] == 10 and "totalGigabytesUsed" in limits
    services = cloud.openstack("volume", "service", "list", "-f", "json")
    assert any(row["Binary"] == "cinder-volume" and row["State"] == "up" for row in services)
    defaults = api.get(path(admin, f"os-quota-sets/{admin['project']}/defaults"), token=admin["token"]).json()
    assert defaults["quota_set"]["volumes"] == 10 and defaults["quota_set"]["gigabytes"] == 1000


def test_where_a_volume_lives_is_shown_to_admins_only(cloud, api, admin, demo, volume_worker):
    """Cinder's policy: the host and migration attributes are for admins,
    the tenant attribute for whoever sees the volume."""
    volume = api.post(path(demo, "volumes"), token=demo["token"], json={"volume": {"size": 1}}).json()["volume"]
    wait_status(cloud, volume["id"], "available", cloud_name="stratus-demo")
    admin_only = {"os-vol-host-attr:host", "os-vol-mig-status-attr:migstat", "os-vol-mig-status-attr:name_id"}
    # The create and update answers carry none of the extensions' attributes (Tempest's schemas refuse them).
    updated = api.put(path(admin, f"volumes/{volume['id']}"), token=admin["token"],
                      json={"volume": {"name": "renamed"}}).json()["volume"]
    for body in (volume, updated):
        assert not (admin_only | {"os-vol-tenant-attr:tenant_id", "volume_image_metadata"}) & body.keys(), body
    shown = api.get(path(demo, f"volumes/{volume['id']}"), token=demo["token"]).json()["volume"]
    listed = api.get(path(demo, "volumes/detail"), token=demo["token"]).json()["volumes"]
    for body in (shown, next(row for row in listed if row["id"] == volume["id"])):
        assert not admin_only & body.keys(), body
        assert body["os-vol-tenant-attr:tenant_id"] == demo["project"]
    by_admin = api.get(path(admin, f"volumes/{volume['id']}"), token=admin["token"]).json()["volume"]
    assert admin_only <= by_admin.keys()
    assert by_admin["os-vol-host-attr:host"].startswith(volume_worker.host)
    by_sdk = cloud.connect("stratus-demo").block_storage.get_volume(volume["id"])
    assert by_sdk.host is None and by_sdk.project_id == demo["project"]
    cloud.openstack("volume", "delete", volume["id"], cloud="stratus-demo")
    wait_until(lambda: not Volume.objects.filter(pk=volume["id"]).exists(), timeout=30, message="the delete")


def test_volume_summary(cloud, api, demo, volume_worker):
    summary = path(demo, "volumes/summary")
    assert api.get(summary, token=demo["token"]).status_code == 404  # 3.12 and later
    before = api.get(summary, token=demo["token"], headers={"OpenStack-API-Version": "volume 3.12"}).json()
    volume = api.post(path(demo, "volumes"), token=demo["token"],
                      json={"volume": {"size": 2, "metadata": {"tier": "gold"}}}).json()["volume"]
    wait_status(cloud, volume["id"], "available", cloud_name="stratus-demo")
    after = api.get(summary, token=demo["token"], headers={"OpenStack-API-Version": "volume 3.12"}).json()
    assert after["volume-summary"]["total_count"] == before["volume-summary"]["total_count"] + 1
    assert after["volume-summary"]["total_size"] == before["volume-summary"]["total_size"] + 2
    assert "metadata" not in after["volume-summary"]
    with_metadata = api.get(summary, token=demo["token"], headers={"OpenStack-API-Version": "volume 3.36"}).json()
    assert "gold" in with_metadata["volume-summary"]["metadata"]["tier"]
    cloud.openstack("volume", "delete", volume["id"], cloud="stratus-demo")
    wait_until(lambda: not Volume.objects.filter(pk=volume["id"]).exists(), timeout=30, message="the delete")


def test_snapshot_bodies_per_call_and_microversion(cloud, api, demo, volume_worker):
    """As Cinder (and Tempest's schemas): the extended attributes on show and
    detail only, group_snapshot_id from 3.14, user_id from 3.41; a snapshot
    of no volume is a 404; an unknown marker a 404."""
    volume = api.post(path(demo, "volumes"), token=demo["token"], json={"volume": {"size": 1}}).json()["volume"]
    wait_status(cloud, volume["id"], "available", cloud_name="stratus-demo")
    snapshots = path(demo, "snapshots")
    extended = {"os-extended-snapshot-attributes:project_id", "os-extended-snapshot-attributes:progress"}
    created = api.post(snapshots, token=demo["token"], json={"snapshot": {"volume_id": volume["id"]}})
    snapshot = created.json()["snapshot"]
    assert created.status_code == 202 and not (extended | {"group_snapshot_id", "user_id"}) & snapshot.keys()
    wait_status(cloud, snapshot["id"], "available", kind="volume snapshot", cloud_name="stratus-demo")
    shown = api.get(f"{snapshots}/{snapshot['id']}", token=demo["token"]).json()["snapshot"]
    assert extended <= shown.keys() and shown["os-extended-snapshot-attributes:project_id"] == demo["project"]
    listed = api.get(snapshots, token=demo["token"]).json()["snapshots"]
    assert not extended & next(row for row in listed if row["id"] == snapshot["id"]).keys()
    detail = api.get(f"{snapshots}/detail", token=demo["token"]).json()["snapshots"]
    assert extended <= next(row for row in detail if row["id"] == snapshot["id"]).keys()
    updated = api.put(f"{snapshots}/{snapshot['id']}", token=demo["token"],
                      json={"snapshot": {"name": "renamed"}}).json()["snapshot"]
    assert updated["name"] == "renamed" and not extended & updated.keys()
    later = api.get(f"{snapshots}/{snapshot['id']}", token=demo["token"],
                    headers={"OpenStack-API-Version": "volume 3.41"}).json()["snapshot"]
    assert later["group_snapshot_id"] is None and later["user_id"]
    second = api.post(snapshots, token=demo["token"], json={"snapshot": {"volume_id": volume["id"], "name": "b"}})
    wait_status(cloud, second.json()["snapshot"]["id"], "available", kind="volume snapshot", cloud_name="stratus-demo")
    # Cinder's offset (after the marker, if any) and its display_name sort key.
    by_name = api.get(snapshots, token=demo["token"], params={"sort": "display_name:asc"}).json()["snapshots"]
    assert [row["name"] for row in by_name] == ["b", "renamed"]
    offset = api.get(snapshots, token=demo["token"], params={"sort": "name:asc", "offset": 1, "limit": 3})
    assert [row["name"] for row in offset.json()["snapshots"]] == ["renamed"]
    assert api.get(snapshots, token=demo["token"], params={"offset": "-1"}).status_code == 400
    cloud.openstack("volume", "snapshot", "delete", second.json()["snapshot"]["id"], cloud="stratus-demo")
    missing = api.post(snapshots, token=demo["token"], json={"snapshot": {"volume_id": None}})
    assert missing.status_code == 404 and "itemNotFound" in missing.json()
    marker = api.get(snapshots, token=demo["token"], params={"marker": "00000000-0000-0000-0000-000000000000"})
    assert marker.status_code == 404 and "itemNotFound" in marker.json()
    cloud.openstack("volume", "snapshot", "delete", snapshot["id"], cloud="stratus-demo")
    gone = [f"{snapshots}/{snapshot['id']}", f"{snapshots}/{second.json()['snapshot']['id']}"]
    wait_until(lambda: not any(api.get(url, token=demo["token"]).ok for url in gone), timeout=30,
               message="the snapshot deletes")
    cloud.openstack("volume", "delete", volume["id"], cloud="stratus-demo")
    wait_until(lambda: not Volume.objects.filter(pk=volume["id"]).exists(), timeout=30, message="the delete")


def test_an_empty_volume_id_is_404(api, demo):
    """GET, PUT and DELETE /volumes/ (Tempest's calls without a volume id)."""
    for method in ("GET", "PUT", "DELETE"):
        response = api.request(method, path(demo, "volumes/"), token=demo["token"],
                               json={"volume": {"name": "x"}} if method == "PUT" else None)
        assert response.status_code == 404 and "itemNotFound" in response.json(), (method, response.text)
    assert api.get(path(demo, "volumes/"), token=None).status_code == 401
    assert "volumes" in api.get(path(demo, "volumes"), token=demo["token"]).json()
