"""A control worker killed with SIGKILL in the middle of a boot storm: a
new worker takes the queued boots, and the reconciler ends whatever the
dead worker held (its messages wait unacknowledged in the broker) in ERROR
with a fault. Nothing stays in BUILD, and the claims match the servers."""
import signal
import time

import pytest

from compute import conf
from compute.models import Claim, Instance, InstanceFault, VmState
from compute.tasks import reconcile
from tests.compute.nodes import wait_until
from tests.compute.pipeline import (  # noqa: F401  (live_db is a fixture)
    ControlWorker, boot_at_once, live_db, node_usage, start_nodes, stop_nodes, unlimited_quota,
    upload_tiny_image,
)

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def nodes(live_db, cloud, tmp_path_factory):
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("killed"), 3, "killed")
    yield hosts
    stop_nodes(worker, hosts)


def building(ids):
    return set(Instance.objects.filter(pk__in=ids, vm_state=VmState.BUILDING).values_list("id", flat=True))


def test_nothing_stays_in_build_after_the_control_worker_is_killed(cloud, nodes, tmp_path, monkeypatch):
    unlimited_quota(cloud)
    image = upload_tiny_image(cloud, tmp_path)
    first = ControlWorker(tmp_path / "first.log", concurrency=4).start()
    ids = boot_at_once(cloud, [f"killed-{index}" for index in range(12)], image, "m1.nano")
    wait_until(lambda: Instance.objects.filter(pk__in=ids, host__isnull=False).exists(), timeout=60,
               interval=0.05, message="a first server scheduled")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=30)
    first.log.close()

    second = ControlWorker(tmp_path / "second.log", concurrency=4).start()
    try:
        # Wait until what can move has moved: the BUILD set stays the same for a while.
        previous, steady_since = None, time.monotonic()
        while time.monotonic() - steady_since < 15:
            current = building(ids)
            if current != previous:
                previous, steady_since = current, time.monotonic()
            time.sleep(1)
        stuck = building(ids)
        print(f"{len(stuck)} of {len(ids)} boots were held by the killed worker")
        monkeypatch.setattr(conf, "TASK_STATE_DEADLINE", 10)
        reconcile()
    finally:
        second.stop()

    assert building(ids) == set()
    rows = list(Instance.objects.filter(pk__in=ids))
    for row in rows:
        has_claim = Claim.objects.filter(instance=row).exists()
        assert has_claim == (row.vm_state == VmState.ACTIVE), (row.name, row.vm_state, has_claim)
    for instance_id in stuck:
        fault = InstanceFault.objects.filter(instance_id=instance_id).latest("created_at")
        assert "did not finish within" in fault.message
    for host, usage in node_usage(nodes).items():
        assert usage["memory_mb_used"] == usage["claimed_memory"], (host, usage)
    cloud.openstack("server", "delete", "--wait", *ids)
