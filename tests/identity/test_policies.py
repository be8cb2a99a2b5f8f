"""/v3/policies as Keystone's: documents kept for services, admins only
(the real CLI)."""
import json
import uuid

import pytest

pytestmark = pytest.mark.live


def test_cli_creates_lists_updates_and_deletes_a_policy(cloud, tmp_path):
    document = tmp_path / "policy.json"
    document.write_text(json.dumps({"compute:create": ""}))
    kind = f"application/{uuid.uuid4().hex[:8]}+json"
    created = cloud.openstack("policy", "create", "--type", kind, str(document), "-f", "json")
    assert created["type"] == kind and json.loads(created["rules"]) == {"compute:create": ""}
    listed = cloud.openstack("policy", "list", "--long", "-f", "json")
    assert created["id"] in [row["ID"] for row in listed]
    cloud.openstack("policy", "set", "--type", "text/plain", created["id"])
    assert cloud.openstack("policy", "show", created["id"], "-f", "json")["type"] == "text/plain"
    cloud.openstack("policy", "delete", created["id"])
    assert cloud.openstack("policy", "show", created["id"], expect_fail=True).returncode != 0


def test_policies_are_admins_and_bodies_are_checked(cloud, api):
    admin, demo = cloud.token("stratus"), cloud.token("stratus-demo")
    for body in ({"policy": {"type": "t"}}, {"policy": {"blob": "b"}}, {"policy": {"blob": "b", "type": "t" * 256}}):
        response = api.post("/identity/v3/policies", token=admin, json=body)
        assert response.status_code == 400 and response.json()["error"]["code"] == 400
    created = api.post("/identity/v3/policies", token=admin, json={"policy": {"blob": "{}", "type": "t", "x": 1}})
    assert created.status_code == 201 and created.json()["policy"]["x"] == 1
    policy_id = created.json()["policy"]["id"]
    assert api.get("/identity/v3/policies?type=t", token=admin).json()["policies"][0]["type"] == "t"
    assert api.get(f"/identity/v3/policies/{policy_id}", token=demo).status_code == 403
    assert api.post("/identity/v3/policies", token=demo, json={"policy": {"blob": "{}", "type": "t"}}).status_code \
        == 403
    assert api.delete(f"/identity/v3/policies/{policy_id}", token=admin).status_code == 204
    missing = api.get(f"/identity/v3/policies/{policy_id}", token=admin)
    assert missing.status_code == 404 and policy_id in missing.json()["error"]["message"]
