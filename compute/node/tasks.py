"""The tasks of queue compute.<host>, run by that host's node worker.

Each takes an instance id, may run twice (late acknowledgement: a worker
killed mid-task gets the message again, or the node's start-up reconciles
the instance), writes state only through compute.models' helpers, and
raises on failure: the pipeline decides between reschedule and error.

The node a task is for is the host of the queue it came from; one process
may serve many (simulated) nodes."""
import logging

from celery import shared_task
from django.utils import timezone

from compute import block_devices
from compute.models import (
    ACTIONS, Instance, Migration, PowerState, TaskState, UnexpectedState, VmState, finish_action, record_event,
)
from compute.node import agent, conf, resize
from compute.virt import VirtError

log = logging.getLogger(__name__)


class WrongNode(Exception):
    """The task reached a worker that does not serve the instance's node."""


def _queue_host(task):
    """The host of the queue the task came from (compute.<host> or
    network.<host>), or None."""
    routing_key = (task.request.delivery_info or {}).get("routing_key") or ""
    for prefix in ("compute.", "network."):
        if routing_key.startswith(prefix):
            return routing_key.removeprefix(prefix)
    return None


def _node(task, host=None):
    """The node the task is for: the host of its queue, else `host`."""
    host = _queue_host(task) or host
    node = agent.NODES.get(host)
    if node is None:
        raise WrongNode(f"This worker serves {', '.join(agent.NODES) or 'no node'}, not {host!r}.")
    return node


def _node_and_instance(task, instance_id):
    """(this task's node, the instance), the instance on that node."""
    instance = Instance.objects.get(pk=instance_id)
    node = _node(task, instance.host)
    if instance.host != node.host:
        raise WrongNode(f"Instance {instance_id} is on host {instance.host!r}, not {node.host!r}.")
    return node, instance


def enter_boot_step(task, instance_id, step):
    """(this task's node, the instance) once the instance has entered boot
    step `step` on that node, read and written by one statement. Raises
    WrongNode, or UnexpectedState when the boot moved on. An instance
    deleted meanwhile has what the earlier steps made here removed: a
    delete that ran during a step cannot have removed what that step was
    still making."""
    host = _queue_host(task) or Instance.objects.filter(pk=instance_id).values_list("host", flat=True).first()
    node = _node(task, host)
    instance = Instance.enter_boot_step(instance_id, step, node.host)
    if instance is not None:
        return node, instance
    actual = Instance.objects.filter(pk=instance_id).values(
        "host", "vm_state", "task_state", "deleted", "launched_at").first()
    if actual is None or actual["deleted"]:
        node.remove_instance(instance_id)
    elif actual["host"] != node.host:
        raise WrongNode(f"Instance {instance_id} is on host {actual['host']!r}, not {node.host!r}.")
    raise UnexpectedState(instance_id, f"building, in boot step {step} on {node.host}", actual or "gone")


@shared_task(bind=True, name="compute.node.tasks.prepare_disk")
def prepare_disk(self, instance_id):
    """The instance's disk: the image fetched into this node's cache once,
    and a qcow2 overlay on it."""
    from images.cache import ImageCache

    node, instance = enter_boot_step(self, instance_id, "prepare_disk")
    from_volume = block_devices.boots_from_volume(instance)  # then the volume step brings the root disk
    # Only a download is worth showing under way: a disk on an image cached
    # here is a file copy, and its event is written once, finished.
    quick = from_volume or not instance.image_id or ImageCache().holds(instance.image_id)
    with record_event(instance, "create", "compute_prepare_disk", host=node.host, quick=quick):
        if not from_volume:
            agent.create_disk(node, instance)
    return str(instance_id)


def _booted_already(task, instance_id, actual):
    """Whether a spawn delivered again finds the boot done (the worker
    died before the acknowledgement): ACTIVE, launched, its domain here."""
    if not isinstance(actual, dict) or actual["vm_state"] != VmState.ACTIVE or not actual["launched_at"]:
        return False
    node = _node(task, actual["host"])
    return node.driver.exists(node.domain_name(instance_id))


@shared_task(bind=True, name="compute.node.tasks.spawn")
def spawn(self, instance_id):
    """Defines and starts the domain; the instance becomes ACTIVE."""
    try:
        node, instance = enter_boot_step(self, instance_id, "spawn")
    except UnexpectedState as error:
        if _booted_already(self, instance_id, error.actual):
            return str(instance_id)
        raise
    with record_event(instance, "create", "compute_spawn", host=node.host):
        if not node.disk_path(instance.pk).exists() and not block_devices.boots_from_volume(instance):
            raise VirtError(f"Instance {instance.pk} has no disk on {node.host}: prepare_disk has not run here.")
        node.driver.spawn(node.domain_spec(instance), timeout=conf.SPAWN_TIMEOUT)
        try:
            instance.update_state(expected_task_state=TaskState.SPAWNING, expected_vm_state=VmState.BUILDING,
                                  vm_state=VmState.ACTIVE, task_state=None, power_state=PowerState.RUNNING,
                                  launched_at=timezone.now())
        except UnexpectedState:
            if not Instance.objects.filter(pk=instance.pk, deleted=False).exists():
                node.remove_instance(instance.pk)  # deleted while it was starting
            raise
    finish_action(instance, "create")
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.destroy")
def destroy(self, instance_id):
    """Destroys and undefines the domain, deletes its files, releases the
    claim and marks the instance deleted."""
    instance = Instance.objects.get(pk=instance_id)
    node = _node(self, instance.host)
    if instance.deleted or instance.host != node.host:
        # A repeat, or the instance lives elsewhere now: only make sure
        # nothing of it is left here.
        node.remove_instance(instance.pk)
        return str(instance_id)
    node.finish_delete(instance)
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.cleanup")
def cleanup(self, instance_id):
    """Removes what a failed build left on this node (domain, disk) and
    writes no state: the pipeline calls it before a reschedule."""
    node = _node(self, Instance.objects.filter(pk=instance_id).values_list("host", flat=True).first())
    node.remove_instance(instance_id)
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.power_action")
def power_action(self, instance_id, action):
    """start, stop, reboot_soft, reboot_hard, pause, unpause, suspend or
    resume; the API has set the action's task_state (Instance.begin). A
    repeat of a finished action does nothing."""
    if action not in ACTIONS or action == "delete":
        raise ValueError(f"Unknown power action {action!r}.")
    node, instance = _node_and_instance(self, instance_id)
    if instance.task_state != ACTIONS[action].task_state:
        log.info("%s: %s of %s is done already (task_state %s)", node.host, action, instance_id,
                 instance.task_state)
        return str(instance_id)
    agent.run_power_action(node, instance, action)
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.rebuild")
def rebuild(self, instance_id):
    """A new disk from the instance's image and a new domain; the API has
    set task_state rebuilding. A repeat of a finished rebuild does nothing."""
    node, instance = _node_and_instance(self, instance_id)
    if instance.task_state not in (TaskState.REBUILDING, TaskState.REBUILD_SPAWNING):
        log.info("%s: rebuild of %s is done already (task_state %s)", node.host, instance_id, instance.task_state)
        return str(instance_id)
    if instance.task_state == TaskState.REBUILD_SPAWNING:  # redelivered mid-way: start over
        instance.update_state(expected_task_state=TaskState.REBUILD_SPAWNING, task_state=TaskState.REBUILDING)
    agent.rebuild(node, instance)
    return str(instance_id)


def _resize_parts(task, instance_id, migration_id, host_field):
    """(this task's node, the instance, the migration) for a resize step
    that runs on the migration's source or destination (`host_field`)."""
    migration = Migration.objects.get(pk=migration_id, instance_id=instance_id)
    node = _node(task, getattr(migration, host_field))
    if getattr(migration, host_field) != node.host:
        raise WrongNode(f"Migration {migration_id}'s {host_field} is {getattr(migration, host_field)!r}, "
                        f"not {node.host!r}.")
    return node, Instance.objects.get(pk=instance_id, deleted=False), migration


@shared_task(bind=True, name="compute.node.tasks.resize_instance")
def resize_instance(self, instance_id, migration_id):
    """Source side of a resize: the domain stopped, its files set aside."""
    resize.resize_instance(*_resize_parts(self, instance_id, migration_id, "source_compute"))
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.finish_resize")
def finish_resize(self, instance_id, migration_id):
    """Destination side: the domain made again with the new flavor."""
    resize.finish_resize(*_resize_parts(self, instance_id, migration_id, "dest_compute"))
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.revert_resize")
def revert_resize(self, instance_id, migration_id, action):
    """Destination side of a revert: the resized domain removed."""
    resize.revert_resize(*_resize_parts(self, instance_id, migration_id, "dest_compute"), action)
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.finish_revert_resize")
def finish_revert_resize(self, instance_id, migration_id, action):
    """Source side of a revert: the old domain back."""
    resize.finish_revert_resize(*_resize_parts(self, instance_id, migration_id, "source_compute"), action)
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.confirm_resize")
def confirm_resize(self, instance_id, migration_id):
    """Source side of a confirm: the files kept for a revert deleted."""
    migration = Migration.objects.get(pk=migration_id, instance_id=instance_id)
    node = _node(self, migration.source_compute)
    resize.confirm_resize(node, Instance.objects.get(pk=instance_id))
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.snapshot_instance")
def snapshot_instance(self, instance_id, image_id, rotation=None):
    """createImage (and createBackup, with its `rotation`): the instance's
    disk copied, flattened and stored as image `image_id`; the API has set
    task_state image_snapshot_pending."""
    from compute.node import snapshot

    node, instance = _node_and_instance(self, instance_id)
    return snapshot.snapshot_instance(node, instance, image_id, rotation)


@shared_task(bind=True, name="compute.node.tasks.shelve_instance")
def shelve_instance(self, instance_id, offload):
    """shelve: the domain stopped, the disk stored as the shelved image,
    then offloaded from this host if `offload`."""
    from compute.node import shelve

    node, instance = _node_and_instance(self, instance_id)
    shelve.shelve(node, instance, offload)
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.shelve_offload_instance")
def shelve_offload_instance(self, instance_id):
    """shelveOffload (or the reconciler once the offload time passed)."""
    from compute.node import shelve

    node, instance = _node_and_instance(self, instance_id)
    shelve.offload_instance(node, instance, "shelveOffload")
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.unshelve_instance")
def unshelve_instance(self, instance_id):
    """unshelve on this node: where it was shelved, or where the scheduler
    placed the offloaded instance."""
    from compute.node import shelve

    node, instance = _node_and_instance(self, instance_id)
    shelve.unshelve(node, instance)
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.evacuate_instance")
def evacuate_instance(self, instance_id, migration_id):
    """An evacuated instance made again on this node, where the scheduler
    placed it."""
    from compute.node import evacuate

    node, instance = _node_and_instance(self, instance_id)
    migration = Migration.objects.get(pk=migration_id, instance_id=instance_id)
    evacuate.evacuate(node, instance, migration)
    return str(instance_id)


@shared_task(bind=True, name="compute.node.tasks.console_log")
def console_log(self, instance_id, length=None):
    """The serial console log; with `length`, only its last `length` lines."""
    node, _instance = _node_and_instance(self, instance_id)
    try:
        text = node.console_log_path(instance_id).read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    if length is not None:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-int(length):]) if int(length) > 0 else ""
    return text


@shared_task(bind=True, name="compute.node.tasks.vnc_address")
def vnc_address(self, instance_id):
    """{"host", "port"} of the running domain's VNC server, for a console
    token (compute.console.tokens.create_token)."""
    node, _instance = _node_and_instance(self, instance_id)
    host, port = node.driver.vnc_address(node.domain_name(instance_id))
    return {"host": host, "port": port}


@shared_task(bind=True, name="compute.node.tasks.diagnostics")
def diagnostics(self, instance_id):
    """The hypervisor's counters of the instance's domain
    (ComputeDriver.diagnostics)."""
    node, _instance = _node_and_instance(self, instance_id)
    return node.driver.diagnostics(node.domain_name(instance_id))


@shared_task(bind=True, name="compute.node.tasks.attach_interface")
def attach_interface(self, instance_id, port_id):
    """os-interface attach: the port plugged and hot-plugged into the domain."""
    from compute.node import networking

    node, instance = _node_and_instance(self, instance_id)
    networking.hot_plug(node, instance, port_id)
    return str(port_id)


@shared_task(bind=True, name="compute.node.tasks.detach_interface")
def detach_interface(self, instance_id, port_id):
    """os-interface detach: the NIC out of the domain, the port unplugged."""
    from compute.node import networking

    node, instance = _node_and_instance(self, instance_id)
    networking.hot_unplug(node, instance, port_id)
    return str(port_id)


@shared_task(bind=True, name="compute.node.tasks.attach_volume")
def attach_volume(self, instance_id, attachment_id):
    """os-volume_attachments attach: the volume connected and hot-plugged
    into the domain; the volume is in-use after."""
    from compute.node import volumes

    node, instance = _node_and_instance(self, instance_id)
    volumes.hot_plug(node, instance, attachment_id)
    return attachment_id


@shared_task(bind=True, name="compute.node.tasks.detach_volume")
def detach_volume(self, instance_id, attachment_id):
    """os-volume_attachments detach (the volume is detaching): the disk out
    of the domain, the attachment removed; the volume is available after,
    or in-use again when the guest does not let go of it."""
    from compute.node import volumes

    node, instance = _node_and_instance(self, instance_id)
    volumes.hot_unplug(node, instance, attachment_id)
    return attachment_id


@shared_task(bind=True, name="compute.node.tasks.extend_volume", ignore_result=True)
def extend_volume(self, instance_id, volume_id, size_bytes):
    """The volumes app grew an attached volume (Nova's volume-extended
    event): the running domain's disk is told its new size, so the guest
    sees it."""
    from compute.node import volumes

    node, instance = _node_and_instance(self, instance_id)
    volumes.grow(node, instance, volume_id, int(size_bytes))
    return volume_id
