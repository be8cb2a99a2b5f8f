"""The boot pipeline end to end: the real API, a real control worker and
five simulated nodes (node worker on libvirt's test driver), driven by the
`openstack` CLI and openstacksdk."""
import uuid

import pytest

from compute.models import Claim, Instance, VmState
from tests.compute.nodes import wait_until
from tests.compute.pipeline import (  # noqa: F401  (control and live_db are fixtures)
    boot_at_once, control, live_db, node_usage, start_nodes, stop_nodes, unlimited_quota,
    upload_tiny_image, wait_settled,
)

pytestmark = pytest.mark.live

# The storm's servers ask for no network and map no volume: their chains
# leave those two steps out.
PIPELINE_EVENTS = ["conductor_schedule", "compute_prepare_disk", "compute_spawn"]


@pytest.fixture(scope="module")
def nodes(cloud, control, tmp_path_factory):
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("boot"), 5, "boot")
    yield hosts
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def storm(cloud, nodes, image):
    """40 servers booted at once."""
    unlimited_quota(cloud)
    names = [f"storm-{uuid.uuid4().hex[:6]}" for _ in range(40)]
    ids = boot_at_once(cloud, names, image, "m1.nano")
    return wait_settled(cloud, ids)


def test_forty_boots_at_once_are_all_active_and_spread(storm, nodes):
    statuses = {server.status for server in storm.values()}
    assert statuses == {"ACTIVE"}, {server.name: server.fault for server in storm.values()
                                    if server.status != "ACTIVE"}
    per_host = {}
    for server in storm.values():
        per_host[server.compute_host] = per_host.get(server.compute_host, 0) + 1
    assert set(per_host) == set(nodes), per_host
    # Most free RAM first: no node takes much more than its share.
    assert max(per_host.values()) <= 12, per_host
    usage = node_usage(nodes)
    for host, row in usage.items():
        assert row["memory_mb_used"] == row["claimed_memory"] <= row["memory_capacity"], (host, row)
        assert row["claims"] == Instance.objects.filter(host=host, deleted=False, vm_state=VmState.ACTIVE).count()


def test_server_event_list_shows_every_pipeline_step(cloud, storm):
    server_id = next(iter(storm))
    actions = cloud.openstack("server", "event", "list", server_id, "-f", "json")
    assert [action["Action"] for action in actions] == ["create"]
    shown = cloud.openstack("server", "event", "show", server_id, actions[0]["Request ID"], "-f", "json")
    events = sorted(shown["events"], key=lambda event: event["start_time"])
    assert [event["event"] for event in events] == PIPELINE_EVENTS
    assert {event["result"] for event in events} == {"Success"}


def test_hypervisor_list_stats_and_compute_service_list(cloud, storm, nodes):
    hypervisors = {row["Hypervisor Hostname"]: row for row in cloud.openstack("hypervisor", "list", "-f", "json")}
    assert set(nodes) <= set(hypervisors)
    assert {hypervisors[host]["State"] for host in nodes} == {"up"}
    shown = cloud.openstack("hypervisor", "show", nodes[0], "-f", "json")
    assert shown["vcpus"] == 16 and shown["memory_mb"] == 32768
    assert shown["memory_mb_used"] == 128 * Instance.objects.filter(host=nodes[0], deleted=False).count()
    stats = cloud.openstack("hypervisor", "stats", "show", "-f", "json")
    assert stats["count"] >= 5 and stats["memory_mb"] >= 5 * 32768
    assert stats["memory_mb_used"] >= 40 * 128

    services = cloud.openstack("compute", "service", "list", "-f", "json")
    compute = {row["Host"]: row for row in services if row["Binary"] == "stratus-compute"}
    assert set(nodes) <= set(compute)
    assert {(compute[host]["Status"], compute[host]["State"]) for host in nodes} == {("enabled", "up")}

    cloud.openstack("compute", "service", "set", "--disable", "--disable-reason", "maintenance window",
                    nodes[0], "stratus-compute")
    rows = cloud.openstack("compute", "service", "list", "--long", "--host", nodes[0], "-f", "json")
    assert rows[0]["Status"] == "disabled" and rows[0]["Disabled Reason"] == "maintenance window"
    assert cloud.openstack("hypervisor", "show", nodes[0], "-f", "json")["status"] == "disabled"
    cloud.openstack("compute", "service", "set", "--enable", nodes[0], "stratus-compute")
    assert cloud.openstack("compute", "service", "list", "--host", nodes[0], "-f", "json")[0]["Status"] == "enabled"

    cloud.openstack("compute", "service", "set", "--down", nodes[1], "stratus-compute")
    assert cloud.openstack("compute", "service", "list", "--host", nodes[1], "-f", "json")[0]["State"] == "down"
    cloud.openstack("compute", "service", "set", "--up", nodes[1], "stratus-compute")
    assert cloud.openstack("compute", "service", "list", "--host", nodes[1], "-f", "json")[0]["State"] == "up"

    zones = cloud.openstack("availability", "zone", "list", "--compute", "-f", "json")
    assert {"Zone Name": "nova", "Zone Status": "available"}.items() <= zones[0].items()


def test_hypervisor_servers_and_the_admin_host_filter(cloud, api, storm, nodes):
    token = cloud.token()
    headers = {"OpenStack-API-Version": "compute 2.53"}
    listed = api.get(f"/compute/v2.1/os-hypervisors?with_servers=true&hypervisor_hostname_pattern={nodes[2]}",
                     token=token, headers=headers).json()["hypervisors"]
    on_node = {server.id for server in storm.values() if server.compute_host == nodes[2]}
    assert {server["uuid"] for server in listed[0]["servers"]} == on_node
    by_host = api.get(f"/compute/v2.1/servers?all_tenants=1&host={nodes[2]}", token=token,
                      headers=headers).json()["servers"]
    assert {server["id"] for server in by_host} >= on_node
    demo = api.get("/compute/v2.1/os-hypervisors", token=cloud.token("stratus-demo"), headers=headers)
    assert demo.status_code == 403


def test_create_with_the_cli_then_power_actions_and_delete(cloud, nodes, image, api):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    server = cloud.openstack("server", "create", "--image", image, "--flavor", "m1.nano", "--nic", "none",
                             "--property", "role=web", "--wait", name, "-f", "json")
    assert server["status"] == "ACTIVE" and server["OS-EXT-SRV-ATTR:host"] in nodes
    assert server["properties"] == {"role": "web"} or server["properties"] == "role='web'"

    failed = cloud.openstack("server", "start", name, expect_fail=True)
    assert "409" in failed.stderr or "active" in failed.stderr

    def act(command, status, *options):
        cloud.openstack("server", command, *options, name)
        return wait_until(lambda: settled_show(cloud, name, status), timeout=60, interval=0.5,
                          message=f"{command} to reach {status}")

    shown = act("stop", "SHUTOFF")
    assert shown["OS-EXT-STS:power_state"] in (4, "Shutdown")
    act("start", "ACTIVE")
    cloud.openstack("server", "reboot", "--hard", "--wait", name)
    act("pause", "PAUSED")
    act("unpause", "ACTIVE")
    act("suspend", "SUSPENDED")
    shown = act("resume", "ACTIVE")
    assert shown["OS-EXT-STS:power_state"] in (1, "Running")

    actions = [row["Action"] for row in cloud.openstack("server", "event", "list", name, "-f", "json")]
    assert actions[-1] == "create"
    assert {"stop", "start", "reboot", "pause", "unpause", "suspend", "resume"} <= set(actions)

    console = api.post(f"/compute/v2.1/servers/{server['id']}/action", token=cloud.token(),
                       json={"os-getConsoleOutput": {"length": 10}})
    assert console.status_code == 200 and isinstance(console.json()["output"], str)

    server_id = server["id"]
    cloud.openstack("server", "delete", "--wait", name)
    assert not Claim.objects.filter(instance_id=server_id).exists()
    assert Instance.objects.get(pk=server_id).deleted


def settled_show(cloud, name, status):
    shown = cloud.openstack("server", "show", name, "-f", "json")
    return shown if shown["status"] == status and not shown["OS-EXT-STS:task_state"] else None


def test_deleting_the_storm_releases_every_claim(cloud, storm, nodes):
    cloud.openstack("server", "delete", "--wait", *storm)
    usage = node_usage(nodes)
    assert {(row["claims"], row["memory_mb_used"], row["vcpus_used"]) for row in usage.values()} == {(0, 0, 0)}
