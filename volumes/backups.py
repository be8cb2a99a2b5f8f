"""Volume backups: a volume's data (or one of its snapshots') copied into
the object store, in a container of the backup's project, where Swift and
S3 list it like any object. The data goes in chunks of CHUNK_SIZE (chunks
of zeros are left out) under the backup's object prefix, with a manifest
(`<prefix>metadata`) naming each chunk's object and SHA-256, and the
volume's metadata. An incremental backup writes only the chunks that
differ from its parent's and names its parent's objects for the others;
a restore follows the manifest, whichever backup wrote each chunk.

    create(caller, volume_id, ...) -> Backup    API: in creating, handed to the volume's back end worker
    restore(caller, backup, volume_id, name)    API: into a new volume, or an available one of the caller's
    delete(backup, force=False)                 API: its objects then its row, on the control worker
    write_backup(backup, backend)               volume worker: read the volume, store its chunks
    read_backup(backup, volume_id, backend)     volume worker: write the backup's data into the volume

Errors are Cinder's words: BadRequest naming the problem, NotFound for
what the caller may not see, quotas.OverQuota."""
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from cloud.errors import BadRequest
from objects import client as object_store
from volumes import conf, dispatch, lifecycle, quotas
from volumes.backends import qemu_img
from volumes.models import Backup, InvalidStatus, Snapshot, Volume

log = logging.getLogger(__name__)

GiB = 2**30
CHUNK_SIZE = 32 * 2**20
READ_SIZE = 2**20
DEFAULT_CONTAINER = "volumebackups"
MANIFEST = "metadata"
MANIFEST_VERSION = 1
# Cinder's message event ids (volumes.models.record_message).
CREATE_BACKUP = "BACKUP_BACKUP_001_007"
RESTORE_BACKUP = "BACKUP_BACKUP_003_007"


def with_dependents(queryset):
    """Annotates each backup with whether an incremental one builds on it."""
    return queryset.annotate(has_dependents=Exists(Backup.objects.filter(parent=OuterRef("pk"))))


# -- the API's side ------------------------------------------------------------

def create(caller, volume_id, name=None, description=None, container=None, incremental=False, force=False,
           snapshot_id=None, metadata=None):
    """A backup of the caller's volume (of its snapshot `snapshot_id` if
    given), its quota reserved, in creating; the volume's back end worker
    makes it once the caller's transaction commits."""
    with transaction.atomic():
        volume = lifecycle.visible(Volume, caller, volume_id, "Volume")
        volume = Volume.objects.select_for_update(of=("self",)).select_related("backend").get(pk=volume.pk)
        snapshot = None
        if snapshot_id:
            snapshot = lifecycle.visible(Snapshot, caller, snapshot_id, "Snapshot")
            if snapshot.volume_id != volume.pk:
                raise lifecycle.invalid_input(f"Snapshot {snapshot.pk} is not a snapshot of volume {volume.pk}.")
            if snapshot.status != Snapshot.Status.AVAILABLE:
                raise BadRequest(f"Invalid snapshot: Snapshot to be backed up must be available, but the current "
                                 f"status is \"{snapshot.status}\".")
        elif volume.status == Volume.Status.IN_USE and not force:
            raise BadRequest("Invalid volume: Backing up an in-use volume must use the force flag.")
        elif volume.status not in (Volume.Status.AVAILABLE, Volume.Status.IN_USE):
            raise BadRequest(f"Invalid volume: Volume to be backed up must be available or in-use, but the current "
                             f"status is \"{volume.status}\".")
        if volume.backend_id is None:
            raise BadRequest(f"Invalid volume: Volume {volume.pk} holds no data to back up.")
        parent = None
        if incremental:
            parent = Backup.objects.filter(volume_id=volume.pk, status=Backup.Status.AVAILABLE).order_by(
                "-data_timestamp", "-created_at").first()
            if parent is None:
                raise BadRequest("Invalid backup: No backups available to do an incremental backup.")
        quotas.reserve_backup(volume.project_id, volume.size)
        backup = Backup.objects.create(
            project_id=volume.project_id, user_id=caller.user_id, volume_id=volume.pk,
            snapshot_id=snapshot.pk if snapshot else None, name=name, description=description,
            container=container or DEFAULT_CONTAINER, size=volume.size, availability_zone=volume.availability_zone,
            parent=parent, metadata=metadata or {}, host=volume.backend.host,
            volume_previous_status="" if snapshot else volume.status)
        if snapshot is None:
            volume.set_status(Volume.Status.BACKING_UP)
        dispatch.to_backend(dispatch.CREATE_BACKUP, volume.backend.host, backup.pk)
    return backup


def restore(caller, backup, volume_id=None, name=None):
    """Starts restoring the available `backup` into the caller's volume
    `volume_id` (available, at least the backup's size) or into a new one
    of the backup's size: the volume that will hold it."""
    with transaction.atomic():
        backup = Backup.objects.select_for_update().get(pk=backup.pk)
        if backup.status != Backup.Status.AVAILABLE:
            raise BadRequest(f"Invalid backup: Backup status must be available, but the current status is "
                             f"\"{backup.status}\".")
        if volume_id:
            volume = lifecycle.visible(Volume, caller, volume_id, "Volume")
            volume = Volume.objects.select_for_update(of=("self",)).select_related("backend").get(pk=volume.pk)
            if volume.status != Volume.Status.AVAILABLE:
                raise BadRequest(f"Invalid volume: Volume to be restored to must be available, but the current "
                                 f"status is \"{volume.status}\".")
            if volume.size < backup.size:
                raise lifecycle.invalid_input(f"volume size {volume.size} is smaller than backup size "
                                              f"{backup.size}.")
            if volume.backend_id is None:
                raise BadRequest(f"Invalid volume: Volume {volume.pk} has no back end to restore into.")
            volume.set_status(Volume.Status.RESTORING_BACKUP)
            dispatch.to_backend(dispatch.RESTORE_BACKUP, volume.backend.host, volume.pk, backup.pk)
        else:
            volume = lifecycle.create_volume(caller, size=backup.size, name=name or f"restore_backup_{backup.pk}",
                                             description=f"auto-created volume for restore from backup {backup.pk}",
                                             restore_backup=backup)
            if volume.backend_id is None:  # no back end could take it: the volume says why
                return volume
        backup.set_status(Backup.Status.RESTORING, restore_volume_id=volume.pk)
    return volume


def delete(backup, force=False):
    """Starts deleting the backup: its objects go on the control worker,
    then its row. One that an incremental backup builds on stays."""
    with transaction.atomic():
        backup = Backup.objects.select_for_update().get(pk=backup.pk)
        if not force and backup.status not in (Backup.Status.AVAILABLE, Backup.Status.ERROR):
            raise BadRequest(f"Invalid backup: Backup status must be available or error, but the current status is "
                             f"\"{backup.status}\".")
        if backup.children.exists():
            raise BadRequest("Invalid backup: Incremental backups exist for this backup.")
        backup.set_status(Backup.Status.DELETING)
        dispatch.to_control(dispatch.DELETE_BACKUP, backup.pk)


# -- the workers' side ---------------------------------------------------------

def _scratch_directory():
    base = conf.VOLUME_DIR.parent
    return tempfile.TemporaryDirectory(prefix="backup-", dir=base if base.exists() else None)


def _manifest(backup):
    with object_store.open_object(backup.project_id, backup.container, backup.object_prefix + MANIFEST) as file:
        return json.load(file)


def _zeros(length, _cache={}):
    if length not in _cache:
        _cache.clear()
        _cache[length] = bytes(length)
    return _cache[length]


def _chunks_of(path, size):
    """(offset, length, data or None for zeros) of the raw file, a chunk at
    a time; holes are skipped without reading them."""
    with open(path, "rb") as file:
        descriptor = file.fileno()
        for offset in range(0, size, CHUNK_SIZE):
            length = min(CHUNK_SIZE, size - offset)
            try:
                data_at = os.lseek(descriptor, offset, os.SEEK_DATA)
            except OSError:  # nothing but a hole from here on
                data_at = size
            if data_at >= offset + length:
                yield offset, length, None
                continue
            file.seek(offset)
            data = file.read(length)
            yield offset, length, None if data == _zeros(length) else data


def _pieces(data):
    view = memoryview(data)
    for start in range(0, len(view), READ_SIZE):
        yield view[start:start + READ_SIZE]


def write_backup(backup, backend):
    """Reads the volume (or snapshot) as raw data, stores its chunks and
    then its manifest; the backup ends available, or in error with its
    reason and nothing left in the store. The volume gets its status back."""
    try:
        if backup.snapshot_id:
            source, source_format = backend.snapshot_source(backup.snapshot_id)
        else:
            source, source_format = backend.qemu_source(backup.volume_id)
        parent_chunks = {}
        if backup.parent_id:
            parent = Backup.objects.get(pk=backup.parent_id)
            parent_chunks = {chunk[0]: chunk for chunk in _manifest(parent)["chunks"]}
        volume = Volume.objects.filter(pk=backup.volume_id).values(
            "metadata", "bootable", "volume_image_metadata").first() or {}
        with _scratch_directory() as scratch:
            raw = Path(scratch) / "volume.raw"
            qemu_img("convert", "-q", "-f", source_format, "-O", "raw", source, str(raw))
            size = raw.stat().st_size
            chunks, written = [], 0
            for offset, length, data in _chunks_of(raw, size):
                if data is None:
                    chunks.append([offset, length, None, None])
                    continue
                digest = hashlib.sha256(data).hexdigest()
                earlier = parent_chunks.get(offset)
                if earlier is not None and earlier[1] == length and earlier[2] == digest:
                    chunks.append([offset, length, digest, earlier[3]])
                    continue
                name = f"{backup.object_prefix}{offset // CHUNK_SIZE:05d}"
                object_store.put(backup.project_id, backup.container, name, _pieces(data))
                chunks.append([offset, length, digest, name])
                written += 1
        manifest = {"version": MANIFEST_VERSION, "backup_id": str(backup.pk), "volume_id": str(backup.volume_id),
                    "parent_id": str(backup.parent_id) if backup.parent_id else None, "size": size,
                    "chunk_size": CHUNK_SIZE, "chunks": chunks, "volume": volume}
        object_store.put(backup.project_id, backup.container, backup.object_prefix + MANIFEST,
                         [json.dumps(manifest).encode()], content_type="application/json")
    except Exception as error:  # noqa: BLE001 - any failure ends the backup, with its reason
        log.warning("backup %s of volume %s failed: %s", backup.pk, backup.volume_id, error)
        fail_create(backup, f"create backup: {error}")
        return False
    try:
        backup.set_status(Backup.Status.AVAILABLE, expected=Backup.Status.CREATING, object_count=written + 1,
                          data_timestamp=timezone.now())
    except InvalidStatus:  # deleted or reset meanwhile: what was written is not kept
        object_store.delete_prefix(backup.project_id, backup.container, backup.object_prefix)
    finally:
        give_volume_back(backup)
    return True


def give_volume_back(backup):
    """The backed-up volume leaves backing-up for the status it had."""
    if backup.volume_previous_status:
        Volume.objects.filter(pk=backup.volume_id, status=Volume.Status.BACKING_UP).update(
            status=backup.volume_previous_status, updated_at=timezone.now())


def fail_create(backup, reason):
    """A backup that could not be made: its objects go, it ends in error
    with the reason, the volume gets its status back."""
    try:
        object_store.delete_prefix(backup.project_id, backup.container, backup.object_prefix)
    except Exception:  # noqa: BLE001 - the reason below still reaches the user; a delete cleans up later
        log.exception("could not remove the objects of failed backup %s", backup.pk)
    try:
        backup.set_status(Backup.Status.ERROR, expected=Backup.Status.CREATING, fail_reason=reason[:4000])
    except InvalidStatus:
        pass
    give_volume_back(backup)


def read_backup(backup, volume_id, backend):
    """Writes the backup's data into the volume (whose size is at least
    the backup's) through a raw scratch file; returns what the restored
    volume takes from the backed-up one (metadata, bootable, image
    metadata)."""
    manifest = _manifest(backup)
    target, target_format = backend.qemu_source(volume_id)
    with _scratch_directory() as scratch:
        raw = Path(scratch) / "restore.raw"
        with open(raw, "wb") as file:
            file.truncate(manifest["size"])
            for offset, length, digest, name in manifest["chunks"]:
                if name is None:
                    continue
                check = hashlib.sha256()
                file.seek(offset)
                with object_store.open_object(backup.project_id, backup.container, name) as chunk:
                    while piece := chunk.read(READ_SIZE):
                        check.update(piece)
                        file.write(piece)
                if check.hexdigest() != digest:
                    raise object_store.ObjectStoreError(f"Chunk {name} of backup {backup.pk} does not match its "
                                                        f"checksum.")
        qemu_img("convert", "-q", "-n", "-f", "raw", "-O", target_format, str(raw), target)
    return manifest.get("volume") or {}


def discard(backup):
    """The control worker's part of a delete: the objects this backup
    wrote, then its row."""
    try:
        object_store.delete_prefix(backup.project_id, backup.container, backup.object_prefix)
    except Exception as error:  # noqa: BLE001
        backup.set_status(Backup.Status.ERROR_DELETING, expected=Backup.Status.DELETING,
                          fail_reason=f"delete backup: {error}"[:4000])
        return False
    Backup.objects.filter(pk=backup.pk, status=Backup.Status.DELETING).delete()
    return True
