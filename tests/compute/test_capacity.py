"""Concurrent boots never oversubscribe: capacity for 30 servers of a
flavor, 40 requested at once, gives exactly 30 ACTIVE and 10 ERROR with a
"No valid host" fault that says which filter removed the hosts."""
import uuid

import pytest

from compute.models import ComputeNode, Instance, VmState
from tests.compute.pipeline import (  # noqa: F401  (live_db is a fixture)
    ControlWorker, boot_at_once, live_db, node_usage, start_nodes, stop_nodes, unlimited_quota,
    upload_tiny_image, wait_settled,
)

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def six_per_node(live_db, cloud, tmp_path_factory):
    """A control worker and 5 nodes of 6 GiB each (RAM ratio 1.0)."""
    control = ControlWorker(tmp_path_factory.mktemp("control") / "control.log", concurrency=4).start()
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("capacity"), 5, "cap", memory_mb=6144)
    yield hosts
    stop_nodes(worker, hosts)
    control.stop()


def test_forty_boots_for_thirty_places(cloud, six_per_node, tmp_path):
    hosts = six_per_node
    # Only these nodes may take the boots: other tests' nodes are gone.
    assert set(ComputeNode.objects.values_list("host", flat=True)) == set(hosts)
    flavor = f"gig-{uuid.uuid4().hex[:6]}"
    cloud.openstack("flavor", "create", flavor, "--ram", "1024", "--vcpus", "1", "--disk", "1", "-f", "json")
    unlimited_quota(cloud)
    image = upload_tiny_image(cloud, tmp_path)

    ids = boot_at_once(cloud, [f"cap-{index}" for index in range(40)], image, flavor)
    servers = wait_settled(cloud, ids)

    active = [server for server in servers.values() if server.status == "ACTIVE"]
    errors = [server for server in servers.values() if server.status == "ERROR"]
    assert (len(active), len(errors)) == (30, 10)
    for server in errors:
        assert server.fault["message"].startswith("No valid host was found."), server.fault
        assert "RamFilter removed" in server.fault["details"], server.fault  # operators only
    usage = node_usage(hosts)
    for host, row in usage.items():
        assert row["memory_mb_used"] == row["claimed_memory"] <= row["memory_capacity"], (host, row)
        assert row["claims"] == Instance.objects.filter(host=host, deleted=False,
                                                        vm_state=VmState.ACTIVE).count() == 6
    # ERROR servers hold nothing: no claim, no host.
    assert not Instance.objects.filter(pk__in=[server.id for server in errors], claims__isnull=False).exists()

    shown = cloud.openstack("server", "show", errors[0].id, "-f", "json")
    assert shown["status"] == "ERROR" and "No valid host" in str(shown["fault"])
    cloud.openstack("server", "delete", "--wait", *ids)
    assert {row["claims"] for row in node_usage(hosts).values()} == {0}
