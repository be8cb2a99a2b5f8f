"""The scheduler and reconciler against PostgreSQL itself: many threads,
each its own database connection and transaction, claiming at once; the
"No valid host" explanation; server-group policies; and the reconciler
ending what is stuck."""
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from compute import conf
from compute.models import (
    Claim, ComputeNode, Instance, InstanceFault, Migration, ServerGroup, TaskState, VmState, claim_resources,
    flavor_snapshot,
)
from compute.scheduler.manager import NoValidHost, schedule
from compute.tasks import reconcile

pytestmark = pytest.mark.live


@pytest.fixture
def live_db(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def rows(live_db):
    """Makes nodes and instances that are committed (other connections see
    them) and deletes them afterwards."""
    made = {"nodes": [], "instances": [], "groups": []}
    zone = f"zone-{uuid.uuid4().hex[:6]}"

    class Rows:
        availability_zone = zone

        def node(self, memory_mb=1024, vcpus=16, alive=True, disabled=False, availability_zone=zone, **extra):
            node = ComputeNode.objects.create(
                host=f"sched-{uuid.uuid4().hex[:8]}", hypervisor_uri="test:///default",
                hypervisor_hostname="x", vcpus=vcpus, memory_mb=memory_mb, local_gb=100,
                cpu_allocation_ratio=1.0, ram_allocation_ratio=1.0, disk_allocation_ratio=1.0,
                availability_zone=availability_zone, disabled=disabled,
                heartbeat_at=timezone.now() if alive else timezone.now() - timedelta(hours=1), **extra)
            made["nodes"].append(node.pk)
            return node

        def instance(self, memory_mb=128, vcpus=1, group=None, **extra):
            fields = dict(name="sched", project_id="sched-tests", user_id="u", flavor_id_at_boot="x",
                          flavor_name="x", vcpus=vcpus, memory_mb=memory_mb, root_gb=1,
                          availability_zone=zone, server_group=group, vm_state=VmState.BUILDING,
                          task_state=TaskState.SCHEDULING)
            fields.update(extra)
            instance = Instance.objects.create(**fields)
            made["instances"].append(instance.pk)
            return instance

        def group(self, policy):
            group = ServerGroup.objects.create(name=policy, project_id="sched-tests", user_id="u", policy=policy)
            made["groups"].append(group.pk)
            return group

    yield Rows()
    Instance.objects.filter(pk__in=made["instances"]).delete()
    ComputeNode.objects.filter(pk__in=made["nodes"]).delete()
    ServerGroup.objects.filter(pk__in=made["groups"]).delete()


def schedule_all_at_once(instances):
    """Schedules every instance in its own thread, all released together."""
    results = {}
    barrier = threading.Barrier(len(instances))

    def run(instance):
        barrier.wait()
        try:
            results[instance.pk] = schedule(instance).host
        except NoValidHost as error:
            results[instance.pk] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(instance,)) for instance in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_claims_never_oversubscribe(rows):
    nodes = [rows.node(memory_mb=640) for _ in range(3)]  # room for 5 of 128 MiB each
    instances = [rows.instance() for _ in range(24)]
    results = schedule_all_at_once(instances)
    placed = [host for host in results.values() if isinstance(host, str)]
    refused = [error for error in results.values() if isinstance(error, NoValidHost)]
    assert (len(placed), len(refused)) == (15, 9)
    for node in nodes:
        node.refresh_from_db()
        claimed = Claim.objects.filter(node=node).aggregate(memory=Sum("memory_mb"))["memory"]
        assert node.memory_mb_used == claimed == 640
        assert Instance.objects.filter(node=node, host=node.host).count() == 5
    assert "RamFilter removed 3" in str(refused[0])


def test_no_valid_host_says_which_filter_removed_how_many(rows):
    rows.node(disabled=True)
    rows.node(alive=False)
    rows.node(availability_zone="elsewhere")
    full = rows.node(memory_mb=256)
    claim_resources(rows.instance(memory_mb=256), full)
    with pytest.raises(NoValidHost) as refused:
        schedule(rows.instance())
    message = str(refused.value)
    assert "ComputeFilter removed" in message and "AvailabilityZoneFilter removed" in message
    assert "RamFilter removed 1" in message


def test_server_group_policies(rows):
    hosts = {rows.node().host, rows.node().host}
    apart = rows.group("anti-affinity")
    first, second, third = (rows.instance(group=apart) for _ in range(3))
    placed = {schedule(first).host, schedule(second).host}
    assert placed == hosts
    with pytest.raises(NoValidHost, match="ServerGroupAntiAffinityFilter removed 2"):
        schedule(third)

    together = rows.group("affinity")
    members = [rows.instance(group=together) for _ in range(4)]
    assert len(set(schedule_all_at_once(members).values())) == 1


def test_reconciler_ends_what_is_stuck_and_releases_claims(rows):
    node = rows.node()
    long_ago = timezone.now() - timedelta(seconds=conf.TASK_STATE_DEADLINE + 60)
    stuck = rows.instance(task_state=TaskState.SPAWNING, host=node.host, node=node)
    assert claim_resources(stuck, node) is not None
    fresh = rows.instance(task_state=TaskState.SPAWNING, host=node.host, node=node)
    assert claim_resources(fresh, node) is not None
    unscheduled_delete = rows.instance(task_state=TaskState.DELETING)
    Instance.objects.filter(pk__in=[stuck.pk, unscheduled_delete.pk]).update(updated_at=long_ago)

    reconcile()

    stuck.refresh_from_db()
    assert (stuck.vm_state, stuck.task_state) == (VmState.ERROR, None)
    assert "did not finish within" in InstanceFault.objects.filter(instance=stuck).latest("created_at").message
    assert not Claim.objects.filter(instance=stuck).exists()
    fresh.refresh_from_db()
    assert (fresh.vm_state, fresh.task_state) == (VmState.BUILDING, TaskState.SPAWNING)
    unscheduled_delete.refresh_from_db()
    assert unscheduled_delete.deleted
    node.refresh_from_db()
    assert node.memory_mb_used == 128  # only `fresh` holds a claim

    # A node that stops heartbeating has its builds ended at once.
    ComputeNode.objects.filter(pk=node.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    reconcile()
    fresh.refresh_from_db()
    assert fresh.vm_state == VmState.ERROR
    assert "stopped answering" in InstanceFault.objects.filter(instance=fresh).latest("created_at").message
    node.refresh_from_db()
    assert node.memory_mb_used == 0


def test_reconciler_undoes_a_resize_whose_scheduling_was_lost(rows):
    """A resize whose message never reached a scheduler: past the deadline
    the instance is as it was (not ERROR), the new claim given back."""
    node = rows.node(memory_mb=2048)
    server = rows.instance(vm_state=VmState.ACTIVE, task_state=None, host=node.host, node=node)
    assert claim_resources(server, node) is not None
    old, new = flavor_snapshot(server), dict(flavor_snapshot(server), id="bigger", name="bigger", memory_mb=512)
    server.update_state(expected_task_state=None, task_state=TaskState.RESIZE_PREP)
    migration = Migration.objects.create(instance=server, project_id=server.project_id, user_id="u",
                                         source_compute=node.host, source_node=node.host, old_flavor=old,
                                         new_flavor=new, old_vm_state=VmState.ACTIVE)
    assert claim_resources(server, node, migration) is not None
    node.refresh_from_db()
    assert node.memory_mb_used == 128 + 512
    Instance.objects.filter(pk=server.pk).update(
        updated_at=timezone.now() - timedelta(seconds=conf.TASK_STATE_DEADLINE + 60))

    reconcile()

    server.refresh_from_db()
    assert (server.vm_state, server.task_state, server.memory_mb) == (VmState.ACTIVE, None, 128)
    assert "Resize did not finish" in InstanceFault.objects.filter(instance=server).latest("created_at").message
    migration.refresh_from_db()
    assert migration.status == Migration.Status.ERROR
    node.refresh_from_db()
    assert node.memory_mb_used == 128
    assert list(Claim.objects.filter(instance=server).values_list("migration", flat=True)) == [None]
