"""The changePassword server action (os-admin-password): an ACTIVE
server's new admin password, which the guest reads as `admin_pass` in the
metadata service's meta_data.json; refused (409) where Nova refuses it, a
400 naming the field for a bad body, 404 for another project's server."""
import uuid

import pytest
from django.utils import timezone

from compute.models import ComputeNode, Instance, InstanceAction, TaskState, VmState
from tests.compute.pipeline import live_db  # noqa: F401  (committed rows the server sees)
from tests.compute.test_metadata import by_instance, get

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def world(cloud, live_db):  # noqa: F811
    admin, demo = cloud.connect("stratus"), cloud.connect("stratus-demo")
    host = f"passwd-{uuid.uuid4().hex[:6]}"
    node = ComputeNode.objects.create(host=host, hypervisor_uri="test:///default", hypervisor_hostname=host,
                                      heartbeat_at=timezone.now())

    def server(project_id, **fields):
        return Instance.objects.create(
            name=f"pw-{uuid.uuid4().hex[:6]}", project_id=project_id, user_id="u", flavor_id_at_boot="42",
            flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, host=host, node=node,
            **{"vm_state": VmState.ACTIVE, **fields})

    made = {"mine": server(demo.current_project_id), "stopped": server(demo.current_project_id,
                                                                       vm_state=VmState.STOPPED),
            "busy": server(demo.current_project_id, task_state=TaskState.POWERING_OFF),
            "admins": server(admin.current_project_id)}
    yield {"admin": admin, "demo": demo, **made}
    Instance.objects.filter(host=host).delete()
    node.delete()


def action(api, token, server_id, body):
    return api.post(f"/compute/v2.1/servers/{server_id}/action", token=token, json=body)


def test_the_guest_reads_the_new_password_from_the_metadata_service(cloud, api, world):
    mine = world["mine"]
    assert "admin_pass" not in get(cloud, "/openstack/latest/meta_data.json", by_instance(mine)).json()
    world["demo"].compute.change_server_password(str(mine.pk), "Newpass1234")
    meta = get(cloud, "/openstack/latest/meta_data.json", by_instance(mine)).json()
    assert meta["admin_pass"] == "Newpass1234"
    actions = api.get(f"/compute/v2.1/servers/{mine.pk}/os-instance-actions",
                      token=world["demo"].auth_token).json()["instanceActions"]
    assert "changePassword" in [row["action"] for row in actions]
    assert InstanceAction.objects.filter(instance=mine, action="changePassword", finish_time__isnull=False).exists()
    answer = action(api, world["demo"].auth_token, mine.pk, {"changePassword": {"adminPass": "second"}})
    assert answer.status_code == 202 and answer.content == b""
    assert get(cloud, "/openstack/latest/meta_data.json", by_instance(mine)).json()["admin_pass"] == "second"
    # The password is the guest's only: the server's own views never show it.
    shown = api.get(f"/compute/v2.1/servers/{mine.pk}", token=world["demo"].auth_token).text
    assert "second" not in shown
    # Another instance does not read it.
    assert "admin_pass" not in get(cloud, "/openstack/latest/meta_data.json",
                                   by_instance(world["stopped"])).json()


def test_refused_where_nova_refuses(api, world):
    token = world["demo"].auth_token
    for name in ("stopped", "busy"):
        answer = action(api, token, world[name].pk, {"changePassword": {"adminPass": "x"}})
        assert answer.status_code == 409 and "changePassword" in answer.json()["conflictingRequest"]["message"]
        assert Instance.objects.get(pk=world[name].pk).admin_password == ""
    # Locked by an admin: its owner may not change it.
    mine = world["mine"]
    assert action(api, world["admin"].auth_token, mine.pk, {"lock": None}).status_code == 202
    try:
        locked = action(api, token, mine.pk, {"changePassword": {"adminPass": "while-locked"}})
        assert locked.status_code == 409
    finally:
        action(api, world["admin"].auth_token, mine.pk, {"unlock": None})
    assert Instance.objects.get(pk=mine.pk).admin_password != "while-locked"


@pytest.mark.parametrize("argument, field", [
    (None, "adminPass"), ({}, "adminPass"), ({"adminPass": 12}, "adminPass"), ({"adminPass": None}, "adminPass"),
    ({"adminPass": "x", "user": "root"}, "user"), ("x", "adminPass"),
])
def test_bad_input_is_400_naming_the_field(api, world, argument, field):
    before = Instance.objects.get(pk=world["mine"].pk).admin_password
    answer = action(api, world["demo"].auth_token, world["mine"].pk, {"changePassword": argument})
    assert answer.status_code == 400 and field in answer.json()["badRequest"]["message"]
    assert Instance.objects.get(pk=world["mine"].pk).admin_password == before


def test_another_projects_server_is_404_and_forged_tokens_401(api, world):
    theirs = world["admins"]
    answer = action(api, world["demo"].auth_token, theirs.pk, {"changePassword": {"adminPass": "mine-now"}})
    assert answer.status_code == 404 and "itemNotFound" in answer.json()
    assert action(api, "forged", theirs.pk, {"changePassword": {"adminPass": "x"}}).status_code == 401
    assert Instance.objects.get(pk=theirs.pk).admin_password == ""
    # The cloud's admin may, as in Nova.
    assert action(api, world["admin"].auth_token, theirs.pk, {"changePassword": {"adminPass": "ok"}}).status_code \
        == 202
