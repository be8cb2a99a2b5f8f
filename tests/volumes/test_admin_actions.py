"""An admin's repairs, on the wire as Cinder's: os-force_detach ends an
attachment whatever state it was left in, and os-services' PUT actions
take a back end out of the volume scheduler's choice (and back), through
the `openstack` CLI where it has the command."""
import uuid

import pytest

from tests.volumes.conftest import path, wait_status

pytestmark = pytest.mark.django_db


def act(api, who, volume_id, body):
    return api.post(path(who, f"volumes/{volume_id}/action"), token=who["token"], json=body)


def shown(api, who, volume_id):
    return api.get(path(who, f"volumes/{volume_id}"), token=who["token"]).json()["volume"]


def attach(api, who, volume_id, host_name):
    server = str(uuid.uuid4())
    answer = act(api, who, volume_id, {"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb",
                                                     "host_name": host_name}})
    assert answer.status_code == 202, answer.text
    return server


@pytest.fixture
def made(api, admin, volume_worker):
    """Makes volumes of the admin project (body extras as given); deletes them after."""
    ids = []

    def make(**extra):
        answer = api.post(path(admin, "volumes"), token=admin["token"],
                          json={"volume": {"size": 1, "name": f"adm-{uuid.uuid4().hex[:6]}", **extra}})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["volume"]["id"])
        return ids[-1]

    yield make
    for volume_id in ids:
        act(api, admin, volume_id, {"os-force_delete": {}})


def test_force_detach_ends_the_only_attachment_and_the_volume_is_available(cloud, api, admin, made):
    volume_id = made()
    wait_status(cloud, volume_id, "available")
    attach(api, admin, volume_id, "node-a")
    # Left half way through a detach: the admin's force detach ends it all the same.
    assert act(api, admin, volume_id, {"os-begin_detaching": {}}).status_code == 202
    assert shown(api, admin, volume_id)["status"] == "detaching"
    answer = act(api, admin, volume_id, {"os-force_detach": {}})
    assert answer.status_code == 202, answer.text
    volume = shown(api, admin, volume_id)
    assert volume["status"] == "available" and volume["attachments"] == []
    listed = api.get(path(admin, f"attachments?volume_id={volume_id}"), token=admin["token"],
                     headers={"OpenStack-API-Version": "volume 3.27"}).json()["attachments"]
    assert listed == []
    # Nothing left to detach: Cinder sets it available and says nothing (so does os-detach).
    assert act(api, admin, volume_id, {"os-force_detach": {}}).status_code == 202
    assert act(api, admin, volume_id, {"os-detach": {}}).status_code == 202
    assert act(api, admin, volume_id, {"os-detach": {"attachment_id": "not-a-uuid"}}).status_code == 202
    assert cloud.openstack("volume", "show", volume_id, "-f", "json")["status"] == "available"


def test_force_detach_picks_the_attachment_by_id_or_connector(cloud, api, admin, made):
    volume_id = made(multiattach=True)
    wait_status(cloud, volume_id, "available")
    first = attach(api, admin, volume_id, "node-a")
    second = attach(api, admin, volume_id, "node-b")
    attachments = {row["server_id"]: row["attachment_id"] for row in shown(api, admin, volume_id)["attachments"]}
    assert set(attachments) == {first, second}
    # Two attachments and neither named: refused, both kept.
    answer = act(api, admin, volume_id, {"os-force_detach": {}})
    assert answer.status_code == 400 and "attachment_id" in answer.json()["badRequest"]["message"]
    for bad in ({"attachment_id": str(uuid.uuid4())}, {"attachment_id": "not-a-uuid"},
                {"connector": {"host": "node-z"}}, {"connector": "node-a"}):
        answer = act(api, admin, volume_id, {"os-force_detach": bad})
        assert answer.status_code == 400, (bad, answer.text)
    assert len(shown(api, admin, volume_id)["attachments"]) == 2
    # The connector's host picks node-b's; the volume stays in-use by the other server.
    assert act(api, admin, volume_id, {"os-force_detach": {"connector": {"host": "node-b"}}}).status_code == 202
    volume = shown(api, admin, volume_id)
    assert volume["status"] == "in-use" and [row["server_id"] for row in volume["attachments"]] == [first]
    answer = act(api, admin, volume_id, {"os-force_detach": {"attachment_id": attachments[first]}})
    assert answer.status_code == 202, answer.text
    volume = shown(api, admin, volume_id)
    assert volume["status"] == "available" and volume["attachments"] == []


def test_force_detach_is_an_admins_and_another_projects_volume_is_not_found(cloud, api, admin, demo, made):
    theirs = made()
    wait_status(cloud, theirs, "available")
    attach(api, admin, theirs, "node-a")
    answer = act(api, demo, theirs, {"os-force_detach": {}})
    assert answer.status_code == 404, answer.text
    own = api.post(path(demo, "volumes"), token=demo["token"], json={"volume": {"size": 1, "name": "demo-fd"}})
    own_id = own.json()["volume"]["id"]
    try:
        wait_status(cloud, own_id, "available", cloud_name="stratus-demo")
        attach(api, demo, own_id, "node-a")
        answer = act(api, demo, own_id, {"os-force_detach": {}})
        assert answer.status_code == 403, answer.text
        assert shown(api, demo, own_id)["status"] == "in-use"
    finally:
        act(api, admin, own_id, {"os-force_delete": {}})
    assert shown(api, admin, theirs)["status"] == "in-use"


def services(cloud):
    return {row["Host"]: row for row in cloud.openstack("volume", "service", "list", "--long", "-f", "json")}


def test_a_disabled_backend_is_not_chosen_until_enabled(cloud, api, admin, made, volume_worker):
    host = volume_worker.host
    cloud.openstack("volume", "service", "set", "--disable", "--disable-reason", "disk swap", host, "cinder-volume")
    try:
        listed = services(cloud)[host]
        assert listed["Status"] == "disabled" and listed["Disabled Reason"] == "disk swap"
        refused = made()
        volume = wait_status(cloud, refused, "error")
        assert volume["status"] == "error"
        messages = api.get(path(admin, f"messages?resource_uuid={refused}"), token=admin["token"],
                           headers={"OpenStack-API-Version": "volume 3.3"}).json()["messages"]
        assert any("No valid backend" in message["user_message"] for message in messages), messages
        # What it holds is still served: the volume's own worker deletes the failed one.
    finally:
        cloud.openstack("volume", "service", "set", "--enable", host, "cinder-volume")
    listed = services(cloud)[host]
    assert listed["Status"] == "enabled" and not listed["Disabled Reason"]
    placed = made()
    assert wait_status(cloud, placed, "available")["status"] == "available"


def test_service_actions_bad_input_and_policy(cloud, api, admin, demo, volume_worker):
    host = volume_worker.host

    def put(who, action, body):
        return api.put(path(who, f"os-services/{action}"), token=who["token"], json=body)

    answer = put(admin, "disable", {"host": host, "binary": "cinder-volume"})
    try:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["disabled"] is True and body["status"] == "disabled" and body["host"] == host
    finally:
        answer = put(admin, "enable", {"host": host, "binary": "cinder-volume"})
    assert answer.status_code == 200 and answer.json()["disabled_reason"] is None
    for action, body, code, word in (
            ("freeze", {"host": host}, 400, "freeze"), ("thaw", {"host": host}, 400, "thaw"),
            ("failover_host", {"host": host}, 400, "failover_host"),
            ("reboot", {"host": host, "binary": "cinder-volume"}, 400, "reboot"),
            ("disable", {"binary": "cinder-volume"}, 400, "host"),
            ("disable", {"host": host}, 400, "binary"),
            ("disable-log-reason", {"host": host, "binary": "cinder-volume", "disabled_reason": "x" * 256}, 400,
             "disabled_reason"),
            ("disable-log-reason", {"host": host, "binary": "cinder-volume"}, 400, "disabled_reason"),
            ("disable", {"host": "nowhere@file", "binary": "cinder-volume"}, 404, "nowhere@file"),
            ("disable", {"host": host, "binary": "cinder-backup"}, 404, "cinder-backup")):
        answer = put(admin, action, body)
        assert answer.status_code == code, (action, body, answer.text)
        error = next(iter(answer.json().values()))
        assert word in error["message"], (action, error)
    # A project member may not, and nothing changed.
    answer = put(demo, "disable", {"host": host, "binary": "cinder-volume"})
    assert answer.status_code == 403, answer.text
    assert services(cloud)[host]["Status"] == "enabled"
