"""A node removes what it still holds of instances that are no longer its
own (deleted while it was down, or placed on another host): their domains
are destroyed and their files deleted, on start and on the periodic sync.
Its own live instances keep running."""
import dataclasses
import uuid

import pytest

from compute.models import ComputeNode, Instance, Migration, VmState, flavor_snapshot
from compute.node import agent
from compute.node import tasks as node_tasks
from compute.virt import get_driver
from compute.virt.libvirt_driver import write_simulated_node
from tests.compute.nodes import NodeWorker, forget_hosts, make_instance, wait_until

SIMULATED = dict(STRATUS_SIMULATED_VCPUS="8", STRATUS_SIMULATED_MEMORY_MB="8192", STRATUS_SIMULATED_DISK_GB="100",
                 STRATUS_HEARTBEAT_INTERVAL="0.5", STRATUS_POWER_SYNC_INTERVAL="0.5")


@pytest.fixture
def live_db(django_db_setup, django_db_blocker):
    """Committed writes, seen by the worker processes."""
    with django_db_blocker.unblock():
        yield


def instance_files(node, instance):
    """The files a node keeps for an instance, made as a boot makes them."""
    node.disk_path(instance.pk).parent.mkdir(parents=True, exist_ok=True)
    node.disk_path(instance.pk).write_bytes(b"disk")
    return node.instance_dir(instance.pk)


def test_a_node_starting_removes_domains_and_files_that_are_no_longer_its_own(live_db, tmp_path):
    host, other = f"strays-{uuid.uuid4().hex[:6]}", f"strays-{uuid.uuid4().hex[:6]}"
    hypervisor = get_driver(f"test://{write_simulated_node(tmp_path / 'node.xml', 8, 8192)}", disk_gb=100)
    try:
        node = agent.Node(host, hypervisor)
        node.directory = tmp_path / host
        node.start()
        ComputeNode.objects.create(host=other, hypervisor_uri="test:///default", hypervisor_hostname=other,
                                   vcpus=8, memory_mb=8192, local_gb=100)
        live, deleted_meanwhile, moved, resizing_here = (make_instance(host) for _ in range(4))
        unknown_domain = f"instance-{uuid.uuid4()}"  # no row in this cloud: not ours to remove
        for instance in (live, deleted_meanwhile, moved, resizing_here):
            node.driver.spawn(node.domain_spec(instance), timeout=10)
            instance_files(node, instance)
        node.driver.spawn(dataclasses.replace(node.domain_spec(live), name=unknown_domain, uuid=str(uuid.uuid4())),
                          timeout=10)
        for instance in (live, deleted_meanwhile, moved, resizing_here):
            instance.update_state(vm_state=VmState.ACTIVE, task_state=None)

        # While the node is away: one is deleted (the API deletes the record
        # of a server on a down node), one is placed on another host, and
        # one is being resized from the other host to this one.
        deleted_meanwhile.mark_deleted()
        Instance.objects.filter(pk=moved.pk).update(host=other, node=ComputeNode.objects.get(host=other))
        Instance.objects.filter(pk=resizing_here.pk).update(host=other)
        Migration.objects.create(instance=resizing_here, project_id=resizing_here.project_id, user_id="u",
                                 status=Migration.Status.POST_MIGRATING, source_compute=other, source_node=other,
                                 dest_compute=host, dest_node=host, old_flavor=flavor_snapshot(resizing_here),
                                 new_flavor=flavor_snapshot(resizing_here), old_vm_state=VmState.ACTIVE)

        # The agent starts again; the hypervisor kept its guests.
        restarted = agent.Node(host, hypervisor)
        restarted.directory = node.directory
        restarted.start()
        names = set(hypervisor.domain_names())
        assert restarted.domain_name(deleted_meanwhile.pk) not in names
        assert restarted.domain_name(moved.pk) not in names
        assert not restarted.instance_dir(deleted_meanwhile.pk).exists()
        assert not restarted.instance_dir(moved.pk).exists()
        for kept in (live, resizing_here):
            assert restarted.domain_name(kept.pk) in names
            assert restarted.disk_path(kept.pk).exists()
        assert unknown_domain in names
        assert hypervisor.power_state(restarted.domain_name(live.pk)) == 1  # running
        live.refresh_from_db()
        assert (live.vm_state, live.deleted) == (VmState.ACTIVE, False)
    finally:
        hypervisor.close()
        forget_hosts([host, other])


def test_the_periodic_sync_removes_an_instance_deleted_or_moved_behind_a_running_node(live_db, tmp_path):
    prefix = f"strays-{uuid.uuid4().hex[:6]}-"
    nodes_dir = tmp_path / "nodes"
    worker = NodeWorker(["--simulate", 1, "--prefix", prefix], tmp_path / "worker.log",
                        STRATUS_NODES_DIR=str(nodes_dir), **SIMULATED)
    host, other = f"{prefix}1", f"{prefix}elsewhere"
    worker.start()
    try:
        node = agent.Node(host, None)
        node.directory = nodes_dir / host
        booted = []
        for _ in range(3):
            instance = make_instance(host)
            for task in (node_tasks.prepare_disk, node_tasks.spawn):
                task.apply_async(args=[str(instance.pk)], queue=f"compute.{host}").get(timeout=60)
            booted.append(instance)
        wait_until(lambda: ComputeNode.objects.get(host=host).running_vms == 3, message="three running domains")
        live, deleted, moved = booted
        assert all(node.disk_path(instance.pk).exists() for instance in booted)

        # Rows changed behind the node's back (a delete that ran while its
        # queue was unreachable, a host moved by an operator).
        deleted.mark_deleted()
        Instance.objects.filter(pk=moved.pk).update(host=other, node=None)

        wait_until(lambda: ComputeNode.objects.get(host=host).running_vms == 1, timeout=30,
                   message="the stray domains destroyed")
        wait_until(lambda: not node.instance_dir(deleted.pk).exists() and not node.instance_dir(moved.pk).exists(),
                   timeout=30, message="the stray files removed")
        assert node.disk_path(live.pk).exists()
        live.refresh_from_db()
        assert (live.vm_state, live.power_state, live.deleted) == (VmState.ACTIVE, 1, False)
        assert "removing instance" in worker.output()
    finally:
        worker.stop()
        forget_hosts([host, other])
