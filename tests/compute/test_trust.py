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
