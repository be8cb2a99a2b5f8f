"""evacuate (admins) through the real CLI, a real control worker and two
simulated nodes, each in its own node worker: the worker of the server's
node is killed and its heartbeat goes stale (the node-down detection the
API uses), then the server is made again on the other node from its image,
recorded as an `evacuation` migration and an `evacuate` action. Refused
while the node is up, for another project's server, for members, and for
bad bodies and hosts."""
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from compute.models import Claim, ComputeNode, Instance, Migration, PowerState, Service, TaskState, VmState
from tests.compute import pipeline
from tests.compute.nodes import wait_until
from tests.compute.pipeline import boot_at_once, start_nodes, unlimited_quota, upload_tiny_image, wait_settled

live_db, control = pipeline.live_db, pipeline.control

pytestmark = pytest.mark.live


def version(minor):
    return {"OpenStack-API-Version": f"compute 2.{minor}"}


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def nodes(cloud, control, tmp_path_factory):
    """Two simulated nodes, each in a worker of its own: {host: (worker, its nodes directory)}."""
    started = {}
    for word in ("evac-a", "evac-b"):
        directory = tmp_path_factory.mktemp(word)
        worker, (host,) = start_nodes(cloud, directory, 1, word)
        started[host] = (worker, directory / "nodes")
    yield started
    for host, (worker, _directory) in started.items():
        if not worker.exited():
            worker.stop()
    Instance.objects.filter(host__in=list(started)).delete()
    ComputeNode.objects.filter(host__in=list(started)).delete()
    Service.objects.filter(host__in=list(started)).delete()


def action(api, token, server_id, body, minor=60):
    return api.post(f"/compute/v2.1/servers/{server_id}/action", token=token, json=body, headers=version(minor))


def kill_node(nodes, host):
    """The node's worker killed, and its last heartbeat older than the down
    time (instead of waiting for it to age)."""
    worker, _directory = nodes[host]
    worker.kill()
    stale = timezone.now() - timedelta(hours=1)
    ComputeNode.objects.filter(host=host).update(heartbeat_at=stale)
    Service.objects.filter(host=host).update(last_seen_up=stale)


def test_a_server_on_a_down_node_is_made_again_on_the_other(cloud, api, nodes, image):
    unlimited_quota(cloud)
    server_id, = boot_at_once(cloud, [f"evac-{uuid.uuid4().hex[:6]}"], image, "m1.nano")
    assert wait_settled(cloud, [server_id])[server_id].status == "ACTIVE"
    source = Instance.objects.get(pk=server_id).host
    other = next(host for host in nodes if host != source)
    admin, demo = cloud.token("stratus"), cloud.token("stratus-demo")

    # The node is up: nothing to evacuate from.
    up = action(api, admin, server_id, {"evacuate": {}})
    assert up.status_code == 400 and "still in use" in up.json()["badRequest"]["message"]

    kill_node(nodes, source)
    for body, minor, status, field in (
            ({"evacuate": {"host": "nowhere"}}, 60, 404, "nowhere"),
            ({"evacuate": {"host": source}}, 60, 400, "same"),
            ({"evacuate": {}}, 13, 400, "onSharedStorage"),
            ({"evacuate": {"onSharedStorage": True}}, 13, 400, "onSharedStorage"),
            ({"evacuate": {"onSharedStorage": False}}, 14, 400, "onSharedStorage"),
            ({"evacuate": {"force": True}}, 28, 400, "force"),
            ({"evacuate": {"host": 7}}, 60, 400, "host"),
            ({"evacuate": "anywhere"}, 60, 400, "evacuate")):
        refused = action(api, admin, server_id, body, minor)
        assert refused.status_code == status, (body, refused.text)
        assert field in refused.text, (body, refused.text)
    # Another project's server is not found; nothing moved.
    assert action(api, demo, server_id, {"evacuate": {}}).status_code == 404
    assert action(api, "forged", server_id, {"evacuate": {}}).status_code == 401
    assert not Migration.objects.filter(instance_id=server_id).exists()

    # Without --wait: the CLI's wait compares the lower-cased status with
    # 'ACTIVE' and never ends, whatever the cloud answers.
    cloud.openstack("server", "evacuate", server_id)
    shown = wait_until(lambda: (lambda s: s["status"] == "ACTIVE" and not s["OS-EXT-STS:task_state"] and s)(
        cloud.openstack("server", "show", server_id, "-f", "json")), timeout=120, message="ACTIVE on the other node")
    assert shown["OS-EXT-SRV-ATTR:host"] == other
    instance = Instance.objects.get(pk=server_id)
    assert (instance.host, instance.vm_state) == (other, VmState.ACTIVE)
    assert list(Claim.objects.filter(instance_id=server_id).values_list("node__host", flat=True)) == [other]
    _worker, directory = nodes[other]
    assert (directory / other / "instances" / server_id / "disk").exists()
    migration = Migration.objects.get(instance_id=server_id)
    assert (migration.migration_type, migration.status, migration.source_compute, migration.dest_compute) == (
        "evacuation", "done", source, other)
    listed = cloud.openstack("server", "migration", "list", "--server", server_id, "-f", "json")
    assert [row["Type"] for row in listed] == ["evacuation"]
    actions = [row["Action"] for row in cloud.openstack("server", "event", "list", server_id, "-f", "json")]
    assert actions == ["evacuate", "create"]
    # The old node, back, removes what it still held of the server.
    old_worker, old_directory = nodes[source]
    assert (old_directory / source / "instances" / server_id).exists()
    old_worker.start()
    wait_until(lambda: not (old_directory / source / "instances" / server_id).exists(), timeout=60,
               message="the old node's copy removed")
    assert Instance.objects.get(pk=server_id).host == other
    cloud.openstack("server", "delete", "--wait", server_id)
    kill_node(nodes, source)  # down again, for the next test


def test_members_are_refused_and_a_stopped_server_comes_back_stopped(api, cloud, nodes, live_db):  # noqa: F811
    demo = cloud.connect("stratus-demo")
    down = next((host for host, (worker, _d) in nodes.items() if worker.exited()), None)
    if down is None:
        pytest.skip("needs the first test's down node")
    node = ComputeNode.objects.get(host=down)
    def server(**fields):
        return Instance.objects.create(
            name="evac-demo", project_id=demo.current_project_id, user_id="u", flavor_id_at_boot="42",
            flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, host=down, node=node,
            **{"vm_state": VmState.ACTIVE, **fields})

    theirs, busy = server(vm_state=VmState.STOPPED), server(task_state=TaskState.POWERING_OFF)
    try:
        refused = action(api, demo.auth_token, theirs.pk, {"evacuate": {}})
        assert refused.status_code == 403 and "forbidden" in refused.json()
        # A task running: a conflict, even with its node down.
        conflict = action(api, cloud.token("stratus"), busy.pk, {"evacuate": {}})
        assert conflict.status_code == 409 and "evacuate" in conflict.json()["conflictingRequest"]["message"]
        answer = action(api, cloud.token("stratus"), theirs.pk, {"evacuate": {"onSharedStorage": False,
                                                                              "adminPass": "Given1234"}}, 13)
        assert answer.status_code == 200 and answer.json() == {"adminPass": "Given1234"}
        moved = wait_until(lambda: (lambda row: row.task_state is None and row)(Instance.objects.get(pk=theirs.pk)),
                           timeout=60, message="the second evacuation over")
        # A stopped server comes back stopped, as in Nova.
        assert moved.host != down and (moved.vm_state, moved.power_state) == (VmState.STOPPED, PowerState.SHUTDOWN)
    finally:
        Instance.objects.filter(pk__in=[theirs.pk, busy.pk]).delete()
