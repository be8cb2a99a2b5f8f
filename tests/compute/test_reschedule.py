"""A step that fails on a node rolls the boot back and reschedules it to
another host; after SCHEDULER_MAX_ATTEMPTS hosts it ends in ERROR with the
failure as its fault. The failing nodes here really fail: their image
cache directory cannot be created."""
import pytest

from compute.models import Claim, Instance
from tests.compute.nodes import wait_until
from tests.compute.pipeline import (  # noqa: F401  (live_db is a fixture)
    ControlWorker, live_db, start_nodes, stop_nodes, unlimited_quota, upload_tiny_image, wait_settled,
)

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def pools(live_db, cloud, tmp_path_factory):
    """Three broken nodes with the most RAM (the scheduler tries them
    first) and one working node."""
    control = ControlWorker(tmp_path_factory.mktemp("control") / "control.log").start()
    base = tmp_path_factory.mktemp("reschedule")
    not_a_directory = base / "file"
    not_a_directory.write_text("")
    broken, broken_hosts = start_nodes(cloud, base, 3, "broken", memory_mb=65536,
                                       STRATUS_IMAGE_CACHE_DIR=str(not_a_directory / "cache"))
    good, good_hosts = start_nodes(cloud, base, 1, "good", memory_mb=16384)
    yield broken_hosts, good_hosts
    stop_nodes(broken, broken_hosts)
    stop_nodes(good, good_hosts)
    control.stop()


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    unlimited_quota(cloud)
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


def boot(cloud, image, name):
    server = cloud.openstack("server", "create", "--image", image, "--flavor", "m1.nano", "--nic", "none",
                             name, "-f", "json")
    return wait_settled(cloud, [server["id"]])[server["id"]]


def test_after_three_failed_hosts_the_server_is_error_with_the_failure(cloud, pools, image):
    broken_hosts, _good = pools
    server = boot(cloud, image, "three-strikes")
    assert server.status == "ERROR"
    assert "Exceeded maximum number of retries (3 hosts tried)" in server.fault["message"]
    instance = Instance.objects.get(pk=server.id)
    assert sorted(instance.tried_hosts) == sorted(broken_hosts)
    assert not Claim.objects.filter(instance=instance).exists()
    events = [event.event for event in instance.actions.get(action="create").events.order_by("start_time", "id")]
    assert events.count("conductor_schedule") == 3 and events.count("compute_prepare_disk") == 3
    cloud.openstack("server", "delete", "--wait", server.id)


def test_a_failed_host_is_left_for_another(cloud, pools, image):
    broken_hosts, good_hosts = pools
    for host in broken_hosts[1:]:
        cloud.openstack("compute", "service", "set", "--disable", host, "stratus-compute")
    try:
        server = boot(cloud, image, "second-chance")
    finally:
        for host in broken_hosts[1:]:
            cloud.openstack("compute", "service", "set", "--enable", host, "stratus-compute")
    assert server.status == "ACTIVE" and server.compute_host == good_hosts[0]
    instance = Instance.objects.get(pk=server.id)
    assert instance.tried_hosts == [broken_hosts[0], good_hosts[0]]
    assert Claim.objects.get(instance=instance).node.host == good_hosts[0]
    results = [(event.event, event.result) for event in
               instance.actions.get(action="create").events.order_by("start_time", "id")]
    assert ("compute_prepare_disk", "Error") in results and results[-1] == ("compute_spawn", "Success")
    # The broken host holds nothing of it.
    wait_until(lambda: not Claim.objects.filter(node__host=broken_hosts[0]).exists(), timeout=10,
               message="no claim left on the failed host")
    cloud.openstack("server", "delete", "--wait", server.id)
