"""POST /os-server-external-events, as Neutron and Cinder call it: each
event answered on its own (200 on a server with a host, 404 for no such
server, 422 for one on no host, 400 for volume-extended without its
volume), the request 200 / 207 / 404 as Nova answers; only the cloud's
admin or a `service` user may send them."""
import uuid

import pytest
import requests
from django.utils import timezone

from compute.models import ComputeNode, Instance, Service, VmState
from tests.compute.pipeline import live_db  # noqa: F401  (committed rows the server sees)

pytestmark = pytest.mark.live

EVENTS = "/compute/v2.1/os-server-external-events"


def version(minor):
    return {"OpenStack-API-Version": f"compute 2.{minor}"}


@pytest.fixture(scope="module")
def world(cloud, live_db):  # noqa: F811
    admin = cloud.connect("stratus")
    demo = cloud.connect("stratus-demo")
    host = f"events-{uuid.uuid4().hex[:6]}"
    node = ComputeNode.objects.create(host=host, hypervisor_uri="test:///default", hypervisor_hostname=host,
                                      heartbeat_at=timezone.now())
    Service.objects.create(host=host, binary=Service.COMPUTE_BINARY, last_seen_up=timezone.now())

    def server(name, **fields):
        return Instance.objects.create(name=name, project_id=demo.current_project_id, user_id="u",
                                       flavor_id_at_boot="1", flavor_name="m1.nano", vcpus=1, memory_mb=128,
                                       root_gb=1, **{"vm_state": VmState.ACTIVE, **fields})

    placed, unplaced = server("placed", host=host, node=node), server("unplaced", vm_state=VmState.BUILDING)
    # A user with the service role on the demo project, as Neutron's user has it.
    name = f"svc-{uuid.uuid4().hex[:6]}"
    user = admin.identity.create_user(name=name, password="svc-pass", domain_id="default")
    service_role = admin.identity.find_role("service")
    admin.identity.assign_project_role_to_user(demo.current_project_id, user, service_role)
    answer = requests.post(f"{cloud.url}/identity/v3/auth/tokens", timeout=30, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": name, "domain": {"id": "default"}, "password": "svc-pass"}}},
        "scope": {"project": {"id": demo.current_project_id}}}})
    assert answer.status_code == 201, answer.text
    yield {"admin": admin.auth_token, "demo": demo.auth_token, "service": answer.headers["X-Subject-Token"],
           "placed": str(placed.pk), "unplaced": str(unplaced.pk)}
    admin.identity.delete_user(user)
    Instance.objects.filter(pk__in=[placed.pk, unplaced.pk]).delete()
    Service.objects.filter(host=host).delete()
    node.delete()


def send(api, token, events, headers=None):
    return api.post(EVENTS, token=token, json={"events": events}, headers=headers or {})


def test_events_on_a_placed_server_are_all_accepted(api, world):
    events = [{"name": "network-vif-plugged", "server_uuid": world["placed"], "tag": str(uuid.uuid4())},
              {"name": "network-changed", "server_uuid": world["placed"], "status": "failed"}]
    answer = send(api, world["admin"], events)
    assert answer.status_code == 200, answer.text
    assert answer.json()["events"] == [{**events[0], "status": "completed", "code": 200},
                                       {**events[1], "status": "completed", "code": 200}]
    # Neutron's own user holds the service role, not admin.
    assert send(api, world["service"], events[1:]).status_code == 200


def test_mixed_events_are_207_and_none_found_is_404(api, world):
    missing = str(uuid.uuid4())
    answer = send(api, world["admin"], [
        {"name": "network-vif-deleted", "server_uuid": world["placed"], "tag": "p1"},
        {"name": "network-vif-plugged", "server_uuid": missing},
        {"name": "network-vif-unplugged", "server_uuid": world["unplaced"]},
    ])
    assert answer.status_code == 207, answer.text
    assert [(event["server_uuid"], event["status"], event["code"]) for event in answer.json()["events"]] == [
        (world["placed"], "completed", 200), (missing, "failed", 404), (world["unplaced"], "failed", 422)]
    none = send(api, world["admin"], [{"name": "network-changed", "server_uuid": missing},
                                      {"name": "network-changed", "server_uuid": world["unplaced"]}])
    assert none.status_code == 404 and "No instances found" in none.json()["itemNotFound"]["message"]


def test_volume_extended_from_2_51_needs_its_volume_in_the_tag(api, world):
    event = {"name": "volume-extended", "server_uuid": world["placed"]}
    refused = send(api, world["admin"], [event], version(50))
    assert refused.status_code == 400 and "name" in refused.json()["badRequest"]["message"]
    mixed = send(api, world["admin"], [event, {**event, "tag": str(uuid.uuid4())}], version(51))
    assert mixed.status_code == 207
    assert [(e["status"], e["code"]) for e in mixed.json()["events"]] == [("failed", 400), ("completed", 200)]


@pytest.mark.parametrize("body, field", [
    ({"events": []}, "events"),
    ({"events": "network-changed"}, "events"),
    ({}, "events"),
    ({"events": [{"name": "network-changed"}]}, "server_uuid"),
    ({"events": [{"name": "network-changed", "server_uuid": "not-a-uuid"}]}, "server_uuid"),
    ({"events": [{"name": "reboot", "server_uuid": str(uuid.uuid4())}]}, "name"),
    ({"events": [{"name": "network-changed", "server_uuid": str(uuid.uuid4()), "status": "done"}]}, "status"),
    ({"events": [{"name": "network-changed", "server_uuid": str(uuid.uuid4()), "tag": "t" * 256}]}, "tag"),
    ({"events": [{"name": "network-changed", "server_uuid": str(uuid.uuid4()), "colour": "red"}]}, "colour"),
])
def test_bad_events_are_400_naming_the_field(api, world, body, field):
    answer = api.post(EVENTS, token=world["admin"], json=body)
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["badRequest"]["message"]


def test_members_and_forged_tokens_are_refused(api, world):
    event = [{"name": "network-changed", "server_uuid": world["placed"]}]
    refused = send(api, world["demo"], event)
    assert refused.status_code == 403 and "forbidden" in refused.json()
    assert send(api, "not-a-token", event).status_code == 401
    assert send(api, None, event).status_code == 401
