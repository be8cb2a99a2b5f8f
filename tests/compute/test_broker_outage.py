"""Redis going away under a boot storm: queued work survives a restart in
its append-only file and the workers reconnect, so every server still ends
ACTIVE; the API keeps answering while it is down; and a scheduling
message lost outright is sent again by the reconciler."""
import subprocess
import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from compute import conf
from compute.models import Instance, TaskState, VmState
from compute.scheduler.manager import schedule
from compute.tasks import reconcile
from tests.compute.nodes import wait_until
from tests.compute.pipeline import (  # noqa: F401  (live_db is a fixture)
    ControlWorker, boot_at_once, live_db, start_nodes, stop_nodes, unlimited_quota, upload_tiny_image,
    wait_settled,
)

pytestmark = pytest.mark.live


def broker():
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def redis_answers():
    try:
        return broker().ping()
    except redis.exceptions.ConnectionError:
        return False


@pytest.fixture(scope="module")
def control(live_db, cloud, tmp_path_factory):
    """The control worker as the all-in-one runs it (prefork pool)."""
    worker = ControlWorker(tmp_path_factory.mktemp("control") / "control.log", concurrency=2, pool="prefork").start()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def nodes(cloud, control, tmp_path_factory):
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("outage"), 3, "outage")
    yield hosts
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


def test_a_redis_restart_mid_storm_loses_no_boot(cloud, api, nodes, image):
    if broker().config_get("appendonly").get("appendonly") != "yes":
        pytest.skip("Redis here runs without its append-only file (not started by scripts/services.sh): "
                    "a restart would drop the queues by design")
    unlimited_quota(cloud)
    token = cloud.token()
    ids = boot_at_once(cloud, [f"outage-{uuid.uuid4().hex[:6]}" for _ in range(20)], image, "m1.nano")
    try:
        subprocess.run(["redis-cli", "-p", "6379", "shutdown"], capture_output=True)
        wait_until(lambda: not redis_answers(), timeout=30, message="Redis to stop")
        # Reads go on while Redis is away (tokens are checked against the database then).
        listed = api.get("/compute/v2.1/servers", token=token)
        assert listed.status_code == 200, listed.text
        assert set(ids) <= {server["id"] for server in listed.json()["servers"]}
        time.sleep(2)
    finally:
        subprocess.run([str(settings.BASE_DIR / "scripts" / "services.sh"), "redis"], check=True,
                       capture_output=True)
    servers = wait_settled(cloud, ids, timeout=180)
    assert {server.status for server in servers.values()} == {"ACTIVE"}, {
        server.id: (server.status, server.fault) for server in servers.values() if server.status != "ACTIVE"}


def test_a_lost_scheduling_message_is_sent_again(cloud, api, nodes, image, tmp_path, control):
    """The control worker is away when the boot is asked for, and its
    message is lost; the reconciler sends it again and the boot goes on."""
    unlimited_quota(cloud)
    control.stop()
    try:
        server_id, = boot_at_once(cloud, [f"lost-{uuid.uuid4().hex[:6]}"], image, "m1.nano")
        wait_until(lambda: broker().llen("control") > 0, timeout=10, message="the schedule message to be queued")
        broker().delete("control")  # lost
        Instance.objects.filter(pk=server_id).update(
            updated_at=timezone.now() - timedelta(seconds=conf.SCHEDULE_RESEND_AFTER + 5))
        assert reconcile()["resent"] >= 1
        instance = Instance.objects.get(pk=server_id)
        assert (instance.vm_state, instance.task_state) == (VmState.BUILDING, TaskState.SCHEDULING)
    finally:
        control.start()
    assert wait_settled(cloud, [server_id], timeout=120)[server_id].status == "ACTIVE"


def test_a_node_chain_lost_after_the_claim_is_sent_again(cloud, api, nodes, image, control):
    """The claim committed but the node chain sent after it was lost (the
    broker was away, or the control worker died in between): the
    reconciler's resend sends the claimed host's chain again."""
    unlimited_quota(cloud)
    control.stop()
    try:
        server_id, = boot_at_once(cloud, [f"claimed-{uuid.uuid4().hex[:6]}"], image, "m1.nano")
        wait_until(lambda: broker().llen("control") > 0, timeout=10, message="the schedule message to be queued")
        broker().delete("control")
        instance = Instance.objects.get(pk=server_id)
        node = schedule(instance)  # the claim, with no chain sent after it
        Instance.objects.filter(pk=server_id).update(
            updated_at=timezone.now() - timedelta(seconds=conf.SCHEDULE_RESEND_AFTER + 5))
        instance.refresh_from_db()
        assert (instance.host, instance.task_state) == (node.host, TaskState.SCHEDULING)
        assert reconcile()["resent"] >= 1
    finally:
        control.start()
    assert wait_settled(cloud, [server_id], timeout=120)[server_id].status == "ACTIVE"
