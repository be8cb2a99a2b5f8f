"""An evacuation's node side: the instance, whose own node is down, made
again here from its image (its disk on the down node cannot be read from
here), its ports bound and plugged here and its volumes connected here;
ACTIVE after, or SHUTOFF if it was stopped. A failure leaves it in ERROR
with a fault. The down node, when it comes back, removes what it still
holds of the instance (it is on another host now: a stray)."""
import logging

from django.utils import timezone

from compute import block_devices
from compute.models import Migration, PowerState, TaskState, UnexpectedState, VmState, finish_action, record_event, \
    set_fault
from compute.node import conf, networking, volumes

log = logging.getLogger(__name__)


def evacuate(node, instance, migration):
    from compute.node.agent import create_disk

    if instance.task_state != TaskState.REBUILDING:
        log.info("%s: evacuation of %s is over (task_state %s)", node.host, instance.pk, instance.task_state)
        return
    stopped = migration.old_vm_state == VmState.STOPPED
    try:
        with record_event(instance, "evacuate", "compute_rebuild_instance", host=node.host):
            # A repeated message starts over: nothing of a first try stays.
            node.driver.destroy(node.domain_name(instance.pk))
            node.disk_path(instance.pk).unlink(missing_ok=True)
            node.config_drive_path(instance.pk).unlink(missing_ok=True)
            if not block_devices.boots_from_volume(instance):
                create_disk(node, instance)
            networking.move_here(node, instance.pk)
            volumes.connect_here(node, instance)
            node.driver.spawn(node.domain_spec(instance), timeout=conf.SPAWN_TIMEOUT, start=not stopped)
            instance.update_state(expected_task_state=TaskState.REBUILDING,
                                  vm_state=VmState.STOPPED if stopped else VmState.ACTIVE, task_state=None,
                                  power_state=PowerState.SHUTDOWN if stopped else PowerState.RUNNING,
                                  launched_at=timezone.now())
        migration.set_status(Migration.Status.DONE)
    except UnexpectedState:
        raise  # deleted or reset meanwhile: the state is someone else's now
    except Exception as error:
        migration.set_status(Migration.Status.FAILED)
        try:
            instance.update_state(expected_task_state=TaskState.REBUILDING, vm_state=VmState.ERROR, task_state=None,
                                  power_state=PowerState.NOSTATE)
            set_fault(instance, f"evacuate failed: {type(error).__name__}", details=str(error), host=node.host)
        except UnexpectedState:
            pass
        raise
    finally:
        finish_action(instance, "evacuate")
