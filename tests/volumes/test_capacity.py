"""Concurrent creates never pass a back end's capacity (the scheduler's
claim is atomic) nor a project's quota (counted under the project's lock);
a volume that found no room ends in error with the reason in its messages,
holding neither space nor quota."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.compute.nodes import wait_until
from tests.volumes.conftest import VolumeWorker, forget_backends
from volumes import quotas
from volumes.models import Backend, Volume

pytestmark = pytest.mark.django_db
CAPACITY_GB = 5


@pytest.fixture(scope="module")
def small_backend(live_db, cloud, control, tmp_path_factory):
    forget_backends(*Backend.objects.values_list("host", flat=True))
    base = tmp_path_factory.mktemp("small")
    worker = VolumeWorker(base / "data", base / "worker.log", capacity_gb=CAPACITY_GB,
                          STRATUS_PUBLIC_URL=cloud.url).start()
    yield worker
    worker.stop()
    forget_backends(worker.host)


def post_at_once(cloud, who, count, size=1):
    conn = cloud.connect(who)
    token, project = conn.auth_token, conn.current_project_id

    def post(index):
        return requests.post(f"{cloud.url}/volume/v3/{project}/volumes", headers={"X-Auth-Token": token},
                             json={"volume": {"size": size, "name": f"race-{index}"}}, timeout=60)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(post, range(count))), token, project


def test_concurrent_creates_never_pass_the_back_ends_capacity(cloud, small_backend):
    responses, token, project = post_at_once(cloud, "stratus", 2 * CAPACITY_GB)
    assert [response.status_code for response in responses] == [202] * 2 * CAPACITY_GB
    ids = [response.json()["volume"]["id"] for response in responses]

    def settled():
        statuses = list(Volume.objects.filter(pk__in=ids).values_list("status", flat=True))
        return statuses if "creating" not in statuses else None

    statuses = wait_until(settled, timeout=120, interval=0.5, message="the creates to settle")
    assert sorted(statuses) == ["available"] * CAPACITY_GB + ["error"] * CAPACITY_GB
    assert Backend.objects.get(host=small_backend.host).allocated_capacity_gb == CAPACITY_GB
    assert len(small_backend.files()) == CAPACITY_GB

    failed = Volume.objects.filter(pk__in=ids, status="error").values_list("pk", flat=True)[0]
    messages = requests.get(f"{cloud.url}/volume/v3/{project}/messages?resource_uuid={failed}",
                            headers={"X-Auth-Token": token, "OpenStack-API-Version": "volume 3.3"}).json()
    [message] = messages["messages"]
    assert message["resource_type"] == "VOLUME" and "No valid backend" in message["user_message"]
    assert "CapacityFilter removed 1" in message["user_message"]
    # Failed creates hold no quota: only the volumes made count.
    used = quotas.usage_of(project)
    assert used["volumes"] == Volume.objects.filter(project_id=project).exclude(status="error").count()

    # The pools show the claim; deleting gives the space back.
    pools = cloud.openstack("volume", "backend", "pool", "list", "--long", "-f", "json")
    [pool] = [row for row in pools if row["Name"].startswith(small_backend.host)]
    capabilities = pool["Capabilities"]
    assert capabilities["total_capacity_gb"] == CAPACITY_GB and capabilities["free_capacity_gb"] == 0
    assert capabilities["allocated_capacity_gb"] == CAPACITY_GB
    cloud.openstack("volume", "delete", *ids)
    wait_until(lambda: not Volume.objects.filter(pk__in=ids).exists(), timeout=60, message="the deletes")
    assert Backend.objects.get(host=small_backend.host).allocated_capacity_gb == 0
    assert small_backend.files() == []


def test_concurrent_creates_never_pass_the_quota(cloud, small_backend):
    cloud.openstack("quota", "set", "--volumes", "3", "demo")
    try:
        responses, token, project = post_at_once(cloud, "stratus-demo", 8)
    finally:
        # demo back on the default class's limits, which later tests change.
        cloud.openstack("quota", "delete", "--volume", "demo")
    codes = sorted(response.status_code for response in responses)
    assert codes == [202] * 3 + [413] * 5
    refused = [response.json() for response in responses if response.status_code == 413]
    assert all("quota 'volumes'" in body["overLimit"]["message"] for body in refused)
    ids = [response.json()["volume"]["id"] for response in responses if response.status_code == 202]
    wait_until(lambda: set(Volume.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"available"},
               timeout=60, message="the accepted creates")
    cloud.openstack("volume", "delete", *ids, cloud="stratus-demo")
    wait_until(lambda: not Volume.objects.filter(pk__in=ids).exists(), timeout=60, message="the deletes")
