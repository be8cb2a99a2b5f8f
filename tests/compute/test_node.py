"""The node worker as a real process: registration and heartbeat, the
compute.<host> tasks on simulated nodes (libvirt's test driver), and a
SIGKILL mid-boot followed by a restart."""
import signal
import uuid

import pytest
from celery import chain
from django.db.models import Sum

from compute.models import (
    Claim, ComputeNode, Instance, InstanceActionEvent, PowerState, Service, VmState,
)
from compute.node import tasks
from tests.compute.nodes import NodeWorker, forget_hosts, make_instance, wait_until

SIMULATED = dict(STRATUS_SIMULATED_VCPUS="8", STRATUS_SIMULATED_MEMORY_MB="8192", STRATUS_SIMULATED_DISK_GB="100",
                 STRATUS_HEARTBEAT_INTERVAL="0.5", STRATUS_POWER_SYNC_INTERVAL="0.5")


@pytest.fixture
def live_db(django_db_setup, django_db_blocker):
    """Committed writes, seen by the worker processes."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def simulated(live_db, tmp_path):
    """Starts `manage.py nodeworker --simulate N`; yields a function that
    starts one and returns (worker, hosts)."""
    workers, hosts = [], []

    def start(count, concurrency=4):
        prefix = f"nodetest-{uuid.uuid4().hex[:6]}-"
        worker = NodeWorker(["--simulate", count, "--prefix", prefix, "--concurrency", concurrency],
                            tmp_path / f"{prefix}worker.log", STRATUS_NODES_DIR=str(tmp_path / "nodes"), **SIMULATED)
        workers.append(worker)
        names = [f"{prefix}{index}" for index in range(1, count + 1)]
        hosts.extend(names)
        worker.start()
        return worker, names

    yield start
    for worker in workers:
        worker.stop()
    forget_hosts(hosts)


def run(task, instance, host, *args):
    return task.apply_async(args=[str(instance.pk), *args], queue=f"compute.{host}").get(timeout=120)


def test_simulated_nodes_register_and_heartbeat(simulated):
    _worker, hosts = simulated(3)
    nodes = {node.host: node for node in ComputeNode.objects.filter(host__in=hosts)}
    assert sorted(nodes) == sorted(hosts)
    for node in nodes.values():
        assert (node.vcpus, node.memory_mb, node.local_gb) == (8, 8192, 100)
        assert node.hypervisor_uri.startswith("test://") and node.is_up
    services = Service.objects.filter(host__in=hosts, binary=Service.COMPUTE_BINARY)
    assert {service.host for service in services} == set(hosts)
    assert all(service.topic == f"compute.{service.host}" and service.is_up for service in services)
    first = {node.host: node.heartbeat_at for node in nodes.values()}
    wait_until(lambda: all(node.heartbeat_at > first[node.host]
                           for node in ComputeNode.objects.filter(host__in=hosts)), message="a second heartbeat")
    wait_until(lambda: all(service.report_count >= 2 for service in Service.objects.filter(host__in=hosts)),
               message="services reporting")


def test_boot_power_actions_and_delete_on_a_simulated_node(simulated):
    _worker, (host, other) = simulated(2)
    instance = make_instance(host, vcpus=2, memory_mb=512)
    run(tasks.prepare_disk, instance, host)
    run(tasks.spawn, instance, host)
    instance.refresh_from_db()
    assert (instance.vm_state, instance.task_state, instance.power_state) == (VmState.ACTIVE, None,
                                                                              PowerState.RUNNING)
    assert instance.launched_at is not None
    events = InstanceActionEvent.objects.filter(action__instance=instance).values_list("event", "result")
    assert list(events) == [("compute_prepare_disk", "Success"), ("compute_spawn", "Success")]
    # A message that reaches another node's queue is refused there.
    wrong_node = tasks.console_log.apply_async(args=[str(instance.pk)], queue=f"compute.{other}")
    with pytest.raises(Exception, match=f"is on host '{host}', not '{other}'"):
        wrong_node.get(timeout=60)

    for action, task_state, vm_state, power_state in [
        ("stop", "powering-off", VmState.STOPPED, PowerState.SHUTDOWN),
        ("start", "powering-on", VmState.ACTIVE, PowerState.RUNNING),
        ("pause", "pausing", VmState.PAUSED, PowerState.PAUSED),
        ("unpause", "unpausing", VmState.ACTIVE, PowerState.RUNNING),
        ("suspend", "suspending", VmState.SUSPENDED, PowerState.SUSPENDED),
        ("resume", "resuming", VmState.ACTIVE, PowerState.RUNNING),
        ("reboot_soft", "rebooting", VmState.ACTIVE, PowerState.RUNNING),
        ("reboot_hard", "rebooting_hard", VmState.ACTIVE, PowerState.RUNNING),
    ]:
        instance.begin(action)
        assert instance.task_state == task_state
        run(tasks.power_action, instance, host, action)
        instance.refresh_from_db()
        assert (instance.vm_state, instance.task_state, instance.power_state) == (vm_state, None, power_state), action
        # The message delivered again (late acknowledgement) changes nothing.
        run(tasks.power_action, instance, host, action)
        instance.refresh_from_db()
        assert (instance.vm_state, instance.power_state) == (vm_state, power_state), action

    node = ComputeNode.objects.get(host=host)
    assert (node.vcpus_used, node.memory_mb_used) == (2, 512)
    instance.begin("delete")
    run(tasks.destroy, instance, host)
    run(tasks.destroy, instance, host)  # a repeat is harmless
    instance.refresh_from_db()
    assert instance.deleted and instance.vm_state == VmState.DELETED
    node.refresh_from_db()
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (0, 0, 0)
    assert not Claim.objects.filter(instance=instance).exists()


def test_a_failing_spawn_raises_and_records_the_error(simulated, tmp_path):
    _worker, (host,) = simulated(1)
    instance = make_instance(host)
    run(tasks.prepare_disk, instance, host)
    disk = tmp_path / "nodes" / host / "instances" / str(instance.pk) / "disk"
    assert disk.exists()
    disk.unlink()  # lost between the steps: spawn has nothing to boot from
    with pytest.raises(Exception, match="has no disk"):
        run(tasks.spawn, instance, host)
    event = InstanceActionEvent.objects.get(action__instance=instance, event="compute_spawn")
    assert event.result == "Error" and "has no disk" in event.details
    instance.refresh_from_db()
    assert instance.vm_state == VmState.BUILDING  # the pipeline decides what comes next


def test_a_server_deleted_during_a_step_has_its_disk_removed_by_the_next_step(simulated, tmp_path):
    from workers.tasks import plumb_network

    _worker, (host,) = simulated(1)
    instance = make_instance(host)
    run(tasks.prepare_disk, instance, host)
    disk = tmp_path / "nodes" / host / "instances" / str(instance.pk) / "disk"
    assert disk.exists()
    # The delete came while the disk was being made: its node-side removal
    # found no disk yet, and the row is gone from every list.
    Instance.objects.filter(pk=instance.pk).update(deleted=True, vm_state=VmState.DELETED, task_state=None)
    plumb_network.apply_async(args=[str(instance.pk)], queue=f"network.{host}")  # keeps no result
    wait_until(lambda: not disk.exists(), message="the disk removed by the network step")
    events = InstanceActionEvent.objects.filter(action__instance=instance).values_list("event", flat=True)
    assert list(events) == ["compute_prepare_disk"]  # the network step did not begin


def test_a_spawn_delivered_again_after_the_boot_finished_changes_nothing(simulated):
    _worker, (host,) = simulated(1)
    instance = make_instance(host)
    run(tasks.prepare_disk, instance, host)
    run(tasks.spawn, instance, host)
    instance.refresh_from_db()
    launched_at = instance.launched_at
    assert instance.vm_state == VmState.ACTIVE and launched_at
    run(tasks.spawn, instance, host)  # the late acknowledgement's second delivery
    instance.refresh_from_db()
    assert (instance.vm_state, instance.task_state, instance.launched_at) == (VmState.ACTIVE, None, launched_at)
    assert InstanceActionEvent.objects.filter(action__instance=instance, event="compute_spawn").count() == 1


def test_sigkill_mid_boot_then_restart_leaves_nothing_building(simulated):
    worker, (host,) = simulated(1, concurrency=1)
    count = 12
    instances = [make_instance(host) for _ in range(count)]
    for instance in instances:
        chain(tasks.prepare_disk.si(str(instance.pk)).set(queue=f"compute.{host}"),
              tasks.spawn.si(str(instance.pk)).set(queue=f"compute.{host}")).apply_async()
    ids = [instance.pk for instance in instances]
    building = Instance.objects.filter(pk__in=ids, vm_state=VmState.BUILDING)
    wait_until(lambda: building.count() < count, interval=0.01, message="a first boot")
    worker.kill(signal.SIGKILL)
    assert building.exists(), "every boot finished before the kill: nothing was interrupted"

    worker.start()
    # The restarted worker gets back the messages its predecessor had taken
    # and finishes every boot (the steps are idempotent).
    wait_until(lambda: not building.exists(), message="no instance left building")
    active = Instance.objects.filter(pk__in=ids, vm_state=VmState.ACTIVE)
    assert active.count() == count, list(Instance.objects.filter(pk__in=ids).values_list("vm_state", "task_state"))
    # Claims: exactly the ACTIVE instances hold resources on the node.
    assert set(Claim.objects.filter(instance_id__in=ids).values_list("instance_id", flat=True)) == set(ids)
    node = ComputeNode.objects.get(host=host)
    totals = active.aggregate(vcpus=Sum("vcpus"), memory=Sum("memory_mb"))
    assert (node.vcpus_used, node.memory_mb_used) == (totals["vcpus"], totals["memory"])
    # The restarted node still runs the ones booted before the kill: power sync finds them running.
    wait_until(lambda: all(i.power_state == PowerState.RUNNING for i in active.all()), message="power sync")
    victim = active.first()
    victim.begin("delete")
    run(tasks.destroy, victim, host)
    assert Instance.objects.get(pk=victim.pk).deleted
    node.refresh_from_db()
    assert node.vcpus_used == totals["vcpus"] - victim.vcpus


def test_a_boot_whose_message_was_lost_goes_on_when_its_node_worker_starts_again(simulated):
    # A worker killed right after taking a message off its queue, before
    # Redis recorded it as taken, leaves that step nowhere.
    worker, (host,) = simulated(1)
    lost, waiting = make_instance(host), make_instance(host)
    for instance in (lost, waiting):
        run(tasks.prepare_disk, instance, host)
    worker.kill(signal.SIGKILL)
    # `waiting`'s next step is still queued: it must run once, not be sent twice.
    tasks.spawn.apply_async(args=[str(waiting.pk)], queue=f"compute.{host}", ignore_result=True)

    worker.start()
    ids = [lost.pk, waiting.pk]
    wait_until(lambda: Instance.objects.filter(pk__in=ids, vm_state=VmState.ACTIVE).count() == 2,
               message="both boots finished")
    events = InstanceActionEvent.objects.filter(action__instance_id__in=ids)
    for instance in (lost, waiting):
        names = list(events.filter(action__instance_id=instance.pk).values_list("event", flat=True))
        assert names.count("compute_prepare_disk") == 1 and names.count("compute_spawn") == 1, names
    assert f"the boot of {lost.pk} lost its message" in worker.output()
    assert f"the boot of {waiting.pk} lost its message" not in worker.output()


def test_one_process_runs_fifty_simulated_nodes_each_with_its_own_hypervisor(simulated):
    _worker, hosts = simulated(50, concurrency=8)
    assert ComputeNode.objects.filter(host__in=hosts, heartbeat_at__isnull=False).count() == 50
    assert Service.objects.filter(host__in=hosts, binary=Service.COMPUTE_BINARY).count() == 50
    booted = {}
    for host in (hosts[0], hosts[36], hosts[49]):
        instance = make_instance(host)
        run(tasks.prepare_disk, instance, host)
        run(tasks.spawn, instance, host)
        booted[host] = instance
    # Every node's capacity report counts its own domains only.
    wait_until(lambda: all(node.running_vms == (1 if node.host in booted else 0)
                           for node in ComputeNode.objects.filter(host__in=hosts)),
               message="running_vms per node in the heartbeats")


def test_restart_finishes_a_delete_and_a_stop_the_killed_worker_left(simulated):
    worker, (host,) = simulated(1)
    doomed, stopping, suspended = make_instance(host), make_instance(host), make_instance(host)
    for instance in (doomed, stopping, suspended):
        run(tasks.prepare_disk, instance, host)
        run(tasks.spawn, instance, host)
        instance.refresh_from_db()
    suspended.begin("suspend")
    run(tasks.power_action, suspended, host, "suspend")
    worker.kill(signal.SIGKILL)
    # The API accepted both requests, but their messages were lost with the worker.
    doomed.begin("delete")
    stopping.begin("stop")

    worker.start()
    doomed.refresh_from_db()
    stopping.refresh_from_db()
    assert doomed.deleted and not Claim.objects.filter(instance=doomed).exists()
    assert (stopping.vm_state, stopping.task_state, stopping.power_state) == (VmState.STOPPED, None,
                                                                              PowerState.SHUTDOWN)
    node = ComputeNode.objects.get(host=host)
    assert (node.vcpus_used, node.memory_mb_used) == (stopping.vcpus + suspended.vcpus,
                                                      stopping.memory_mb + suspended.memory_mb)
    # The untouched suspended instance is still suspended on the restarted node.
    first_heartbeat = node.heartbeat_at
    wait_until(lambda: ComputeNode.objects.get(host=host).heartbeat_at > first_heartbeat, message="a heartbeat")
    suspended.refresh_from_db()
    assert (suspended.vm_state, suspended.power_state) == (VmState.SUSPENDED, PowerState.SUSPENDED)


def test_the_agent_trims_the_image_cache_but_keeps_images_in_use(live_db, tmp_path):
    cache = tmp_path / "image-cache"
    cache.mkdir()
    prefix = f"nodetest-{uuid.uuid4().hex[:6]}-"
    host = f"{prefix}1"
    worker = NodeWorker(["--simulate", 1, "--prefix", prefix], tmp_path / "worker.log",
                        STRATUS_NODES_DIR=str(tmp_path / "nodes"), STRATUS_IMAGE_CACHE_DIR=str(cache),
                        STRATUS_IMAGE_CACHE_MAX_BYTES="0", STRATUS_IMAGE_CACHE_EVICT_INTERVAL="0.5", **SIMULATED)
    used, unused = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        worker.start()
        make_instance(host, image_id=used)
        # Two images in the cache as the image cache leaves them after a download.
        for image_id in (used, unused):
            (cache / image_id).write_bytes(b"\0" * 4096)
            (cache / f"{image_id}.json").write_text('{"format": "raw"}')
        wait_until(lambda: not (cache / unused).exists(), message="eviction of the unused image")
        assert (cache / used).exists()
    finally:
        worker.stop()
        forget_hosts([host])
