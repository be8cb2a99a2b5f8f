"""Flavors, keypairs, limits, quota sets and version discovery through the
real `openstack` CLI and raw requests against the live server."""
import uuid

import pytest

pytestmark = pytest.mark.live


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_version_discovery_advertises_a_range_and_honours_the_header(api):
    root = api.get("/compute")
    assert root.status_code == 200
    (version,) = root.json()["versions"]
    assert version["id"] == "v2.1" and version["min_version"] == "2.1"
    assert api.get("/compute/v2.1/").json()["version"]["version"] == version["version"]

    token_response = api.post("/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"},
                                                       "password": "stratus-admin"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    token = token_response.headers["X-Subject-Token"]
    answered = api.get("/compute/v2.1/flavors", token=token, headers={"OpenStack-API-Version": "compute 2.55"})
    assert answered.headers["OpenStack-API-Version"] == "compute 2.55"
    assert "description" in answered.json()["flavors"][0]
    legacy = api.get("/compute/v2.1/flavors", token=token, headers={"X-OpenStack-Nova-API-Version": "2.1"})
    assert "description" not in legacy.json()["flavors"][0]
    too_new = api.get("/compute/v2.1/flavors", token=token, headers={"OpenStack-API-Version": "compute 9.99"})
    assert too_new.status_code == 406


def test_bootstrap_flavors_are_listed_by_the_cli(cloud):
    flavors = {row["Name"]: row for row in cloud.openstack("flavor", "list", "-f", "json")}
    assert flavors["m1.nano"]["RAM"] == 128 and flavors["m1.tiny"]["RAM"] == 512
    assert flavors["m1.xlarge"]["VCPUs"] == 8 and flavors["m1.xlarge"]["Disk"] == 160


def test_private_flavor_with_access_and_extra_specs(cloud):
    name = unique("private")
    created = cloud.openstack("flavor", "create", name, "--ram", "256", "--vcpus", "2", "--disk", "3",
                              "--private", "--property", "hw:cpu_policy=shared", "-f", "json")
    assert created["os-flavor-access:is_public"] is False
    assert created["properties"] == {"hw:cpu_policy": "shared"}
    demo_names = {row["Name"] for row in cloud.openstack("flavor", "list", "--all", "-f", "json",
                                                         cloud="stratus-demo")}
    assert name not in demo_names
    cloud.openstack("flavor", "set", name, "--project", "demo")
    demo_names = {row["Name"] for row in cloud.openstack("flavor", "list", "--all", "-f", "json",
                                                         cloud="stratus-demo")}
    assert name in demo_names
    shown = cloud.openstack("flavor", "show", name, "-f", "json")
    assert shown["access_project_ids"] and shown["properties"] == {"hw:cpu_policy": "shared"}
    cloud.openstack("flavor", "unset", name, "--property", "hw:cpu_policy")
    assert cloud.openstack("flavor", "show", name, "-f", "json")["properties"] == {}
    cloud.openstack("flavor", "delete", name)
    failed = cloud.openstack("flavor", "show", name, expect_fail=True)
    assert "No Flavor found" in failed.stderr or "404" in failed.stderr


def test_member_cannot_create_flavors(cloud):
    failed = cloud.openstack("flavor", "create", unique("nope"), "--ram", "64", cloud="stratus-demo",
                             expect_fail=True)
    assert "403" in failed.stderr


def test_keypair_create_returns_private_key_and_import_keeps_the_public_one(cloud, tmp_path):
    name = unique("key")
    private = cloud.openstack("keypair", "create", name, parse=False)
    assert "PRIVATE KEY" in private
    shown = cloud.openstack("keypair", "show", name, "-f", "json")
    assert shown["name"] == name and shown["fingerprint"].count(":") == 15

    public = cloud.openstack("keypair", "show", name, "--public-key", parse=False).strip()
    key_file = tmp_path / "key.pub"
    key_file.write_text(public + "\n")
    imported = unique("imported")
    created = cloud.openstack("keypair", "create", imported, "--public-key", str(key_file), "-f", "json")
    assert created["fingerprint"] == shown["fingerprint"]
    names = {row["Name"] for row in cloud.openstack("keypair", "list", "-f", "json")}
    assert {name, imported} <= names
    # Keypairs belong to their user: demo does not see admin's.
    assert name not in {row["Name"] for row in cloud.openstack("keypair", "list", "-f", "json",
                                                               cloud="stratus-demo")}
    bad = tmp_path / "bad.pub"
    bad.write_text("ssh-rsa not-base64!!\n")
    failed = cloud.openstack("keypair", "create", unique("bad"), "--public-key", str(bad), expect_fail=True)
    assert "public_key" in failed.stderr
    duplicate = cloud.openstack("keypair", "create", name, "--public-key", str(key_file), expect_fail=True)
    assert "409" in duplicate.stderr or "already exists" in duplicate.stderr
    cloud.openstack("keypair", "delete", name, imported)


def test_quota_set_and_limits(cloud):
    project = cloud.openstack("project", "create", unique("quota"), "-f", "json")
    cloud.openstack("quota", "set", "--instances", "3", "--cores", "7", "--ram", "4096", project["id"])
    quota = cloud.openstack("quota", "show", "--compute", project["id"], "-f", "json")
    values = {row["Resource"]: row["Limit"] for row in quota} if isinstance(quota, list) else quota
    assert values["instances"] == 3 and values["cores"] == 7 and values["ram"] == 4096
    # `limits show` asks block storage too; the SDK asks compute alone.
    absolute = cloud.connect("stratus-demo").compute.get_limits().absolute
    assert absolute.instances == 10 and absolute.instances_used >= 0
    failed = cloud.openstack("quota", "set", "--instances", "3", project["id"], cloud="stratus-demo",
                             expect_fail=True)
    assert "403" in failed.stderr or "not authorized" in failed.stderr.lower()


def test_availability_zones_and_malformed_bodies(cloud, api):
    token = cloud.token()
    bad_json = api.post("/compute/v2.1/flavors", token=token, data="{not json",
                        headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and "badRequest" in bad_json.json()
    missing = api.post("/compute/v2.1/flavors", token=token, json={"flavor": {"name": "x", "vcpus": 1}})
    assert missing.status_code == 400 and "'ram'" in missing.json()["badRequest"]["message"]
    unknown = api.get("/compute/v2.1/flavors/no-such-flavor", token=token)
    assert unknown.status_code == 404 and "no-such-flavor" in unknown.json()["itemNotFound"]["message"]
