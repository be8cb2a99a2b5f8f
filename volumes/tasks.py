"""Block storage's tasks. On the control queue: the periodic reconciler
that ends whatever stays in a transitional status past its deadline. On
`volume.<host>`: what the back end's worker does to the data (create,
delete, extend, snapshots); a new volume comes placed on its back end
already (volumes.scheduler.place)."""
import logging
import tempfile
from datetime import timedelta
from pathlib import Path

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from volumes import attachments, conf, dispatch, worker
from volumes.images import store_locations
from volumes.backends import qemu_img
from volumes.models import (
    Attachment, Backup, InvalidStatus, Snapshot, Volume, by_key, fail, record_message, release_capacity,
)

GiB = 2**30

log = logging.getLogger(__name__)

# Cinder's message event ids: which step failed (and scheduler.SCHEDULE_ALLOCATE_VOLUME).
CREATE_VOLUME_FROM_BACKEND = "VOLUME_VOLUME_001_003"
DELETE_VOLUME = "VOLUME_VOLUME_004_007"
DETACH_VOLUME = "VOLUME_VOLUME_012_001"
EXTEND_VOLUME = "VOLUME_VOLUME_007_008"
UPLOAD_TO_IMAGE = "VOLUME_VOLUME_005_005"
RETYPE_VOLUME = "VOLUME_VOLUME_009_001"
CREATE_SNAPSHOT = "VOLUME_SNAPSHOT_001_007"
DELETE_SNAPSHOT = "VOLUME_SNAPSHOT_003_007"


def _creating_here(volume_id, host):
    return by_key(Volume.objects.filter(pk=volume_id, status=Volume.Status.CREATING, backend__host=host))


@shared_task(name="volumes.tasks.create_volume", ignore_result=True)
def create_volume(volume_id, host):
    backend = worker.served(host)
    volume = _creating_here(volume_id, host)
    if volume is None:
        return None  # ended meanwhile (reconciler, delete): nothing to make
    try:
        if volume.snapshot_id:
            backend.create_from_snapshot(volume_id, volume.size, volume.snapshot_id)
        elif volume.source_volume_id:
            backend.create_from_volume(volume_id, volume.size, volume.source_volume_id)
        elif volume.image_id:
            if not _cloned_in_place(backend, volume):
                from images.cache import ImageCache

                cache = ImageCache()
                path = cache.fetch(volume.image_id)
                backend.create_from_image(volume_id, volume.size, path, cache.cached_format(volume.image_id))
        else:
            backend.create(volume_id, volume.size)
    except Exception as error:  # noqa: BLE001 - any failure ends the create, with its reason
        log.warning("creating volume %s failed: %s", volume_id, error)
        backend.delete(volume_id)
        fail(volume, f"create volume from backend storage: {error}", CREATE_VOLUME_FROM_BACKEND,
             expected=Volume.Status.CREATING)
        return None
    try:
        volume.set_status(Volume.Status.AVAILABLE, expected=Volume.Status.CREATING, launched_at=timezone.now(),
                          connection_info=backend.connection_info(volume_id))
    except InvalidStatus:
        # The reconciler gave up on it meanwhile and gave its space back.
        backend.delete(volume_id)
        return None
    return volume_id


def _cloned_in_place(backend, volume):
    """A back end that can clone the image where an image store keeps it
    (RBD from the RBD image store) does so instead of copying its bytes."""
    clone_image = getattr(backend, "clone_image", None)
    if clone_image is None:
        return False
    disk_format, urls = store_locations(volume.image_id)
    return any(clone_image(volume.pk, volume.size, url, disk_format) for url in urls)


@shared_task(name="volumes.tasks.delete_volume", ignore_result=True)
def delete_volume(volume_id, host):
    backend = worker.served(host)
    volume = Volume.objects.filter(pk=volume_id, status=Volume.Status.DELETING, backend__host=host).first()
    if volume is None:
        return None
    try:
        # A cascading delete takes the volume's snapshots first.
        for snapshot in Snapshot.objects.filter(volume=volume, status=Snapshot.Status.DELETING):
            backend.delete_snapshot(snapshot.pk)
            forget_snapshot(snapshot)
        backend.delete(volume_id)
    except Exception as error:  # noqa: BLE001
        fail(volume, f"delete volume: {error}", DELETE_VOLUME, status=Volume.Status.ERROR_DELETING,
             expected=Volume.Status.DELETING)
        return None
    forget_volume(volume)
    return volume_id


def forget_volume(volume):
    """Removes a deleted volume's row and gives its space back, once."""
    with transaction.atomic():
        row = Volume.objects.select_for_update().filter(pk=volume.pk).first()
        if row is None:
            return
        if row.backend_id is not None:
            release_capacity(row.backend_id, row.size)
        row.delete()


@shared_task(name="volumes.tasks.extend_volume", ignore_result=True)
def extend_volume(volume_id, host):
    backend = worker.served(host)
    volume = Volume.objects.filter(pk=volume_id, status=Volume.Status.EXTENDING, backend__host=host).first()
    if volume is None or volume.extend_size is None:
        return None
    attached = list(volume.attachments.filter(status=Attachment.Status.ATTACHED))
    new_size = volume.extend_size
    try:
        backend.extend(volume_id, new_size, in_use=bool(attached))
    except Exception as error:  # noqa: BLE001
        end_extend(volume, f"extend volume: {error}")
        return None
    volume.set_status(Volume.Status.IN_USE if attached else Volume.Status.AVAILABLE,
                      expected=Volume.Status.EXTENDING, size=new_size, extend_size=None)
    # As Cinder tells Nova (the volume-extended event): each server's node
    # grows the disk in its running domain.
    for attachment in attached:
        if attachment.attached_host and attachment.instance_uuid:
            dispatch.to_node(dispatch.NODE_EXTEND_VOLUME, attachment.attached_host, attachment.instance_uuid,
                             volume_id, new_size * GiB)
    return volume_id


@shared_task(name="volumes.tasks.upload_to_image", ignore_result=True)
def upload_to_image(volume_id, image_id, disk_format, host):
    """os-volume_upload_image: the volume's data converted to `disk_format`
    in a scratch file, stored as the image's data; the volume is available
    (or in-use) again after, the image active, or deleted on failure."""
    from images import from_volume

    backend = worker.served(host)
    volume = Volume.objects.filter(pk=volume_id, status=Volume.Status.UPLOADING, backend__host=host).first()
    if volume is None:
        return None
    try:
        source, source_format = backend.qemu_source(volume_id)
        with tempfile.TemporaryDirectory(prefix="upload-", dir=conf.VOLUME_DIR.parent if
                                         conf.VOLUME_DIR.parent.exists() else None) as scratch:
            path = Path(scratch) / "image"
            qemu_img("convert", "-q", "-f", source_format, "-O", disk_format, source, str(path))
            from_volume.store_file(image_id, path)
    except Exception as error:  # noqa: BLE001  (the message says why)
        from_volume.forget(image_id)
        settle_after_upload(volume)
        record_message(volume, f"upload to image: {error}", UPLOAD_TO_IMAGE)
        return None
    settle_after_upload(volume)
    return image_id


def settle_after_upload(volume):
    attached = volume.attachments.filter(status=Attachment.Status.ATTACHED).exists()
    try:
        volume.set_status(Volume.Status.IN_USE if attached else Volume.Status.AVAILABLE,
                          expected=Volume.Status.UPLOADING)
    except InvalidStatus:
        pass  # reset meanwhile


@shared_task(name="volumes.tasks.send_volume", ignore_result=True)
def send_volume(volume_id, target_host, host):
    """A retype's first step, on the source's worker: what qemu-img reads
    the volume as, handed to the target's worker to copy in."""
    backend = worker.served(host)
    volume = Volume.objects.filter(pk=volume_id, status=Volume.Status.RETYPING, backend__host=host,
                                   migration_backend__host=target_host).first()
    if volume is None:
        return None
    try:
        source, source_format = backend.qemu_source(volume_id)
    except Exception as error:  # noqa: BLE001  (the message says why)
        end_retype(volume, f"retype volume: {error}")
        return None
    dispatch.to_backend(dispatch.RECEIVE_VOLUME, target_host, volume_id, source, source_format, host)
    return volume_id


@shared_task(name="volumes.tasks.receive_volume", ignore_result=True)
def receive_volume(volume_id, source, source_format, source_host, host):
    """On the target's worker: the volume's data copied in (as a volume
    from an image is), then the volume is this back end's, of its new type,
    available; the source drops its copy."""
    backend = worker.served(host)
    volume = Volume.objects.filter(pk=volume_id, status=Volume.Status.RETYPING, backend__host=source_host,
                                   migration_backend__host=host).first()
    if volume is None:
        return None
    try:
        backend.create_from_image(volume_id, volume.size, source, source_format)
    except Exception as error:  # noqa: BLE001
        backend.delete(volume_id)
        end_retype(volume, f"retype volume: {error}")
        return None
    with transaction.atomic():
        row = Volume.objects.select_for_update().filter(pk=volume_id, status=Volume.Status.RETYPING,
                                                        migration_backend__host=host).first()
        if row is None:  # ended meanwhile (the reconciler): this copy is not the volume's
            backend.delete(volume_id)
            return None
        release_capacity(row.backend_id, row.size)
        row.set_status(Volume.Status.AVAILABLE, backend=row.migration_backend, volume_type=row.migration_type,
                       migration_backend=None, migration_type=None, connection_info=backend.connection_info(volume_id))
        dispatch.to_backend(dispatch.DROP_VOLUME_COPY, source_host, volume_id)
    return volume_id


@shared_task(name="volumes.tasks.drop_volume_copy", ignore_result=True)
def drop_volume_copy(volume_id, host):
    """On a retyped volume's former back end: its copy goes (unless the
    volume came back here meanwhile)."""
    if not Volume.objects.filter(pk=volume_id, backend__host=host).exists():
        worker.served(host).delete(volume_id)
    return volume_id


def end_retype(volume, message):
    """A retype that could not move the data: the space claimed on the
    target goes back, the volume stays where and what it was, available."""
    with transaction.atomic():
        row = Volume.objects.select_for_update().filter(pk=volume.pk, status=Volume.Status.RETYPING).first()
        if row is None:
            return False
        if row.migration_backend_id is not None:
            release_capacity(row.migration_backend_id, row.size)
        row.set_status(Volume.Status.AVAILABLE, migration_backend=None, migration_type=None)
        record_message(row, message, RETYPE_VOLUME)
    return True


def end_extend(volume, message):
    """A failed extend: the space claimed for the growth goes back, the
    volume keeps its size in error_extending."""
    with transaction.atomic():
        row = Volume.objects.select_for_update().filter(pk=volume.pk, status=Volume.Status.EXTENDING).first()
        if row is None:
            return False
        if row.backend_id is not None and row.extend_size:
            release_capacity(row.backend_id, row.extend_size - row.size)
        row.set_status(Volume.Status.EXTENDING, extend_size=None)
        return fail(row, message, EXTEND_VOLUME, status=Volume.Status.ERROR_EXTENDING,
                    expected=Volume.Status.EXTENDING)


@shared_task(name="volumes.tasks.create_snapshot", ignore_result=True)
def create_snapshot(snapshot_id, host):
    backend = worker.served(host)
    snapshot = Snapshot.objects.filter(pk=snapshot_id, status=Snapshot.Status.CREATING, backend__host=host).first()
    if snapshot is None:
        return None
    try:
        backend.create_snapshot(snapshot_id, snapshot.volume_id)
    except Exception as error:  # noqa: BLE001
        backend.delete_snapshot(snapshot_id)
        fail(snapshot, f"create snapshot: {error}", CREATE_SNAPSHOT, expected=Snapshot.Status.CREATING)
        return None
    try:
        snapshot.set_status(Snapshot.Status.AVAILABLE, expected=Snapshot.Status.CREATING, progress="100%")
    except InvalidStatus:
        backend.delete_snapshot(snapshot_id)
    return snapshot_id


@shared_task(name="volumes.tasks.delete_snapshot", ignore_result=True)
def delete_snapshot(snapshot_id, host):
    backend = worker.served(host)
    snapshot = Snapshot.objects.filter(pk=snapshot_id, status=Snapshot.Status.DELETING, backend__host=host).first()
    if snapshot is None:
        return None
    try:
        backend.delete_snapshot(snapshot_id)
    except Exception as error:  # noqa: BLE001
        fail(snapshot, f"delete snapshot: {error}", DELETE_SNAPSHOT, status=Snapshot.Status.ERROR_DELETING,
             expected=Snapshot.Status.DELETING)
        return None
    forget_snapshot(snapshot)
    return snapshot_id


def forget_snapshot(snapshot):
    with transaction.atomic():
        row = Snapshot.objects.select_for_update().filter(pk=snapshot.pk).first()
        if row is None:
            return
        if row.backend_id is not None:
            release_capacity(row.backend_id, row.size)
        row.delete()


@shared_task(name="volumes.tasks.create_backup", ignore_result=True)
def create_backup(backup_id, host):
    from volumes import backups

    backend = worker.served(host)
    backup = Backup.objects.filter(pk=backup_id, status=Backup.Status.CREATING, host=host).first()
    if backup is None:
        return None
    return backups.write_backup(backup, backend) and backup_id


@shared_task(name="volumes.tasks.restore_backup", ignore_result=True)
def restore_backup(volume_id, backup_id, host):
    """The backup's data written into the volume: a new one (in creating,
    made here first) or an existing one (restoring-backup). It ends
    available with the backed-up volume's metadata, or in error
    (error_restoring) with the reason; the backup is available again."""
    from volumes import backups

    backend = worker.served(host)
    volume = Volume.objects.filter(pk=volume_id, backend__host=host, status__in=(
        Volume.Status.CREATING, Volume.Status.RESTORING_BACKUP)).first()
    backup = Backup.objects.filter(pk=backup_id, status=Backup.Status.RESTORING, restore_volume_id=volume_id).first()
    if volume is None or backup is None:
        return None
    made = volume.status == Volume.Status.CREATING
    try:
        if made:
            backend.create(volume_id, volume.size)
        restored = backups.read_backup(backup, volume_id, backend)
    except Exception as error:  # noqa: BLE001 - any failure ends the restore, with its reason
        log.warning("restoring backup %s into volume %s failed: %s", backup_id, volume_id, error)
        if made:
            backend.delete(volume_id)
            fail(volume, f"restore backup: {error}", backups.RESTORE_BACKUP, expected=Volume.Status.CREATING)
        else:
            fail(volume, f"restore backup: {error}", backups.RESTORE_BACKUP, status=Volume.Status.ERROR_RESTORING,
                 expected=Volume.Status.RESTORING_BACKUP)
        end_restore(backup)
        return None
    fields = {"metadata": {**volume.metadata, **restored.get("metadata", {})},
              "bootable": volume.bootable or bool(restored.get("bootable")),
              "volume_image_metadata": restored.get("volume_image_metadata") or volume.volume_image_metadata}
    if made:
        fields.update(launched_at=timezone.now(), connection_info=backend.connection_info(volume_id))
    try:
        volume.set_status(Volume.Status.AVAILABLE, expected=volume.status, **fields)
    except InvalidStatus:  # ended meanwhile (the reconciler, a delete)
        if made:
            backend.delete(volume_id)
    end_restore(backup)
    return volume_id


def end_restore(backup):
    try:
        backup.set_status(Backup.Status.AVAILABLE, expected=Backup.Status.RESTORING, restore_volume_id=None)
    except InvalidStatus:
        pass


@shared_task(name="volumes.tasks.delete_backup", ignore_result=True)
def delete_backup(backup_id):
    from volumes import backups

    backup = Backup.objects.filter(pk=backup_id, status=Backup.Status.DELETING).first()
    if backup is None:
        return None
    return backups.discard(backup) and backup_id


@shared_task(name="volumes.tasks.reconcile", ignore_result=True)
def reconcile():
    """Periodic (workers/schedule.py): ends in error (with a message, their
    space and quota given back) the volumes and snapshots stuck in a
    transitional status past conf.TASK_DEADLINE, such as a create whose
    worker was killed and never came back, or whose message was lost. A detach stuck as long (its server's node
    died mid-detach) ends in-use again, with a message, or available when
    no server holds the volume any more."""
    now = timezone.now()
    outcome = {"ended": 0}
    deadline = now - timedelta(seconds=conf.TASK_DEADLINE)
    said = f"did not finish within {conf.TASK_DEADLINE} seconds"
    stuck_volumes = Volume.objects.filter(updated_at__lt=deadline, status__in=(
        Volume.Status.CREATING, Volume.Status.DELETING, Volume.Status.EXTENDING, Volume.Status.UPLOADING,
        Volume.Status.RETYPING))
    for volume in stuck_volumes:
        if volume.status == Volume.Status.RETYPING:
            ended = end_retype(volume, f"retype volume: the retype {said}.")
        elif volume.status == Volume.Status.UPLOADING:
            settle_after_upload(volume)
            record_message(volume, f"upload to image: the upload {said}.", UPLOAD_TO_IMAGE)
            ended = True
        elif volume.status == Volume.Status.CREATING:
            ended = fail(volume, f"create volume: the create {said}.", CREATE_VOLUME_FROM_BACKEND,
                         expected=Volume.Status.CREATING)
        elif volume.status == Volume.Status.DELETING:
            ended = fail(volume, f"delete volume: the delete {said}.", DELETE_VOLUME,
                         status=Volume.Status.ERROR_DELETING, expected=Volume.Status.DELETING)
        else:
            ended = end_extend(volume, f"extend volume: the extend {said}.")
        outcome["ended"] += bool(ended)
    for volume in Volume.objects.filter(updated_at__lt=deadline, status=Volume.Status.DETACHING):
        status = attachments.end_detaching(volume.pk)
        if status == Volume.Status.IN_USE:
            servers = ", ".join(sorted({attachment.instance_uuid or "?" for attachment in volume.attachments.filter(
                status=Attachment.Status.ATTACHED)}))
            record_message(volume, f"detach volume: the detach {said}; the volume is still attached to server "
                                   f"{servers}.", DETACH_VOLUME)
        outcome["ended"] += status is not None
    for snapshot in Snapshot.objects.filter(updated_at__lt=deadline, status__in=(
            Snapshot.Status.CREATING, Snapshot.Status.DELETING)):
        if snapshot.status == Snapshot.Status.CREATING:
            ended = fail(snapshot, f"create snapshot: the create {said}.", CREATE_SNAPSHOT,
                         expected=Snapshot.Status.CREATING)
        else:
            ended = fail(snapshot, f"delete snapshot: the delete {said}.", DELETE_SNAPSHOT,
                         status=Snapshot.Status.ERROR_DELETING, expected=Snapshot.Status.DELETING)
        outcome["ended"] += bool(ended)
    outcome["ended"] += reconcile_backups(deadline, said)
    return outcome


def reconcile_backups(deadline, said):
    """Backups stuck past the deadline: a create ends in error (its objects
    removed, the volume given its status back), a restore gives the backup
    back and leaves the volume in error, a delete ends in error_deleting."""
    from volumes import backups

    ended = 0
    for backup in Backup.objects.filter(updated_at__lt=deadline, status__in=(
            Backup.Status.CREATING, Backup.Status.RESTORING, Backup.Status.DELETING)):
        if backup.status == Backup.Status.CREATING:
            backups.fail_create(backup, f"create backup: the backup {said}.")
        elif backup.status == Backup.Status.RESTORING:
            volume = Volume.objects.filter(pk=backup.restore_volume_id).first()
            if volume is not None and volume.status == Volume.Status.RESTORING_BACKUP:
                fail(volume, f"restore backup: the restore {said}.", backups.RESTORE_BACKUP,
                     status=Volume.Status.ERROR_RESTORING, expected=Volume.Status.RESTORING_BACKUP)
            end_restore(backup)
        else:
            try:
                backup.set_status(Backup.Status.ERROR_DELETING, expected=Backup.Status.DELETING,
                                  fail_reason=f"delete backup: the delete {said}.")
            except InvalidStatus:
                continue
        ended += 1
    return ended

