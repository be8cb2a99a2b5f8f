"""The boot pipeline, where the services meet:

    schedule (control) -> prepare_disk (compute.<host>) -> network -> volumes
    -> spawn (compute.<host>)

and the other chains that cross queues: resize (schedule on control, then
the source node sets the instance's files aside, then the destination
makes the new domain) and its revert (destination, then source).

Work is published only after the transaction that wrote its rows commits
(`transaction.on_commit`), so no worker picks up an instance it cannot see
yet. Node-side tasks are named, not imported: the API and control side
never load hypervisor drivers.

A failing step's errback (`compute.tasks.boot_step_failed`, on the control
queue) rolls back what the boot holds and reschedules or ends it in ERROR."""
import logging
import time

from celery import chain
from celery.exceptions import TimeoutError as ResultTimeout
from django.db import transaction
from kombu.exceptions import OperationalError

from compute.models import BOOT_STEPS
from workers import queues
from workers.celery import app

log = logging.getLogger(__name__)

SCHEDULE = "compute.tasks.schedule_instance"
PREPARE_DISK = "compute.node.tasks.prepare_disk"
SPAWN = "compute.node.tasks.spawn"
DESTROY = "compute.node.tasks.destroy"
CLEANUP = "compute.node.tasks.cleanup"
POWER_ACTION = "compute.node.tasks.power_action"
REBUILD = "compute.node.tasks.rebuild"
SNAPSHOT = "compute.node.tasks.snapshot_instance"
SHELVE = "compute.node.tasks.shelve_instance"
SHELVE_OFFLOAD = "compute.node.tasks.shelve_offload_instance"
UNSHELVE = "compute.node.tasks.unshelve_instance"
SCHEDULE_UNSHELVE = "compute.tasks.schedule_unshelve"
SCHEDULE_EVACUATE = "compute.tasks.schedule_evacuate"
EVACUATE = "compute.node.tasks.evacuate_instance"
CONSOLE_LOG = "compute.node.tasks.console_log"
DIAGNOSTICS = "compute.node.tasks.diagnostics"
VNC_ADDRESS = "compute.node.tasks.vnc_address"
ATTACH_INTERFACE = "compute.node.tasks.attach_interface"
DETACH_INTERFACE = "compute.node.tasks.detach_interface"
ATTACH_VOLUME = "compute.node.tasks.attach_volume"
DETACH_VOLUME = "compute.node.tasks.detach_volume"
PLUMB_NETWORK = "workers.tasks.plumb_network"
ATTACH_VOLUMES = "workers.tasks.attach_volumes"
BOOT_STEP_FAILED = "compute.tasks.boot_step_failed"
SCHEDULE_RESIZE = "compute.tasks.schedule_resize"
RESIZE_INSTANCE = "compute.node.tasks.resize_instance"
FINISH_RESIZE = "compute.node.tasks.finish_resize"
REVERT_RESIZE = "compute.node.tasks.revert_resize"
FINISH_REVERT_RESIZE = "compute.node.tasks.finish_revert_resize"
CONFIRM_RESIZE = "compute.node.tasks.confirm_resize"
RESIZE_STEP_FAILED = "compute.tasks.resize_step_failed"


def _send(name, args, queue, **options):
    return app.send_task(name, args=args, queue=queue, routing_key=queue, **options)


def boot(instance_ids):
    """Starts the boot of each instance once the current transaction commits.
    The instances are recorded by then: if the broker cannot take the
    messages, the reconciler sends them again (compute.tasks.reconcile)."""
    ids = [str(instance_id) for instance_id in instance_ids]

    def publish():
        try:
            for instance_id in ids:
                schedule(instance_id)
        except OperationalError as error:
            log.warning("could not start the boot of %d instance(s) now, the reconciler will: %s", len(ids), error)

    transaction.on_commit(publish)


def schedule(instance_id):
    """Asks a control worker to place the instance (a repeat is harmless)."""
    _send(SCHEDULE, (str(instance_id),), queues.CONTROL)


def _on_node(name, args, host, queue=None):
    """A step for `host`'s queue (compute.<host> unless `queue` says). No
    step's result is kept (a failed step's error is in its event): storing
    results would cost queries on every step of every boot."""
    queue = queue or queues.compute(host)
    return app.signature(name, args=args, immutable=True, queue=queue, routing_key=queue, ignore_result=True)


def _on_error(chained, name, **kwargs):
    """`name` on the control queue when a step of `chained` fails. An
    errback with one positional parameter is published to its queue with
    the failed task's id (rather than run inside the failed worker)."""
    chained.on_error(app.signature(name, kwargs=kwargs, queue=queues.CONTROL, routing_key=queues.CONTROL))
    return chained


def _to_node_after_commit(name, args, host):
    transaction.on_commit(lambda: _send(name, args, queues.compute(host), ignore_result=True))


# What each boot step after scheduling runs on the chosen host: (task, the
# host's queue). Their order is compute.models.BOOT_STEPS'. The network step
# runs on the node's network.<host> queue (its node worker consumes it beside
# compute.<host>); the volume step on the node's queue, which waits for the
# volume workers' creates.
NODE_BOOT_TASKS = {
    "prepare_disk": (PREPARE_DISK, queues.compute),
    "network": (PLUMB_NETWORK, queues.network),
    "volumes": (ATTACH_VOLUMES, queues.compute),
    "spawn": (SPAWN, queues.compute),
}


def run_on_node(instance_id, host, first_step="prepare_disk", leave_out=()):
    """The steps after scheduling, from `first_step` on, on the chosen
    host, as one chain; `leave_out` names steps the boot has nothing for
    (each step checks that again itself: a chain with every step is never
    wrong, only slower). Any step that raises stops the chain and calls
    boot_step_failed."""
    args = (str(instance_id),)
    names = [step.name for step in BOOT_STEPS if step.name in NODE_BOOT_TASKS]
    steps = []
    for name in names[names.index(first_step):]:
        if name not in leave_out:
            task, queue = NODE_BOOT_TASKS[name]
            steps.append(_on_node(task, args, host, queue(host)))
    return _on_error(chain(*steps), BOOT_STEP_FAILED, instance_id=args[0], host=host).apply_async()


def reschedule(instance_id, failed_host):
    """After a failed step: clean the failed host, schedule again."""
    instance_id = str(instance_id)

    def publish():
        if failed_host:
            _send(CLEANUP, (instance_id,), queues.compute(failed_host), ignore_result=True)
        schedule(instance_id)

    transaction.on_commit(publish)


def cleanup(instance_id, host):
    _to_node_after_commit(CLEANUP, (str(instance_id),), host)


def destroy(instance_id, host):
    _to_node_after_commit(DESTROY, (str(instance_id),), host)


def power_action(instance_id, host, action):
    _to_node_after_commit(POWER_ACTION, (str(instance_id), action), host)


def rebuild(instance_id, host):
    _to_node_after_commit(REBUILD, (str(instance_id),), host)


def snapshot(instance_id, host, image_id, rotation=None):
    """The instance's node copies its disk into image `image_id` (a backup
    when `rotation` is given: older ones past it are then deleted)."""
    args = (str(instance_id), str(image_id)) if rotation is None else (str(instance_id), str(image_id), rotation)
    _to_node_after_commit(SNAPSHOT, args, host)


def shelve(instance_id, host, offload):
    """The instance's node stops it, stores its disk (in the image the
    instance's shelved_image_id names) and, with `offload`, leaves it."""
    _to_node_after_commit(SHELVE, (str(instance_id), bool(offload)), host)


def shelve_offload(instance_id, host):
    _to_node_after_commit(SHELVE_OFFLOAD, (str(instance_id),), host)


def unshelve(instance_id, host=None):
    """On the instance's host (shelved), or through the scheduler first
    (offloaded: `host` None)."""
    if host:
        _to_node_after_commit(UNSHELVE, (str(instance_id),), host)
    else:
        transaction.on_commit(lambda: _send(SCHEDULE_UNSHELVE, (str(instance_id),), queues.CONTROL,
                                            ignore_result=True))


def evacuate(instance_id, migration_id, force=False):
    """A control worker places the evacuated instance on another host
    (`force`: the one the migration names, whatever the filters say), then
    that node makes it again."""
    args = (str(instance_id), str(migration_id), bool(force))
    transaction.on_commit(lambda: _send(SCHEDULE_EVACUATE, args, queues.CONTROL, ignore_result=True))


def evacuate_on_node(instance_id, migration_id, host):
    _to_node_after_commit(EVACUATE, (str(instance_id), str(migration_id)), host)


class NodeDidNotAnswer(Exception):
    """A node call's answer did not come within its timeout."""

    def __init__(self, host, timeout):
        super().__init__(f"Compute host {host} did not answer within {timeout:g} s.")
        self.host = host


def _call_node(name, args, host, timeout):
    """Runs a task on `host`'s node and waits at most `timeout` seconds for
    its answer (the node's own error is raised here). The message expires
    with the wait: a node that comes back later does not run a call nobody
    waits for any more."""
    result = _send(name, args, queues.compute(host), expires=timeout)
    deadline = time.monotonic() + timeout
    # The result backend is polled: from 5 ms, doubling up to Celery's
    # 0.5 s, so a call the node answers in tens of milliseconds is not
    # kept waiting for a fixed half-second poll (few polls for long ones).
    delay = 0.005
    try:
        while not result.ready():
            left = deadline - time.monotonic()
            if left <= 0:
                raise NodeDidNotAnswer(host, timeout)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.5)
        return result.get(timeout=max(deadline - time.monotonic(), 1), disable_sync_subtasks=False)
    except ResultTimeout:
        raise NodeDidNotAnswer(host, timeout) from None
    finally:
        result.forget()


def console_log(instance_id, host, length, timeout):
    """The instance's console log, from its node."""
    return _call_node(CONSOLE_LOG, (str(instance_id), length), host, timeout)


def diagnostics(instance_id, host, timeout):
    """The hypervisor's counters of the instance's domain, from its node."""
    return _call_node(DIAGNOSTICS, (str(instance_id),), host, timeout)


def vnc_address(instance_id, host, timeout):
    """{"host", "port"} of the instance's VNC server, from its node's
    hypervisor."""
    return _call_node(VNC_ADDRESS, (str(instance_id),), host, timeout)


def attach_interface(instance_id, host, port_id, timeout):
    """Hot-plugs the port into the instance's domain on its node."""
    return _call_node(ATTACH_INTERFACE, (str(instance_id), str(port_id)), host, timeout)


def detach_interface(instance_id, host, port_id, timeout):
    """Unplugs the port's NIC from the instance's domain on its node."""
    return _call_node(DETACH_INTERFACE, (str(instance_id), str(port_id)), host, timeout)


def attach_volume(instance_id, host, attachment_id, timeout):
    """Connects the reserved attachment on the instance's node and
    hot-plugs its disk; the node completes the attachment."""
    return _call_node(ATTACH_VOLUME, (str(instance_id), str(attachment_id)), host, timeout)


def detach_volume(instance_id, host, attachment_id):
    """Unplugs the attachment's disk on the instance's node once the current
    transaction commits; the node removes the attachment when the guest has
    let go (which may take a while: the API does not wait)."""
    _to_node_after_commit(DETACH_VOLUME, (str(instance_id), str(attachment_id)), host)


def resize(instance_id, migration_id):
    """Starts a resize once the current transaction commits: the scheduler
    places the new flavor first."""
    args = (str(instance_id), migration_id)
    transaction.on_commit(lambda: _send(SCHEDULE_RESIZE, args, queues.CONTROL, ignore_result=True))


def _node_chain(instance_id, migration_id, first, second, stage):
    """Two node steps as a chain; a failing one calls resize_step_failed,
    which reverts (stage "resize") or ends in ERROR (stage "revert")."""
    return _on_error(chain(first, second), RESIZE_STEP_FAILED, instance_id=str(instance_id),
                     migration_id=migration_id, stage=stage)


def run_resize(instance_id, migration_id, source, dest):
    """After the claim on `dest` committed: the source stops the domain and
    sets its files aside, then the destination makes the resized domain."""
    args = (str(instance_id), migration_id)
    return _node_chain(instance_id, migration_id, _on_node(RESIZE_INSTANCE, args, source),
                       _on_node(FINISH_RESIZE, args, dest), "resize").apply_async()


def revert_resize(instance_id, migration_id, source, dest, action):
    """The destination removes the resized domain, then the source brings
    back the one it set aside. `action` is the instance action its events
    are recorded under (revertResize, or resize when a failed resize
    undoes itself)."""
    args = (str(instance_id), migration_id, action)
    steps = _node_chain(instance_id, migration_id, _on_node(REVERT_RESIZE, args, dest),
                        _on_node(FINISH_REVERT_RESIZE, args, source), "revert")
    transaction.on_commit(steps.apply_async)


def confirm_resize(instance_id, migration_id, source):
    """The source deletes the files it kept for a revert."""
    _to_node_after_commit(CONFIRM_RESIZE, (str(instance_id), migration_id), source)
