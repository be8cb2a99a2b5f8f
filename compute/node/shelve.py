"""Shelve, offload and unshelve on the nodes (Nova's os-shelve).

Shelve stops the domain and stores its disk, flattened, as the image the
API made (the instance's shelved_image_id; a server whose root is a volume
has none: its volume keeps the disk): task_state shelving, then
shelving_image_pending_upload and shelving_image_uploading, and the
instance is SHELVED. Offloading (at once, or later: conf.SHELVED_OFFLOAD_TIME)
removes the domain, files and plumbing from the host and gives its claim
back: SHELVED_OFFLOADED, on no host. Unshelve starts the domain again on
its host when only shelved; offloaded, the scheduler has placed it anew
and the node boots it from the shelved image (its ports and volumes follow
it there: offloaded, its volumes are attached on no host, those attached
meanwhile too, and the node connects them all before the domain starts).
The shelved image is deleted once the server runs again.

A step that fails leaves the instance as it was with a fault; a step a
killed worker left half done is given up (shelve) or repeated (offload,
unshelve) when its message comes again."""
import logging

from django.db import transaction

from compute import block_devices
from compute.models import (
    PowerState, TaskState, UnexpectedState, VmState, finish_action, record_event, release_claim, set_fault,
)
from compute.node import conf, networking, snapshot, volumes
from compute.virt import VirtError
from volumes import attachments

log = logging.getLogger(__name__)


def shelve(node, instance, offload):
    """The domain stopped and its disk stored; SHELVED after, then
    offloaded if `offload`."""
    from images import from_server

    image_id = instance.shelved_image_id
    if instance.task_state in TaskState.SHELVE_STEPS[1:]:
        # A worker died while the disk was copied or stored: given up.
        _undo_shelve(node, instance, "The shelve was interrupted: its compute worker stopped.")
        return
    if instance.task_state != TaskState.SHELVING:
        if instance.task_state == TaskState.SHELVING_OFFLOADING:
            offload_instance(node, instance, "shelve")  # died between shelving and offloading
        return
    path = snapshot.snapshot_path(node, image_id) if image_id else None
    try:
        with record_event(instance, "shelve", "compute_shelve_instance", host=node.host):
            name = node.domain_name(instance.pk)
            if node.driver.exists(name):
                running = instance.power_state == PowerState.RUNNING
                node.driver.stop(name, timeout=conf.SHUTDOWN_TIMEOUT if running else 0)
            if image_id:
                instance.update_state(expected_task_state=TaskState.SHELVING,
                                      task_state=TaskState.SHELVING_IMAGE_PENDING_UPLOAD)
                snapshot.copy_disk(node, instance, path)
                instance.update_state(expected_task_state=TaskState.SHELVING_IMAGE_PENDING_UPLOAD,
                                      task_state=TaskState.SHELVING_IMAGE_UPLOADING)
                image = from_server.store_snapshot(image_id, path)
                snapshot.cache_copy(image, path)
            instance.update_state(expected_task_state=(TaskState.SHELVING, TaskState.SHELVING_IMAGE_UPLOADING),
                                  vm_state=VmState.SHELVED, power_state=PowerState.SHUTDOWN,
                                  task_state=TaskState.SHELVING_OFFLOADING if offload else None)
    except UnexpectedState:
        if image_id:
            from_server.discard(image_id)  # deleted or reset meanwhile
        raise
    except Exception as error:
        _undo_shelve(node, instance, f"Shelve failed: {error}"[:255], details=f"{type(error).__name__}: {error}")
        raise
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
            path.with_suffix(".part").unlink(missing_ok=True)
        finish_action(instance, "shelve")
    if offload:
        offload_instance(node, instance, "shelve")


def _undo_shelve(node, instance, fault, details=""):
    """The shelve cannot finish: its image goes, the instance is idle in
    its vm_state again (with the power state the hypervisor reports)."""
    from images import from_server

    if instance.shelved_image_id:
        from_server.discard(instance.shelved_image_id)
    try:
        power_state = node.driver.power_state(node.domain_name(instance.pk))
    except VirtError:
        power_state = PowerState.NOSTATE
    try:
        instance.update_state(expected_task_state=TaskState.SHELVE_STEPS, task_state=None, shelved_image_id="",
                              power_state=power_state)
    except UnexpectedState:
        return
    set_fault(instance, fault, details=details, host=node.host)
    finish_action(instance, "shelve")


def offload_instance(node, instance, action):
    """A shelved instance leaves this host: domain, files and plumbing
    removed, its claim given back; SHELVED_OFFLOADED on no host."""
    if instance.task_state != TaskState.SHELVING_OFFLOADING:
        log.info("%s: offload of %s is over (task_state %s)", node.host, instance.pk, instance.task_state)
        return
    try:
        with record_event(instance, action, "compute_shelve_offload_instance", host=node.host):
            node.remove_instance(instance.pk)
            with transaction.atomic():
                instance.update_state(expected_task_state=TaskState.SHELVING_OFFLOADING,
                                      vm_state=VmState.SHELVED_OFFLOADED, task_state=None, host=None, node=None,
                                      power_state=PowerState.NOSTATE)
                release_claim(instance)
                # As Nova's offload: its volumes stay attached, on no host.
                attachments.disconnect_instance(instance.pk)
    except UnexpectedState:
        raise
    except Exception as error:
        try:
            instance.update_state(expected_task_state=TaskState.SHELVING_OFFLOADING, task_state=None)
            set_fault(instance, f"Shelve offload failed: {error}"[:255], host=node.host)
        except UnexpectedState:
            pass
        raise
    finally:
        finish_action(instance, action)


def unshelve(node, instance):
    """The instance runs again: started where it was shelved, or (offloaded
    and placed here by the scheduler) made here from the shelved image.
    ACTIVE after, and the shelved image deleted."""
    from images import from_server

    if instance.task_state != TaskState.UNSHELVING:
        log.info("%s: unshelve of %s is over (task_state %s)", node.host, instance.pk, instance.task_state)
        return
    offloaded = instance.vm_state == VmState.SHELVED_OFFLOADED
    image_id = instance.shelved_image_id
    name = node.domain_name(instance.pk)
    try:
        with record_event(instance, "unshelve", "compute_unshelve_instance", host=node.host):
            if offloaded or not node.driver.exists(name):
                from compute.node.agent import create_disk

                if not block_devices.boots_from_volume(instance):
                    create_disk(node, instance, image_id=image_id or None)
                networking.move_here(node, instance.pk)
                volumes.connect_here(node, instance)
                node.driver.spawn(node.domain_spec(instance), timeout=conf.SPAWN_TIMEOUT)
            else:
                node.driver.start(name)
            instance.update_state(expected_task_state=TaskState.UNSHELVING, vm_state=VmState.ACTIVE, task_state=None,
                                  power_state=PowerState.RUNNING, shelved_image_id="")
    except UnexpectedState:
        raise
    except Exception as error:
        _undo_unshelve(node, instance, offloaded, error)
        raise
    finally:
        finish_action(instance, "unshelve")
    if image_id:
        from_server.discard(image_id)


def _undo_unshelve(node, instance, offloaded, error):
    """A failed unshelve: offloaded, nothing of it stays here and the
    claim goes back; shelved, the domain stays as it was. A fault says why."""
    try:
        with transaction.atomic():
            if offloaded:
                node.remove_instance(instance.pk)
                instance.update_state(expected_task_state=TaskState.UNSHELVING, task_state=None, host=None,
                                      node=None)
                release_claim(instance)
            else:
                instance.update_state(expected_task_state=TaskState.UNSHELVING, task_state=None)
            set_fault(instance, f"Unshelve failed: {error}"[:255], details=f"{type(error).__name__}: {error}",
                      host=node.host)
    except UnexpectedState:
        pass
