"""What a tenant may do and see of a server, against the live API: an
admin's lock holds against the owner, faults tell tenants Nova's short
text (operators' details only to admins), and concurrent keypair
creations never pass the quota."""
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.utils import timezone

from compute import tasks
from compute.models import ComputeNode, Instance, TaskState, VmState
from tests.compute.pipeline import live_db  # noqa: F401  (a fixture)

pytestmark = pytest.mark.live

V = {"OpenStack-API-Version": "compute 2.60"}


@pytest.fixture(scope="module")
def tokens(cloud):
    return {"admin": cloud.token("stratus"), "demo": cloud.token("stratus-demo")}


@pytest.fixture(scope="module")
def image_id(cloud, tmp_path_factory):
    from tests.compute.pipeline import upload_tiny_image

    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


def create_server(api, token, image_id):
    response = api.post("/compute/v2.1/servers", token=token, headers=V, json={"server": {
        "name": f"trust-{uuid.uuid4().hex[:6]}", "imageRef": image_id, "flavorRef": "42", "networks": "none"}})
    assert response.status_code == 202, response.text
    return response.json()["server"]["id"]


def server_action(api, token, server_id, body):
    return api.post(f"/compute/v2.1/servers/{server_id}/action", token=token, json=body, headers=V)


def show(api, token, server_id):
    return api.get(f"/compute/v2.1/servers/{server_id}", token=token, headers=V).json()["server"]


def test_the_owner_cannot_unlock_or_relock_away_an_admins_lock(api, tokens, image_id):
    demo, admin = tokens["demo"], tokens["admin"]
    server_id = create_server(api, demo, image_id)
    try:
        assert server_action(api, admin, server_id, {"lock": None}).status_code == 202
        refused = server_action(api, demo, server_id, {"unlock": None})
        assert refused.status_code == 409, refused.text
        assert "administrator" in refused.json()["conflictingRequest"]["message"]
        # Locking it again as the owner does not make the lock the owner's.
        assert server_action(api, demo, server_id, {"lock": None}).status_code == 202
        assert server_action(api, demo, server_id, {"unlock": None}).status_code == 409
        assert show(api, demo, server_id)["locked"] is True
        assert api.delete(f"/compute/v2.1/servers/{server_id}", token=demo, headers=V).status_code == 409

        assert server_action(api, admin, server_id, {"unlock": None}).status_code == 202
        assert show(api, demo, server_id)["locked"] is False
        # The owner's own lock is the owner's to lift.
        assert server_action(api, demo, server_id, {"lock": None}).status_code == 202
        assert server_action(api, demo, server_id, {"unlock": None}).status_code == 202
        assert show(api, demo, server_id)["locked"] is False
    finally:
        server_action(api, admin, server_id, {"unlock": None})
        api.delete(f"/compute/v2.1/servers/{server_id}", token=admin, headers=V)


def faults_as(api, tokens, server_id):
    return show(api, tokens["demo"], server_id)["fault"], show(api, tokens["admin"], server_id)["fault"]


def test_a_no_valid_host_fault_tells_tenants_nothing_of_the_hosts(live_db, api, tokens, image_id):
    host = f"secret-{uuid.uuid4().hex[:6]}"
    node = ComputeNode.objects.create(host=host, hypervisor_uri="test:///default", hypervisor_hostname=host,
                                      vcpus=1, memory_mb=64, local_gb=10, heartbeat_at=timezone.now())
    server_id = create_server(api, tokens["demo"], image_id)
    try:
        # The scheduler runs here, in-process: no node has room for 128 MiB.
        tasks.schedule_instance(server_id)
        tenant, operator = faults_as(api, tokens, server_id)
        assert tenant == {"code": 500, "created": tenant["created"],
                          "message": "No valid host was found. There are not enough hosts available."}
        assert operator["message"] == tenant["message"]
        assert "RamFilter removed" in operator["details"]
    finally:
        api.delete(f"/compute/v2.1/servers/{server_id}", token=tokens["demo"], headers=V)
        node.delete()


def test_a_failed_build_fault_names_its_hosts_to_admins_only(live_db, api, tokens, image_id):
    server_id = create_server(api, tokens["demo"], image_id)
    host = f"secret-{uuid.uuid4().hex[:6]}"
    try:
        instance = Instance.objects.get(pk=server_id)
        instance.update_state(task_state=TaskState.SPAWNING, host=host, attempts=3)
        tasks.handle_build_failure(instance, f"spawn failed: no space left in /srv/{host}/disk")
        assert Instance.objects.get(pk=server_id).vm_state == VmState.ERROR
        tenant, operator = faults_as(api, tokens, server_id)
        assert tenant["message"] == "Exceeded maximum number of retries (3 hosts tried)."
        assert "details" not in tenant and host not in str(tenant)
        assert operator["message"] == tenant["message"]
        assert operator["details"] == f"Last failure on {host}: spawn failed: no space left in /srv/{host}/disk"
    finally:
        api.delete(f"/compute/v2.1/servers/{server_id}", token=tokens["demo"], headers=V)


def public_key():
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def test_concurrent_keypair_creations_never_pass_the_quota(cloud, api, tokens):
    demo_project = cloud.openstack("project", "show", "demo", "-f", "json")["id"]
    token = tokens["demo"]

    def keypairs():
        return [row["keypair"]["name"] for row in
                api.get("/compute/v2.1/os-keypairs", token=token, headers=V).json()["keypairs"]]

    for name in keypairs():
        api.delete(f"/compute/v2.1/os-keypairs/{name}", token=token, headers=V)
    cloud.openstack("quota", "set", "--key-pairs", "3", demo_project)
    try:
        def create(index):
            return api.post("/compute/v2.1/os-keypairs", token=token, headers=V, json={
                "keypair": {"name": f"race-{index}", "public_key": public_key()}})

        for _round in range(3):
            with ThreadPoolExecutor(max_workers=12) as pool:
                responses = list(pool.map(create, range(12)))
            assert sorted(response.status_code for response in responses) == [201] * 3 + [403] * 9
            refused = [response for response in responses if response.status_code == 403]
            assert all("Quota exceeded for key_pairs" in response.json()["forbidden"]["message"]
                       for response in refused)
            assert len(keypairs()) == 3
            for name in keypairs():
                api.delete(f"/compute/v2.1/os-keypairs/{name}", token=token, headers=V)
    finally:
        for name in keypairs():
            api.delete(f"/compute/v2.1/os-keypairs/{name}", token=token, headers=V)
        cloud.openstack("quota", "set", "--key-pairs", "100", demo_project)
