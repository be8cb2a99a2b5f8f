"""Snapshots of a server's disk on its node (Nova's createImage).

The API has made the image (queued, images.from_server) and set
task_state image_snapshot_pending. Here, in Nova's order of task states:
image_snapshot while the disk is copied — a running guest is paused for
the copy, so QEMU has drained and flushed its writes and the copy is
consistent, and resumed right after; a stopped, paused or suspended one
holds still anyway — then image_pending_upload, image_uploading while the
flattened copy (its backing image folded in: `qemu-img convert`) goes into
the image store, and the image is active. The copy becomes this node's
cached copy of the image, so a server booted here from it needs no
download.

A snapshot that fails, or that a killed worker left half done (found on
the node's start or when its message comes again), deletes its image,
clears task_state and records a fault; the server stays as it was."""
import logging
import subprocess

from compute.models import PowerState, TaskState, UnexpectedState, finish_action, record_event, set_fault
from compute.virt import VirtError

log = logging.getLogger(__name__)

ACTION = "createImage"
BACKUP_ACTION = "createBackup"
# The instance action an image of each image_type belongs to.
ACTION_OF = {"snapshot": ACTION, "backup": BACKUP_ACTION}


def finish_actions(instance, image_types):
    """Ends the actions (createImage, createBackup) that images of these
    image_types were made for; createImage when there were none."""
    for action in {ACTION_OF.get(image_type, ACTION) for image_type in image_types} or {ACTION}:
        finish_action(instance, action)


def snapshot_dir(node):
    return node.directory / "snapshots"


def snapshot_path(node, image_id):
    return snapshot_dir(node) / f"{image_id}.qcow2"


def copy_disk(node, instance, dest):
    """The instance's disk, flattened into a standalone qcow2 at `dest`.
    A running domain is paused during the copy."""
    name = node.domain_name(instance.pk)
    source = node.disk_path(instance.pk)
    if not source.exists():
        raise VirtError(f"Instance {instance.pk} has no disk on {node.host} to snapshot.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".part")
    paused_here = node.driver.exists(name) and node.driver.power_state(name) == PowerState.RUNNING
    if paused_here:
        node.driver.pause(name)
    try:
        # -U: QEMU holds the disk's lock while the domain exists; paused,
        # nothing writes to it.
        result = subprocess.run(["qemu-img", "convert", "-U", "-q", "-f", "qcow2", "-O", "qcow2", str(source),
                                 str(partial)], capture_output=True, text=True)
    finally:
        if paused_here:
            node.driver.unpause(name)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise VirtError(f"Could not copy the disk of instance {instance.pk}: {result.stderr.strip()}")
    partial.rename(dest)
    return dest


def snapshot_instance(node, instance, image_id, rotation=None):
    """Takes the snapshot (see the module's doc); with `rotation`, a backup
    (createBackup), after which the server's older backups of its type
    beyond `rotation` are deleted. A repeat of one that is over does
    nothing; one a killed worker left mid-way is given up."""
    from images import from_server

    action = ACTION if rotation is None else BACKUP_ACTION
    if instance.task_state in TaskState.SNAPSHOTTING[1:]:
        abandon(node, instance, "The snapshot was interrupted: its compute worker stopped.")
        return None
    if instance.task_state != TaskState.IMAGE_SNAPSHOT_PENDING:
        log.info("%s: snapshot %s of %s is over (task_state %s)", node.host, image_id, instance.pk,
                 instance.task_state)
        return None
    path = snapshot_path(node, image_id)
    try:
        with record_event(instance, action, "compute_snapshot_instance", host=node.host):
            instance.update_state(expected_task_state=TaskState.IMAGE_SNAPSHOT_PENDING,
                                  task_state=TaskState.IMAGE_SNAPSHOT)
            copy_disk(node, instance, path)
            instance.update_state(expected_task_state=TaskState.IMAGE_SNAPSHOT,
                                  task_state=TaskState.IMAGE_PENDING_UPLOAD)
            instance.update_state(expected_task_state=TaskState.IMAGE_PENDING_UPLOAD,
                                  task_state=TaskState.IMAGE_UPLOADING)
            image = from_server.store_snapshot(image_id, path)
            instance.update_state(expected_task_state=TaskState.IMAGE_UPLOADING, task_state=None)
        cache_copy(image, path)
        if rotation is not None:
            rotated = from_server.rotate_backups(image, rotation)
            if rotated:
                log.info("%s: backup %s of %s rotated out %s", node.host, image.id, instance.pk, rotated)
    except from_server.SnapshotGone as error:
        # Deleted by its owner meanwhile (Nova's "image not found during
        # snapshot"): the server simply goes on.
        log.info("%s: %s", node.host, error)
        _end(instance, fault=None)
        return None
    except UnexpectedState:
        from_server.discard(image_id)  # the server was deleted or reset meanwhile
        raise
    except Exception as error:
        from_server.discard(image_id)
        _end(instance, fault=f"Snapshot failed: {error}"[:255], details=f"{type(error).__name__}: {error}",
             host=node.host)
        raise
    finally:
        path.unlink(missing_ok=True)
        path.with_suffix(".part").unlink(missing_ok=True)
        finish_action(instance, action)
    return image.id


def cache_copy(image, path):
    """The node's image cache takes the uploaded file, which is the image's
    data byte for byte (best effort: a boot would download it otherwise)."""
    from images.cache import ImageCache

    try:
        ImageCache().adopt(image.id, path, {
            "disk_format": image.disk_format, "size": image.size, "virtual_size": image.virtual_size,
            "os_hash_algo": image.os_hash_algo, "os_hash_value": image.os_hash_value})
    except Exception:  # noqa: BLE001  (the snapshot is done all the same)
        log.exception("could not put snapshot %s into the image cache", image.id)


def _end(instance, fault, details="", host=None):
    """The snapshot is over without an image: task_state back to None (the
    vm_state never changed), with `fault` when it failed."""
    try:
        instance.update_state(expected_task_state=TaskState.SNAPSHOTTING, task_state=None)
    except UnexpectedState:
        return False
    if fault:
        set_fault(instance, fault, details=details, host=host)
    return True


def abandon(node, instance, reason):
    """Gives up a snapshot a stopped worker left half done: its image is
    deleted, the guest runs again if the copy had paused it, task_state is
    cleared and `reason` is the fault."""
    from images import from_server

    unfinished = from_server.unfinished_snapshots(instance.pk)
    for image_id, _image_type in unfinished:
        from_server.discard(image_id)
        snapshot_path(node, image_id).unlink(missing_ok=True)
        snapshot_path(node, image_id).with_suffix(".part").unlink(missing_ok=True)
    if instance.task_state == TaskState.IMAGE_SNAPSHOT and instance.power_state == PowerState.RUNNING:
        name = node.domain_name(instance.pk)
        try:
            if node.driver.exists(name):
                node.driver.unpause(name)
        except VirtError:
            log.exception("%s: could not resume %s after an interrupted snapshot", node.host, instance.pk)
    if _end(instance, reason, host=node.host):
        finish_actions(instance, [image_type for _image_id, image_type in unfinished])
