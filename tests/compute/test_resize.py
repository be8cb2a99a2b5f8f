"""Resize with confirm and revert through the real CLI, a real control
worker and simulated nodes (libvirt's test driver, real qcow2 disks): the
new flavor is claimed beside the old one until the user confirms (the old
claim goes) or reverts (the new one goes, the old disk comes back)."""
import contextlib
import json
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone

from compute.models import Claim, ComputeNode, Instance, InstanceFault, Migration, VmState
from tests.compute.nodes import wait_until
from tests.compute.pipeline import (  # noqa: F401  (control and live_db are fixtures)
    boot_at_once, control, live_db, start_nodes, stop_nodes, unlimited_quota, upload_tiny_image, wait_settled,
)

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def flavors(cloud):
    """name -> id: a small flavor and a bigger one (more vCPUs, RAM and disk)."""
    made = {}
    for label, vcpus, ram, disk in (("small", 1, 128, 1), ("big", 2, 256, 2), ("huge", 1, 65536, 2)):
        name = f"rz-{label}-{uuid.uuid4().hex[:6]}"
        made[label] = cloud.openstack("flavor", "create", name, "--vcpus", str(vcpus), "--ram", str(ram),
                                      "--disk", str(disk), "-f", "json")["id"]
    return made


@pytest.fixture(scope="module")
def two_nodes(cloud, control, tmp_path_factory):
    """Two simulated nodes sharing one nodes directory; {host: that directory}."""
    directory = tmp_path_factory.mktemp("resize")
    worker, hosts = start_nodes(cloud, directory, 2, "resize")
    yield {host: directory / "nodes" for host in hosts}
    stop_nodes(worker, hosts)


@contextlib.contextmanager
def only_enabled(*hosts):
    """Every other node disabled for the block: the scheduler can only pick `hosts`."""
    others = list(ComputeNode.objects.exclude(host__in=hosts).filter(disabled=False).values_list("host", flat=True))
    ComputeNode.objects.filter(host__in=others).update(disabled=True)
    try:
        yield
    finally:
        ComputeNode.objects.filter(host__in=others).update(disabled=False)


def boot_on(cloud, image, flavor_id, host):
    """One server with `flavor_id`, placed on `host`."""
    unlimited_quota(cloud)
    with only_enabled(host):
        server_id = cloud.connect().compute.create_server(
            name=f"rz-{uuid.uuid4().hex[:6]}", image_id=image, flavor_id=flavor_id, networks="none").id
        server = wait_settled(cloud, [server_id])[server_id]
    assert server.status == "ACTIVE"
    assert Instance.objects.get(pk=server_id).host == host
    return server_id


def flavor_name(shown):
    """The flavor's name in `server show` (an object since microversion 2.47)."""
    flavor = shown["flavor"]
    return flavor.get("name") or flavor.get("original_name") if isinstance(flavor, dict) else flavor


def show(cloud, server_id):
    return cloud.openstack("server", "show", server_id, "-f", "json")


def claims_of(server_id):
    """[(host, vcpus, memory_mb, local_gb, is a migration's)] of the server's claims."""
    return sorted((claim.node.host, claim.vcpus, claim.memory_mb, claim.local_gb, claim.migration_id is not None)
                  for claim in Claim.objects.filter(instance_id=server_id).select_related("node"))


def used(host):
    node = ComputeNode.objects.get(host=host)
    return node.vcpus_used, node.memory_mb_used, node.local_gb_used


def virtual_size(path):
    info = subprocess.run(["qemu-img", "info", "--output=json", str(path)], capture_output=True, text=True,
                          check=True).stdout
    return json.loads(info)["virtual-size"]


def events(cloud, server_id):
    """{action: [(event, result)]} of the server's actions, through the CLI."""
    found = {}
    for action in cloud.openstack("server", "event", "list", server_id, "-f", "json"):
        detail = cloud.openstack("server", "event", "show", server_id, action["Request ID"], "-f", "json")
        found.setdefault(action["Action"], [(event["event"], event["result"]) for event in detail["events"]])
    return found


def action(cloud, api, server_id, body, token=None):
    return api.post(f"/compute/v2.1/servers/{server_id}/action", json=body, token=token or cloud.token())


def test_resize_on_the_same_node_then_confirm(cloud, two_nodes, image, flavors):
    host = next(iter(two_nodes))
    server_id = boot_on(cloud, image, flavors["small"], host)
    before = used(host)

    assert "Complete" in cloud.openstack("server", "resize", "--flavor", flavors["big"], "--wait", server_id)
    shown = show(cloud, server_id)
    assert shown["status"] == "VERIFY_RESIZE" and flavor_name(shown).startswith("rz-big")
    assert shown["progress"] == 100
    # The new flavor is claimed beside the old one until the user decides.
    assert claims_of(server_id) == [(host, 1, 128, 1, False), (host, 2, 256, 2, True)]
    assert used(host) == (before[0] + 2, before[1] + 256, before[2] + 2)
    instance_dir = two_nodes[host] / host / "instances" / server_id
    assert virtual_size(instance_dir / "disk") == 2 * 2**30
    assert (instance_dir.parent / f"{server_id}_resize" / "disk").exists()

    cloud.openstack("server", "resize", "confirm", server_id)
    shown = show(cloud, server_id)
    assert shown["status"] == "ACTIVE" and flavor_name(shown).startswith("rz-big")
    assert claims_of(server_id) == [(host, 2, 256, 2, False)]
    assert used(host) == (before[0] + 1, before[1] + 128, before[2] + 1)
    wait_until(lambda: not (instance_dir.parent / f"{server_id}_resize").exists(), timeout=30,
               message="the files kept for a revert to be deleted")
    assert Migration.objects.get(instance_id=server_id).status == "confirmed"
    recorded = events(cloud, server_id)
    assert recorded["resize"] == [("conductor_migrate_server", "Success"), ("compute_resize_instance", "Success"),
                                  ("compute_finish_resize", "Success")]
    wait_until(lambda: events(cloud, server_id)["confirmResize"] == [("compute_confirm_resize", "Success")],
               timeout=30, message="the confirm event")


def test_resize_to_another_node_then_revert(cloud, two_nodes, image, flavors):
    source, dest = list(two_nodes)
    server_id = boot_on(cloud, image, flavors["small"], source)
    disk = two_nodes[source] / source / "instances" / server_id / "disk"
    original = disk.read_bytes()

    # The source may not take more: the new flavor has to go elsewhere.
    with only_enabled(dest):
        cloud.openstack("server", "resize", "--flavor", flavors["big"], "--wait", server_id)
    instance = Instance.objects.get(pk=server_id)
    assert (instance.vm_state, instance.host, instance.memory_mb) == (VmState.RESIZED, dest, 256)
    assert claims_of(server_id) == [(source, 1, 128, 1, False), (dest, 2, 256, 2, True)]
    assert virtual_size(two_nodes[dest] / dest / "instances" / server_id / "disk") == 2 * 2**30

    cloud.openstack("server", "resize", "revert", server_id)
    wait_until(lambda: show(cloud, server_id)["status"] == "ACTIVE", timeout=60, message="ACTIVE after revert")
    shown = show(cloud, server_id)
    assert flavor_name(shown).startswith("rz-small") and shown["progress"] == 0  # the resize undone
    instance = Instance.objects.get(pk=server_id)
    assert (instance.host, instance.vcpus, instance.memory_mb, instance.root_gb) == (source, 1, 128, 1)
    assert claims_of(server_id) == [(source, 1, 128, 1, False)]
    # The original disk is back; nothing of the resize is left on the destination.
    assert disk.read_bytes() == original and virtual_size(disk) == 1 * 2**30
    assert not (two_nodes[dest] / dest / "instances" / server_id).exists()
    assert Migration.objects.get(instance_id=server_id).status == "reverted"
    assert events(cloud, server_id)["revertResize"] == [("compute_revert_resize", "Success"),
                                                        ("compute_finish_revert_resize", "Success")]


def test_a_stopped_server_stays_stopped_through_resize_and_confirm(cloud, two_nodes, image, flavors):
    host = next(iter(two_nodes))
    server_id = boot_on(cloud, image, flavors["small"], host)
    cloud.openstack("server", "stop", server_id)
    wait_until(lambda: show(cloud, server_id)["status"] == "SHUTOFF", timeout=60, message="SHUTOFF")
    cloud.openstack("server", "resize", "--flavor", flavors["big"], "--wait", server_id)
    assert show(cloud, server_id)["OS-EXT-STS:power_state"] in (4, "Shutdown")
    cloud.openstack("server", "resize", "confirm", server_id)
    shown = show(cloud, server_id)
    assert shown["status"] == "SHUTOFF" and shown["OS-EXT-STS:power_state"] in (4, "Shutdown")
    cloud.openstack("server", "start", server_id)
    wait_until(lambda: show(cloud, server_id)["status"] == "ACTIVE", timeout=60, message="started after resize")


def test_no_room_for_the_new_flavor_leaves_the_server_as_it_was(cloud, api, two_nodes, image, flavors):
    host = next(iter(two_nodes))
    server_id = boot_on(cloud, image, flavors["small"], host)
    before = {node: used(node) for node in two_nodes}
    response = action(cloud, api, server_id, {"resize": {"flavorRef": flavors["huge"]}})
    assert response.status_code == 202, response.text

    def failed():
        return events(cloud, server_id).get("resize") == [("conductor_migrate_server", "Error")]

    wait_until(failed, timeout=30, message="the resize to fail in the scheduler")
    instance = Instance.objects.get(pk=server_id)
    assert (instance.vm_state, instance.task_state, instance.memory_mb) == (VmState.ACTIVE, None, 128)
    assert show(cloud, server_id)["status"] == "ACTIVE"
    assert "No valid host" in InstanceFault.objects.filter(instance_id=server_id).first().message
    assert claims_of(server_id) == [(host, 1, 128, 1, False)]
    assert {node: used(node) for node in two_nodes} == before


def test_a_failed_move_reverts_itself(cloud, api, control, image, flavors, tmp_path):
    """Two nodes that do not share a nodes directory: the destination
    cannot reach the source's disk, so the resize goes back on its own."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, (source,) = start_nodes(cloud, tmp_path / "a", 1, "rza")
    second, (dest,) = start_nodes(cloud, tmp_path / "b", 1, "rzb")
    try:
        server_id = boot_on(cloud, image, flavors["small"], source)
        with only_enabled(dest):
            response = action(cloud, api, server_id, {"resize": {"flavorRef": flavors["big"]}})
            assert response.status_code == 202, response.text
            wait_until(lambda: Migration.objects.filter(instance_id=server_id, status="reverted").exists(),
                       timeout=60, message="the failed resize to revert itself")
        assert Migration.objects.get(instance_id=server_id).dest_compute == dest
        instance = Instance.objects.get(pk=server_id)
        assert (instance.vm_state, instance.task_state, instance.host, instance.memory_mb) == (
            VmState.ACTIVE, None, source, 128)
        assert claims_of(server_id) == [(source, 1, 128, 1, False)]
        assert used(dest) == (0, 0, 0)
        assert "Resize failed" in InstanceFault.objects.filter(instance_id=server_id).first().message
        recorded = events(cloud, server_id)["resize"]
        assert ("compute_finish_resize", "Error") in recorded
        assert recorded[-1] == ("compute_finish_revert_resize", "Success")
        assert (tmp_path / "a" / "nodes" / source / "instances" / server_id / "disk").exists()
    finally:
        stop_nodes(first, [source])
        stop_nodes(second, [dest])


def test_concurrent_resizes_never_oversubscribe_a_node(cloud, api, control, image, flavors, tmp_path):
    """One node with 1 GiB: six 128 MiB servers (768 MiB) asking for 256 MiB
    each at once (old and new claimed together): exactly one fits."""
    worker, (host,) = start_nodes(cloud, tmp_path, 1, "rzc", memory_mb=1024)
    try:
        unlimited_quota(cloud)
        with only_enabled(host):
            ids = boot_at_once(cloud, [f"rzc-{index}" for index in range(6)], image, "m1.nano")
            assert {server.status for server in wait_settled(cloud, ids).values()} == {"ACTIVE"}
            # m1.nano (128 MiB) to rz-big (256 MiB): each resize claims 256 MiB more.
            with ThreadPoolExecutor(max_workers=6) as pool:
                codes = list(pool.map(lambda server_id: action(
                    cloud, api, server_id, {"resize": {"flavorRef": flavors["big"]}}).status_code, ids))
            assert codes == [202] * 6
            wait_until(lambda: not Instance.objects.filter(pk__in=ids, task_state__isnull=False).exists(),
                       timeout=60, message="every resize to end")
        states = sorted(Instance.objects.filter(pk__in=ids).values_list("vm_state", flat=True))
        assert states == [VmState.ACTIVE] * 5 + [VmState.RESIZED]
        node = ComputeNode.objects.get(host=host)
        assert node.memory_mb_used == 6 * 128 + 256 <= node.memory_mb
    finally:
        stop_nodes(worker, [host])


def test_resize_refuses_bad_requests_and_changes_nothing(cloud, api, two_nodes, image, flavors):
    host = next(iter(two_nodes))
    server_id = boot_on(cloud, image, flavors["small"], host)
    cases = [
        ({"resize": {}}, 400, "resize.flavorRef"),
        ({"resize": "big"}, 400, "resize.flavorRef"),
        ({"resize": {"flavorRef": "no-such-flavor"}}, 400, "no-such-flavor"),
        ({"resize": {"flavorRef": flavors["small"]}}, 400, "must change flavor"),
        ({"resize": {"flavorRef": flavors["big"], "color": "red"}}, 400, "color"),
    ]
    for body, status, words in cases:
        response = action(cloud, api, server_id, body)
        assert response.status_code == status and words in response.text, (body, response.text)
    confirm = action(cloud, api, server_id, {"confirmResize": None})
    assert confirm.status_code == 409 and "confirmResize" in confirm.text
    revert = action(cloud, api, server_id, {"revertResize": None})
    assert revert.status_code == 409
    other = action(cloud, api, server_id, {"resize": {"flavorRef": flavors["big"]}}, token=cloud.token("stratus-demo"))
    assert other.status_code == 404

    # A flavor with a smaller disk cannot be resized to.
    big_id = boot_on(cloud, image, flavors["big"], host)
    shrink = action(cloud, api, big_id, {"resize": {"flavorRef": flavors["small"]}})
    assert shrink.status_code == 400 and "cannot shrink" in shrink.text

    # Over quota: 403 naming the quota, nothing recorded.
    project = Instance.objects.get(pk=server_id).project_id
    cores_used = sum(Instance.objects.filter(project_id=project, deleted=False).values_list("vcpus", flat=True))
    cloud.openstack("quota", "set", "--cores", str(cores_used), "admin")
    try:
        over = action(cloud, api, server_id, {"resize": {"flavorRef": flavors["big"]}})
        assert over.status_code == 403 and "cores" in over.text
    finally:
        unlimited_quota(cloud)
    assert not Migration.objects.filter(instance_id=server_id).exists()
    instance = Instance.objects.get(pk=server_id)
    assert (instance.vm_state, instance.task_state, instance.memory_mb) == (VmState.ACTIVE, None, 128)
    assert [row["Action"] for row in cloud.openstack("server", "event", "list", server_id, "-f", "json")] == [
        "create"]


def test_deleting_a_resized_server_releases_both_claims_and_files(cloud, two_nodes, image, flavors):
    source, dest = list(two_nodes)
    server_id = boot_on(cloud, image, flavors["small"], source)
    with only_enabled(dest):
        cloud.openstack("server", "resize", "--flavor", flavors["big"], "--wait", server_id)
    assert len(claims_of(server_id)) == 2
    cloud.openstack("server", "delete", "--wait", server_id)
    assert claims_of(server_id) == []
    aside = two_nodes[source] / source / "instances" / f"{server_id}_resize"
    wait_until(lambda: not aside.exists(), timeout=30, message="the source's kept files to be deleted")
    assert not (two_nodes[dest] / dest / "instances" / server_id).exists()


def test_migration_list_shows_resizes_to_admins(cloud, api, two_nodes, image, flavors):
    host = next(iter(two_nodes))
    server_id = boot_on(cloud, image, flavors["small"], host)
    cloud.openstack("server", "resize", "--flavor", flavors["big"], "--wait", server_id)
    cloud.openstack("server", "resize", "confirm", server_id)
    rows = cloud.openstack("--os-compute-api-version", "2.59", "server", "migration", "list", "--server", server_id,
                           "-f", "json")
    assert len(rows) == 1
    row = rows[0]
    assert (row["Status"], row["Type"], row["Source Compute"], row["Dest Compute"]) == (
        "confirmed", "resize", host, host)
    assert (str(row["Old Flavor"]), str(row["New Flavor"])) == (flavors["small"], flavors["big"])

    # Paging (2.59): one per page, newest first, with a next link.
    headers = {"OpenStack-API-Version": "compute 2.59"}
    page = api.get("/compute/v2.1/os-migrations?limit=1", token=cloud.token(), headers=headers).json()
    assert len(page["migrations"]) == 1 and page["migrations_links"][0]["rel"] == "next"
    newest = Migration.objects.order_by("-created_at", "-id").first()
    assert page["migrations"][0]["uuid"] == str(newest.uuid)
    bad_marker = api.get("/compute/v2.1/os-migrations?marker=nope", token=cloud.token(), headers=headers)
    assert bad_marker.status_code == 400 and "marker" in bad_marker.text
    assert api.get("/compute/v2.1/os-migrations", token=cloud.token("stratus-demo")).status_code == 403
    nothing = api.get("/compute/v2.1/os-migrations?instance_uuid=not-a-uuid", token=cloud.token(), headers=headers)
    assert nothing.status_code == 200 and nothing.json()["migrations"] == []


def test_a_resize_left_waiting_is_confirmed_after_the_window(cloud, two_nodes, image, flavors, monkeypatch):
    from compute import conf
    from compute.tasks import reconcile

    host = next(iter(two_nodes))
    server_id = boot_on(cloud, image, flavors["small"], host)
    cloud.openstack("server", "resize", "--flavor", flavors["big"], "--wait", server_id)
    monkeypatch.setattr(conf, "RESIZE_CONFIRM_WINDOW", 3600)
    reconcile()
    assert show(cloud, server_id)["status"] == "VERIFY_RESIZE"  # not yet an hour

    Migration.objects.filter(instance_id=server_id).update(updated_at=timezone.now() - timedelta(hours=2))
    assert reconcile()["confirmed"] == 1
    shown = show(cloud, server_id)
    assert shown["status"] == "ACTIVE" and flavor_name(shown).startswith("rz-big")
    assert claims_of(server_id) == [(host, 2, 256, 2, False)]
    aside = two_nodes[host] / host / "instances" / f"{server_id}_resize"
    wait_until(lambda: not aside.exists(), timeout=30, message="the kept files to be deleted")
