"""The stock `openstack` CLI against the object store."""
import hashlib
import os
import uuid


def test_container_and_object_round_trip_bytes(cloud, tmp_path):
    container = f"cli-{uuid.uuid4().hex[:8]}"
    payload = os.urandom(3 * 2**20 + 17)
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    created = cloud.openstack("container", "create", container, "-f", "json", cloud="stratus-demo")
    assert created[0]["container"] == container
    os.chdir(tmp_path)
    uploaded = cloud.openstack("object", "create", container, "payload.bin", "-f", "json", cloud="stratus-demo")
    assert uploaded[0]["etag"] == hashlib.md5(payload).hexdigest()
    listed = cloud.openstack("object", "list", container, "-f", "json", cloud="stratus-demo")
    assert [item["Name"] for item in listed] == ["payload.bin"]
    shown = cloud.openstack("container", "show", container, "-f", "json", cloud="stratus-demo")
    assert int(shown["object_count"]) == 1 and int(shown["bytes_used"]) == len(payload)
    saved = tmp_path / "saved.bin"
    cloud.openstack("object", "save", "--file", str(saved), container, "payload.bin", cloud="stratus-demo")
    assert saved.read_bytes() == payload
    # A container that holds an object is not deleted; once empty it is.
    refused = cloud.openstack("container", "delete", container, cloud="stratus-demo", expect_fail=True)
    assert "409" in refused.stderr or "Conflict" in refused.stderr
    cloud.openstack("object", "delete", container, "payload.bin", cloud="stratus-demo")
    cloud.openstack("container", "delete", container, cloud="stratus-demo")
    names = [item["Name"] for item in cloud.openstack("container", "list", "-f", "json", cloud="stratus-demo")]
    assert container not in names


def test_catalog_names_the_object_store_of_the_project(cloud):
    project = cloud.openstack("project", "show", "demo", "-f", "json")["id"]
    entry = cloud.openstack("catalog", "show", "object-store", "-f", "json", cloud="stratus-demo")
    urls = {endpoint["interface"]: endpoint["url"] for endpoint in entry["endpoints"]}
    assert urls["public"] == f"{cloud.url}/object-store/v1/AUTH_{project}"
