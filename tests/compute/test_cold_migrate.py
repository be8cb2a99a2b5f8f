"""Cold migration (an admin's `migrate`) through the real CLI, a real
control worker and two simulated nodes sharing a nodes directory: the
server moves to the other node with its flavor, through the resize's
steps, recorded as action `migrate`; confirm keeps it there, revert brings
it back. Members are refused, and so are unknown hosts and its own."""
import uuid

import pytest

from compute.models import Claim, Instance, Migration, VmState
from tests.compute import pipeline
from tests.compute.nodes import wait_until
from tests.compute.pipeline import boot_at_once, start_nodes, stop_nodes, unlimited_quota, upload_tiny_image, \
    wait_settled

live_db, control = pipeline.live_db, pipeline.control

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def two_nodes(cloud, control, tmp_path_factory):
    """Two simulated nodes sharing one nodes directory; {host: that directory}."""
    directory = tmp_path_factory.mktemp("migrate")
    worker, hosts = start_nodes(cloud, directory, 2, "migrate")
    yield {host: directory / "nodes" for host in hosts}
    stop_nodes(worker, hosts)


def boot(cloud, image):
    unlimited_quota(cloud)
    server_id, = boot_at_once(cloud, [f"mig-{uuid.uuid4().hex[:6]}"], image, "m1.nano")
    assert wait_settled(cloud, [server_id])[server_id].status == "ACTIVE"
    return server_id


def settled(cloud, server_id, status):
    shown = cloud.openstack("server", "show", server_id, "-f", "json")
    return shown["status"] == status and not shown["OS-EXT-STS:task_state"] and shown


def test_migrate_moves_the_server_to_the_other_node_and_confirm_keeps_it_there(cloud, two_nodes, image):
    server_id = boot(cloud, image)
    source = Instance.objects.get(pk=server_id).host
    other = next(host for host in two_nodes if host != source)
    cloud.openstack("server", "migrate", "--wait", server_id)
    shown = wait_until(lambda: settled(cloud, server_id, "VERIFY_RESIZE"), timeout=120, message="VERIFY_RESIZE")
    assert shown["OS-EXT-SRV-ATTR:host"] == other and Instance.objects.get(pk=server_id).flavor_name == "m1.nano"
    migration = Migration.objects.get(instance_id=server_id)
    assert (migration.migration_type, migration.source_compute, migration.dest_compute) == ("migration", source,
                                                                                             other)
    assert (two_nodes[other] / other / "instances" / server_id / "disk").exists()
    listed = cloud.openstack("server", "migration", "list", "--server", server_id, "-f", "json")
    assert [row["Type"] for row in listed] == ["migration"]

    cloud.openstack("server", "resize", "confirm", server_id)
    wait_until(lambda: settled(cloud, server_id, "ACTIVE"), timeout=60, message="ACTIVE after confirm")
    instance = Instance.objects.get(pk=server_id)
    assert instance.host == other and instance.vm_state == VmState.ACTIVE
    assert list(Claim.objects.filter(instance_id=server_id).values_list("node__host", flat=True)) == [other]
    wait_until(lambda: not (two_nodes[source] / source / "instances" / f"{server_id}_resize").exists(), timeout=30,
               message="the source's files removed")
    actions = [row["Action"] for row in cloud.openstack("server", "event", "list", server_id, "-f", "json")]
    assert actions == ["confirmResize", "migrate", "create"]
    events = cloud.openstack("server", "event", "show", server_id,
                             cloud.openstack("server", "event", "list", server_id, "-f", "json")[1]["Request ID"],
                             "-f", "json")["events"]
    assert {event["event"] for event in events} == {"conductor_migrate_server", "compute_resize_instance",
                                                    "compute_finish_resize"}


def test_revert_brings_a_stopped_server_back_to_its_node_and_a_host_can_be_named(cloud, api, two_nodes, image):
    server_id = boot(cloud, image)
    source = Instance.objects.get(pk=server_id).host
    other = next(host for host in two_nodes if host != source)
    cloud.openstack("server", "stop", server_id)
    wait_until(lambda: settled(cloud, server_id, "SHUTOFF"), timeout=60, message="SHUTOFF")
    cloud.openstack("server", "migrate", "--host", other, "--wait", server_id)
    wait_until(lambda: settled(cloud, server_id, "VERIFY_RESIZE"), timeout=120, message="VERIFY_RESIZE")
    assert Instance.objects.get(pk=server_id).host == other
    cloud.openstack("server", "resize", "revert", server_id)
    wait_until(lambda: settled(cloud, server_id, "SHUTOFF"), timeout=120, message="SHUTOFF after revert")
    assert Instance.objects.get(pk=server_id).host == source
    assert list(Claim.objects.filter(instance_id=server_id).values_list("node__host", flat=True)) == [source]


def test_members_unknown_hosts_and_the_own_host_are_refused(cloud, api, two_nodes, image):
    server_id = boot(cloud, image)
    source = Instance.objects.get(pk=server_id).host

    def migrate(body, token=None, version="2.56"):
        return api.post(f"/compute/v2.1/servers/{server_id}/action", json={"migrate": body},
                        token=token or cloud.token(), headers={"OpenStack-API-Version": f"compute {version}"})

    demo_server = cloud.connect("stratus-demo").compute.create_server(
        name=f"mig-{uuid.uuid4().hex[:6]}", image_id=image, networks="none",
        flavor_id=cloud.connect().compute.find_flavor("m1.nano", ignore_missing=False).id)
    wait_settled(cloud, [demo_server.id])
    member = api.post(f"/compute/v2.1/servers/{demo_server.id}/action", json={"migrate": None},
                      token=cloud.token("stratus-demo"))
    assert member.status_code == 403, member.content
    assert migrate(None, token=cloud.token("stratus-demo")).status_code == 404
    unknown = migrate({"host": "no-such-host"})
    assert unknown.status_code == 400 and "no-such-host" in unknown.text
    own = migrate({"host": source})
    assert own.status_code == 400 and source in own.text
    too_early = migrate({"host": source}, version="2.55")
    assert too_early.status_code == 400 and "host" in too_early.text
    assert not Migration.objects.filter(instance_id__in=[server_id, demo_server.id]).exists()
    assert Instance.objects.get(pk=server_id).task_state is None
    cloud.connect("stratus-demo").compute.delete_server(demo_server.id)
