"""Resize on the nodes. The source stops the domain, undefines it and sets
the instance's directory aside (`<id>_resize`); the destination (the same
node, or another one) copies the disk from there, grows it to the new
flavor and defines the new domain; the instance is then RESIZED. Confirm
deletes what was set aside; revert removes the new domain and brings the
old one back. A server whose root is a volume has no disk to copy: its
volumes stay as they are and its attachments are recorded on the node its
domain is defined on (compute.node.volumes.connect_here). Each step may
run twice (late acknowledgement) and checks the instance's task_state to
know whether it is done already.

A disk is copied between nodes by path under STRATUS_NODES_DIR: nodes of
one machine share it; nodes on different machines need it on shared
storage, or a resize that picks another node fails and reverts itself."""
import logging
import shutil
import subprocess

from django.db import transaction

from compute.models import (
    ComputeNode, Instance, Migration, PowerState, TaskState, UnexpectedState, VmState, finish_action,
    instance_flavor_fields, record_event, release_claim,
)
from compute import block_devices
from compute.node import conf, networking, volumes
from compute.virt import VirtError

log = logging.getLogger(__name__)


def _spawn(node, instance, vm_state):
    """Defines the instance's domain from its (current) flavor, and starts
    it unless the instance is to be stopped. Returns the power state."""
    name = node.domain_name(instance.pk)
    node.driver.destroy(name)  # a half-made domain of an earlier try
    networking.move_here(node, instance.pk)
    volumes.connect_here(node, instance)
    running = vm_state != VmState.STOPPED
    node.driver.spawn(node.domain_spec(instance), timeout=conf.SPAWN_TIMEOUT, start=running)
    return PowerState.RUNNING if running else PowerState.SHUTDOWN


def resize_instance(node, instance, migration):
    """On the source: stop and undefine the domain, set the files aside."""
    if instance.task_state not in (TaskState.RESIZE_PREP, TaskState.RESIZE_MIGRATING):
        log.info("%s: resize of %s is past this step (task_state %s)", node.host, instance.pk, instance.task_state)
        return
    instance.update_state(expected_task_state=(TaskState.RESIZE_PREP, TaskState.RESIZE_MIGRATING),
                          task_state=TaskState.RESIZE_MIGRATING)
    with record_event(instance, migration.action, "compute_resize_instance", host=node.host):
        name = node.domain_name(instance.pk)
        if node.driver.exists(name):
            node.driver.stop(name, timeout=conf.SHUTDOWN_TIMEOUT if instance.vm_state == VmState.ACTIVE else 0)
            node.driver.destroy(name)
        current = node.instance_dir(instance.pk)
        aside = node.aside_dir(instance.pk)
        if current.exists():
            shutil.rmtree(aside, ignore_errors=True)  # the leftover of a resize confirmed while its node was away
            current.rename(aside)
        elif block_devices.boots_from_volume(instance):
            aside.mkdir(parents=True, exist_ok=True)  # its root is a volume: no disk to set aside
        elif not aside.exists():
            raise VirtError(f"Instance {instance.pk} has no files on {node.host} to resize.")
        migration.set_status(Migration.Status.POST_MIGRATING)
        instance.update_state(expected_task_state=TaskState.RESIZE_MIGRATING, task_state=TaskState.RESIZE_MIGRATED)


def finish_resize(node, instance, migration):
    """On the destination: the disk copied and grown, the domain defined
    with the new flavor (and started if the instance was active)."""
    if instance.task_state not in (TaskState.RESIZE_MIGRATED, TaskState.RESIZE_FINISH):
        log.info("%s: resize of %s is past this step (task_state %s)", node.host, instance.pk, instance.task_state)
        return
    instance.update_state(expected_task_state=(TaskState.RESIZE_MIGRATED, TaskState.RESIZE_FINISH),
                          task_state=TaskState.RESIZE_FINISH)
    new_flavor = migration.new_flavor
    try:
        with record_event(instance, migration.action, "compute_finish_resize", host=node.host):
            node.instance_dir(instance.pk).mkdir(parents=True, exist_ok=True)
            # A root volume stays as it is (as Nova's: the flavor's disk size is not applied to it).
            if not block_devices.boots_from_volume(instance):
                _copy_disk(node, instance, migration)
            fields = instance_flavor_fields(new_flavor)
            for name, value in fields.items():
                setattr(instance, name, value)
            power_state = _spawn(node, instance, migration.old_vm_state)
            with transaction.atomic():
                instance.update_state(expected_task_state=TaskState.RESIZE_FINISH, vm_state=VmState.RESIZED,
                                      task_state=None, power_state=power_state, host=node.host, progress=100,
                                      node=ComputeNode.objects.get(host=node.host), **fields)
                migration.set_status(Migration.Status.FINISHED)
    except UnexpectedState:
        if not Instance.objects.filter(pk=instance.pk, deleted=False).exists():
            node.remove_instance(instance.pk)  # deleted while it was made
        raise
    finally:
        finish_action(instance, migration.action)


def _copy_disk(node, instance, migration):
    """The source's disk copied here, grown to the new flavor's root size."""
    new_flavor, old_flavor = migration.new_flavor, migration.old_flavor
    # The source's directory as this node sees it (see the module's doc).
    source = type(node)(migration.source_compute, node.driver)
    source_disk = source.aside_dir(instance.pk) / "disk"
    if not source_disk.exists():
        raise VirtError(f"The disk of instance {instance.pk} on {migration.source_compute} is not "
                        f"reachable from {node.host} ({source_disk}): nodes on different machines "
                        f"need STRATUS_NODES_DIR on shared storage.")
    disk = node.disk_path(instance.pk)
    partial = disk.with_name("disk.part")
    # The overlay keeps pointing at the image cache's base image.
    shutil.copyfile(source_disk, partial)
    if new_flavor["root_gb"] > old_flavor["root_gb"]:
        subprocess.run(["qemu-img", "resize", "-q", str(partial), f"{new_flavor['root_gb']}G"],
                       check=True, capture_output=True)
    partial.rename(disk)


def revert_resize(node, instance, migration, action):
    """On the destination: remove the resized domain and its files, and
    give back the destination's claim."""
    if instance.task_state != TaskState.RESIZE_REVERTING:
        log.info("%s: revert of %s is over (task_state %s)", node.host, instance.pk, instance.task_state)
        return
    with record_event(instance, action, "compute_revert_resize", host=node.host):
        same_node = migration.source_compute == node.host
        # On the source's own node, a resize that failed before it set the
        # files aside left the originals in place: those stay.
        if not same_node or node.aside_dir(instance.pk).exists():
            node.driver.destroy(node.domain_name(instance.pk))
            shutil.rmtree(node.instance_dir(instance.pk), ignore_errors=True)
        release_claim(instance, migration)


def finish_revert_resize(node, instance, migration, action):
    """On the source: the files set aside come back, the domain is defined
    again with the old flavor, and the instance is what it was."""
    if instance.task_state != TaskState.RESIZE_REVERTING:
        log.info("%s: revert of %s is over (task_state %s)", node.host, instance.pk, instance.task_state)
        return
    try:
        with record_event(instance, action, "compute_finish_revert_resize", host=node.host):
            current = node.instance_dir(instance.pk)
            aside = node.aside_dir(instance.pk)
            if aside.exists():
                shutil.rmtree(current, ignore_errors=True)  # what a failed finish left here
                aside.rename(current)
            elif not node.disk_path(instance.pk).exists():
                raise VirtError(f"Instance {instance.pk} has no disk on {node.host} to revert to.")
            fields = instance_flavor_fields(migration.old_flavor)
            for name, value in fields.items():
                setattr(instance, name, value)
            power_state = _spawn(node, instance, migration.old_vm_state)
            with transaction.atomic():
                instance.update_state(expected_task_state=TaskState.RESIZE_REVERTING,
                                      vm_state=migration.old_vm_state, task_state=None, power_state=power_state,
                                      host=node.host, node=ComputeNode.objects.get(host=node.host), progress=0,
                                      **fields)
                release_claim(instance, migration)  # if the destination could not
                migration.set_status(Migration.Status.REVERTED)
    finally:
        finish_action(instance, action)


def confirm_resize(node, instance):
    """On the source: the files kept for a revert are deleted (the API
    has released the source's claim already)."""
    with record_event(instance, "confirmResize", "compute_confirm_resize", host=node.host):
        shutil.rmtree(node.aside_dir(instance.pk), ignore_errors=True)
        if instance.host != node.host:  # the ports went with the instance: none of their plumbing stays here
            networking.unplug_instance(node, instance.pk)
    finish_action(instance, "confirmResize")
