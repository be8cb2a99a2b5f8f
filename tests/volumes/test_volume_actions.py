"""Volume actions Tempest's volume API tests use, on the wire as Cinder's
and through the `openstack` CLI: the read-only flag shown in the
metadata once set, the image metadata a volume carries (set, show,
unset), and the extensions list naming what is served."""
import pytest

from tests.volumes.conftest import path, wait_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def volume(cloud, volume_worker):
    made = cloud.openstack("volume", "create", "--size", "1", "--property", "team=a", "v-actions", "-f", "json")
    wait_status(cloud, made["id"], "available")
    yield made
    cloud.openstack("volume", "delete", made["id"])


def test_readonly_flag_shows_in_the_metadata_once_set(cloud, api, admin, volume):
    shown = api.get(path(admin, f"volumes/{volume['id']}"), token=admin["token"]).json()["volume"]
    assert shown["metadata"] == {"team": "a"}
    cloud.openstack("volume", "set", "--read-only", volume["id"])
    assert cloud.openstack("volume", "show", volume["id"], "-f", "json")["properties"] == {
        "team": "a", "readonly": "True"}
    cloud.openstack("volume", "set", "--read-write", volume["id"])
    # Cleared, the flag is still shown, as "False" (Cinder keeps it in the admin metadata).
    shown = api.get(path(admin, f"volumes/{volume['id']}"), token=admin["token"]).json()["volume"]
    assert shown["metadata"] == {"team": "a", "readonly": "False"}
    listed = api.get(path(admin, "volumes/detail"), token=admin["token"]).json()["volumes"]
    assert [row["metadata"] for row in listed if row["id"] == volume["id"]] == [{"team": "a", "readonly": "False"}]
    bad = api.post(path(admin, f"volumes/{volume['id']}/action"), token=admin["token"],
                   json={"os-update_readonly_flag": {"readonly": "maybe"}})
    assert bad.status_code == 400 and "readonly" in bad.json()["badRequest"]["message"]


def test_image_metadata_set_show_unset(cloud, api, admin, demo, volume):
    action = path(admin, f"volumes/{volume['id']}/action")
    cloud.openstack("volume", "set", "--image-property", "kernel_id=k-1", "--image-property", "ramdisk_id=r-1",
                    volume["id"])
    shown = cloud.openstack("volume", "show", volume["id"], "-f", "json")
    assert {"kernel_id": "k-1", "ramdisk_id": "r-1"}.items() <= shown["volume_image_metadata"].items()
    answer = api.post(action, token=admin["token"], json={"os-set_image_metadata": {"metadata": {"image_name": "x"}}})
    assert answer.status_code == 200
    assert answer.json()["metadata"] == {"kernel_id": "k-1", "ramdisk_id": "r-1", "image_name": "x"}
    assert api.post(action, token=admin["token"], json={"os-show_image_metadata": None}).json()["metadata"] == {
        "kernel_id": "k-1", "ramdisk_id": "r-1", "image_name": "x"}

    cloud.openstack("volume", "unset", "--image-property", "ramdisk_id", volume["id"])
    shown = api.get(path(admin, f"volumes/{volume['id']}"), token=admin["token"]).json()["volume"]
    assert shown["volume_image_metadata"] == {"kernel_id": "k-1", "image_name": "x"}
    missing = api.post(action, token=admin["token"], json={"os-unset_image_metadata": {"key": "ramdisk_id"}})
    assert missing.status_code == 404 and "ramdisk_id" in missing.json()["itemNotFound"]["message"]
    bad = api.post(action, token=admin["token"], json={"os-set_image_metadata": {"metadata": {"k": 5}}})
    assert bad.status_code == 400 and "metadata" in bad.json()["badRequest"]["message"]
    # Another project's volume is not found, and nothing changes.
    other = api.post(f"/volume/v3/{demo['project']}/volumes/{volume['id']}/action", token=demo["token"],
                     json={"os-set_image_metadata": {"metadata": {"kernel_id": "evil"}}})
    assert other.status_code == 404
    assert api.post(action, token=admin["token"], json={"os-show_image_metadata": {}}).json()["metadata"][
        "kernel_id"] == "k-1"


def test_extensions_list_what_is_served(cloud, api, admin):
    listed = cloud.openstack("extension", "list", "--volume", "-f", "json")
    aliases = {row["Alias"] for row in listed}
    assert {"os-hosts", "os-volume-transfer", "os-quota-class-sets", "os-volume-image-metadata",
            "os-snapshot-actions", "backups"} <= aliases
    # Not built, so not listed.
    assert not aliases & {"os-volume-manage", "consistencygroups", "os-volume-encryption-metadata"}
    body = api.get(path(admin, "extensions"), token=admin["token"]).json()
    hosts = [row for row in body["extensions"] if row["name"] == "Hosts"]
    assert hosts and set(hosts[0]) == {"alias", "name", "description", "links", "updated"}
    # Every aliased API answers (none listed is a 404).
    assert api.get(path(admin, "os-hosts"), token=admin["token"]).status_code == 200
    assert api.get(path(admin, "os-volume-transfer"), token=admin["token"]).status_code == 200
    assert api.get(path(admin, "os-quota-class-sets/default"), token=admin["token"]).status_code == 200
    assert api.get(path(admin, "qos-specs"), token=admin["token"]).status_code == 200
    assert api.get(path(admin, "backups"), token=admin["token"]).status_code == 200
