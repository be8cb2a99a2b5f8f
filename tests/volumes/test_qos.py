"""QoS specs through the `openstack volume qos` CLI and on the wire:
create, list, show, set and unset keys, associate with and disassociate
from volume types, delete (refused while associated unless forced);
admin only, and bad input is a 4xx naming the field."""
import pytest
from tests.volumes.conftest import path

pytestmark = pytest.mark.django_db


def test_qos_specs_lifecycle_and_associations(cloud, api, admin):
    qos = cloud.openstack("volume", "qos", "create", "--consumer", "front-end", "--property", "read_iops_sec=100",
                          "q-gold", "-f", "json")
    assert qos["consumer"] == "front-end" and qos["properties"] == {"read_iops_sec": "100"}
    made = api.post(path(admin, "types"), token=admin["token"], json={"volume_type": {"name": "t-gold"}})
    # Cinder's create answer carries no qos_specs_id; its update answer not the access attribute either.
    volume_type = made.json()["volume_type"]
    assert set(volume_type) == {"id", "name", "description", "is_public", "os-volume-type-access:is_public",
                                "extra_specs"}
    try:
        updated = api.put(path(admin, f"types/{volume_type['id']}"), token=admin["token"],
                          json={"volume_type": {"description": "gold"}}).json()["volume_type"]
        assert set(updated) == {"id", "name", "description", "is_public", "extra_specs"}
        cloud.openstack("volume", "qos", "set", "--property", "write_iops_sec=50", qos["id"])
        cloud.openstack("volume", "qos", "unset", "--property", "read_iops_sec", qos["id"])
        shown = cloud.openstack("volume", "qos", "show", qos["id"], "-f", "json")
        assert shown["properties"] == {"write_iops_sec": "50"} and shown["name"] == "q-gold"
        assert "q-gold" in [row["Name"] for row in cloud.openstack("volume", "qos", "list", "-f", "json")]

        cloud.openstack("volume", "qos", "associate", qos["id"], volume_type["id"])
        associations = api.get(path(admin, f"qos-specs/{qos['id']}/associations"), token=admin["token"]).json()
        assert associations["qos_associations"] == [
            {"association_type": "volume_type", "name": "t-gold", "id": volume_type["id"]}]
        typed = api.get(path(admin, f"types/{volume_type['id']}"), token=admin["token"]).json()["volume_type"]
        assert typed["qos_specs_id"] == qos["id"]
        # A type takes one QoS spec at a time; an associated one is not deleted unless forced.
        other = cloud.openstack("volume", "qos", "create", "q-silver", "-f", "json")
        again = api.get(path(admin, f"qos-specs/{other['id']}/associate?vol_type_id={volume_type['id']}"),
                        token=admin["token"])
        assert again.status_code == 400 and "already associated" in again.json()["badRequest"]["message"]
        cloud.openstack("volume", "qos", "delete", other["id"])
        refused = api.delete(path(admin, f"qos-specs/{qos['id']}"), token=admin["token"])
        assert refused.status_code == 400 and "associated" in refused.json()["badRequest"]["message"]

        cloud.openstack("volume", "qos", "disassociate", "--volume-type", volume_type["id"], qos["id"])
        assert api.get(path(admin, f"qos-specs/{qos['id']}/associations"),
                       token=admin["token"]).json()["qos_associations"] == []
        cloud.openstack("volume", "qos", "associate", qos["id"], volume_type["id"])
        cloud.openstack("volume", "qos", "delete", "--force", qos["id"])
        typed = api.get(path(admin, f"types/{volume_type['id']}"), token=admin["token"]).json()["volume_type"]
        assert typed["qos_specs_id"] is None
        assert api.get(path(admin, f"qos-specs/{qos['id']}"), token=admin["token"]).status_code == 404
    finally:
        cloud.openstack("volume", "type", "delete", volume_type["id"])


def test_bad_qos_requests_and_members_are_refused(cloud, api, admin, demo):
    created = api.post(path(admin, "qos-specs"), token=admin["token"], json={"qos_specs": {"name": "q-bad"}})
    assert created.status_code == 200 and created.json()["links"]
    qos_id = created.json()["qos_specs"]["id"]
    try:
        duplicate = api.post(path(admin, "qos-specs"), token=admin["token"], json={"qos_specs": {"name": "q-bad"}})
        assert duplicate.status_code == 409 and "q-bad" in duplicate.json()["conflictingRequest"]["message"]
        for body, field in (({"consumer": "front-end"}, "name"), ({"name": "q2", "consumer": "side"}, "consumer"),
                            ({"name": "q3", "iops": 5}, "qos_specs")):
            bad = api.post(path(admin, "qos-specs"), token=admin["token"], json={"qos_specs": body})
            assert bad.status_code == 400 and field in bad.json()["badRequest"]["message"], body
        missing_key = api.put(path(admin, f"qos-specs/{qos_id}/delete_keys"), token=admin["token"],
                              json={"keys": ["nope"]})
        assert missing_key.status_code == 404
        no_type = api.get(path(admin, f"qos-specs/{qos_id}/associate"), token=admin["token"])
        assert no_type.status_code == 400 and "vol_type_id" in no_type.json()["badRequest"]["message"]
        unknown_type = api.get(path(admin, f"qos-specs/{qos_id}/associate?vol_type_id=x"), token=admin["token"])
        assert unknown_type.status_code == 404
        assert api.get(path(admin, "qos-specs/not-an-id"), token=admin["token"]).status_code == 404
        for method, rest in (("get", "qos-specs"), ("get", f"qos-specs/{qos_id}"), ("delete", f"qos-specs/{qos_id}")):
            assert getattr(api, method)(path(demo, rest), token=demo["token"]).status_code == 403
        assert api.post(path(demo, "qos-specs"), token=demo["token"],
                        json={"qos_specs": {"name": "q-demo"}}).status_code == 403
    finally:
        api.delete(path(admin, f"qos-specs/{qos_id}"), token=admin["token"])
    assert "q-demo" not in [row["Name"] for row in cloud.openstack("volume", "qos", "list", "-f", "json")]
