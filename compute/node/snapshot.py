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

A server whose root disk is a volume is snapshotted as Nova does: in
image_snapshot (the guest paused, so the volumes hold still) each
attached volume gets a Cinder snapshot (`force`d: it is in-use), made by
its back end's worker; once all are available the image, holding no
data, goes active with a block_device_mapping naming them (bdm_v2), from
which a boot makes new volumes (compute.block_devices.with_image_mappings).

A snapshot that fails, or that a killed worker left half done (found on
the node's start or when its message comes again), deletes its image
and the volume snapshots made for it, clears task_state and records a
fault; the server stays as it was."""
import logging
import subprocess
import time

from django.db import transaction

from compute.models import PowerState, TaskState, UnexpectedState, finish_action, record_event, set_fault
from compute.node import conf
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
    from compute import block_devices

    if block_devices.boots_from_volume(instance):
        return snapshot_volumes(node, instance, image_id)
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


class SnapshotCaller:
    """Who the volume snapshots are made for: the server's project and
    user, with the right to name its volumes (the API has checked the
    request; a volume attached to the server is the server's to snapshot)."""

    def __init__(self, instance):
        self.project_id, self.user_id, self.is_admin = instance.project_id, instance.user_id, True


def snapshot_volumes(node, instance, image_id, timeout=None, interval=0.2):
    """createImage of a server whose root disk is a volume (see the
    module's doc). Returns the image id, or None when it is over."""
    from images import from_server
    from volumes import attachments, lifecycle

    made = []
    paused_here = False
    name = node.domain_name(instance.pk)
    try:
        with record_event(instance, ACTION, "compute_snapshot_instance", host=node.host):
            instance.update_state(expected_task_state=TaskState.IMAGE_SNAPSHOT_PENDING,
                                  task_state=TaskState.IMAGE_SNAPSHOT)
            paused_here = node.driver.exists(name) and node.driver.power_state(name) == PowerState.RUNNING
            if paused_here:
                node.driver.pause(name)
            held = sorted((attachment for attachment in attachments.attachments_of(instance.pk)
                           if attachment.status == attachment.Status.ATTACHED and attachment.mountpoint),
                          key=lambda attachment: attachment.mountpoint)
            image_name = from_server.snapshot_name(image_id)
            with transaction.atomic():
                mappings = []
                for attachment in held:
                    volume_snapshot = lifecycle.create_snapshot(
                        SnapshotCaller(instance), attachment.volume_id, force=True,
                        name=f"snapshot for {image_name}", description=attachment.volume.description)
                    made.append(volume_snapshot.pk)
                    mappings.append(snapshot_mapping(attachment, volume_snapshot))
                from_server.describe_volume_snapshots(image_id, mappings)
            wait_snapshots(made, timeout or conf.BLOCK_DEVICE_TIMEOUT, interval)
            if paused_here:
                node.driver.unpause(name)
                paused_here = False
            instance.update_state(expected_task_state=TaskState.IMAGE_SNAPSHOT,
                                  task_state=TaskState.IMAGE_PENDING_UPLOAD)
            instance.update_state(expected_task_state=TaskState.IMAGE_PENDING_UPLOAD,
                                  task_state=TaskState.IMAGE_UPLOADING)
            from_server.store_without_data(image_id)
            instance.update_state(expected_task_state=TaskState.IMAGE_UPLOADING, task_state=None)
    except from_server.SnapshotGone as error:
        log.info("%s: %s", node.host, error)
        lifecycle.discard_snapshots(made)
        _end(instance, fault=None)
        return None
    except UnexpectedState:
        from_server.discard(image_id)
        lifecycle.discard_snapshots(made)
        raise
    except Exception as error:
        from_server.discard(image_id)
        lifecycle.discard_snapshots(made)
        _end(instance, fault=f"Snapshot failed: {error}"[:255], details=f"{type(error).__name__}: {error}",
             host=node.host)
        raise
    finally:
        if paused_here:
            node.driver.unpause(name)
        finish_action(instance, ACTION)
    return image_id


def snapshot_mapping(attachment, volume_snapshot):
    """The image's block_device_mapping entry for one volume: Nova's
    block_device_mapping_v2 fields, a new volume from `volume_snapshot`."""
    boot_index = 0 if attachment.mountpoint == "/dev/vda" else None
    return {"source_type": "snapshot", "destination_type": "volume", "snapshot_id": str(volume_snapshot.pk),
            "volume_id": None, "image_id": None, "boot_index": boot_index, "device_name": attachment.mountpoint,
            "volume_size": attachment.volume.size, "delete_on_termination": attachment.delete_on_termination,
            "device_type": "disk", "disk_bus": "virtio", "guest_format": None, "no_device": None, "tag": None,
            "volume_type": None}


class VolumeSnapshotFailed(Exception):
    """A volume's snapshot did not become available."""


def wait_snapshots(snapshot_ids, timeout, interval):
    from volumes import lifecycle

    deadline = time.monotonic() + timeout
    waiting = list(snapshot_ids)
    while waiting:
        for snapshot_id in list(waiting):
            status, reason = lifecycle.snapshot_progress(snapshot_id)
            if status == "available":
                waiting.remove(snapshot_id)
            elif status != "creating":
                raise VolumeSnapshotFailed(f"Volume snapshot {snapshot_id} did not become available (status "
                                           f"{status or 'deleted'}){': ' + reason if reason else ''}.")
        if waiting and time.monotonic() > deadline:
            raise VolumeSnapshotFailed(f"Volume snapshot {waiting[0]} was not made even after we waited "
                                       f"{timeout:g} seconds.")
        if waiting:
            time.sleep(interval)


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

    from volumes import lifecycle

    unfinished = from_server.unfinished_snapshots(instance.pk)
    for image_id, _image_type in unfinished:
        made = [entry.get("snapshot_id") for entry in from_server.snapshot_mappings(image_id)]
        from_server.discard(image_id)
        lifecycle.discard_snapshots([snapshot_id for snapshot_id in made if snapshot_id])
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
