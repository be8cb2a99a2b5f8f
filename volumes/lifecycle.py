"""Making and deleting volumes, the same way whoever asks: the Block Storage
API's create and delete, and compute's boot from volume (the volume step
makes the server's volumes through here; it never writes volume rows).

    create_volume(caller, size, ...) -> Volume   in creating, placed on a back end (or in error)
    delete_volume(volume)                        inside the caller's transaction, row locked
    create_snapshot(caller, volume_id, ...)      in creating on the volume's back end (or in error)
    discard_snapshots(snapshot_ids)              compute's snapshots that will not be used, deleted
    retype(caller, volume, new_type, policy)     os-retype, inside the caller's transaction, row locked

`caller` is anything with project_id, user_id and is_admin (the API's
credentials). Errors are Cinder's words: BadRequest naming the field,
NotFound for what the caller may not see, quotas.OverQuota."""
from django.db import transaction
from django.db.models import Q

from cloud.errors import BadRequest, NotFound
from volumes import conf, dispatch, quotas, scheduler
from volumes.images import image_for_volume
from volumes.models import Backend, Snapshot, Volume, VolumeType, claim_capacity, record_message

GiB = 2**30


def invalid_input(reason):
    return BadRequest(f"Invalid input received: {reason}")


def not_found(kind, resource_id):
    return NotFound(f"{kind} {resource_id} could not be found.")


def type_visible_to(caller):
    if caller.is_admin:
        return Q()
    return Q(is_public=True) | Q(access__project_id=caller.project_id)


def find_type(caller, name_or_id):
    """The volume type a request names (by id or name), as the caller may see it."""
    from volumes.api.base import is_uuid

    types = VolumeType.objects.filter(type_visible_to(caller)).distinct()
    found = types.filter(pk=name_or_id).first() if is_uuid(name_or_id) else None
    found = found or types.filter(name=name_or_id).first()
    if found is None:
        if is_uuid(name_or_id):
            raise not_found("Volume type", name_or_id)
        raise NotFound(f"Volume type with name {name_or_id} could not be found.")
    return found


def default_type():
    return VolumeType.objects.get_or_create(name=conf.DEFAULT_VOLUME_TYPE,
                                            defaults={"description": "Default Volume Type"})[0]


def availability_zones():
    return {conf.AVAILABILITY_ZONE, *Backend.objects.values_list("availability_zone", flat=True)}


def visible(model, caller, row_id, kind):
    """The caller's volume or snapshot `row_id` (any for an admin), else NotFound."""
    from volumes.api.base import is_uuid

    rows = model.objects.all() if caller.is_admin else model.objects.filter(project_id=caller.project_id)
    related = "volume_type" if model is Volume else "volume__volume_type"
    row = rows.select_related(related).filter(pk=row_id).first() if is_uuid(row_id) else None
    if row is None:
        raise not_found(kind, row_id)
    return row


def create_volume(caller, size=None, name=None, description=None, volume_type=None, availability_zone=None,
                  metadata=None, snapshot_id=None, source_volid=None, image_ref=None, multiattach=False,
                  restore_backup=None):
    """A new volume (empty, or from a snapshot, another volume or an image,
    or to hold `restore_backup`'s data) after every check, its quota
    reserved, handed to the scheduler once the caller's transaction
    commits."""
    snapshot = source = image = None
    if snapshot_id:
        snapshot = visible(Snapshot, caller, snapshot_id, "Snapshot")
        if snapshot.status != Snapshot.Status.AVAILABLE:
            raise invalid_input(f"Snapshot {snapshot.pk} status must be available, but current status is: "
                                f"{snapshot.status}.")
    if source_volid:
        source = visible(Volume, caller, source_volid, "Volume")
        if source.status not in (Volume.Status.AVAILABLE, Volume.Status.IN_USE):
            raise invalid_input(f"Unable to create a volume from an originating source volume when its status "
                                f"is not 'available' or 'in-use' (it is {source.status}).")
    if sum(bool(x) for x in (snapshot, source, image_ref)) > 1:
        raise invalid_input("Only one of snapshot_id, source_volid and imageRef may be given.")
    origin = snapshot or source
    given_size = size
    if size is None and origin is not None:
        size = origin.size
    if size is None or size <= 0:
        raise invalid_input(f"Volume size '{given_size}' must be an integer and greater than 0.")
    if origin is not None and size < origin.size:
        what = "snapshot" if snapshot else "source volume"
        raise invalid_input(f"Volume size '{size}'GB cannot be smaller than the {what} size {origin.size}GB. "
                            f"They must be >= original {what} size.")
    if image_ref:
        image = image_for_volume(image_ref, caller.project_id, caller.is_admin)
        if image is None:
            raise not_found("Image", image_ref)
        if image["status"] != "active":
            raise invalid_input(f"Image {image_ref} is not active.")
        needed_gb = image_size_gb(image)
        if needed_gb > size:
            raise invalid_input(f"Size of specified image {needed_gb}GB is larger than volume size {size}GB.")
    source_volume = snapshot.volume if snapshot else source
    if volume_type:
        volume_type = find_type(caller, volume_type)
    elif source_volume is not None:
        volume_type = source_volume.volume_type
    else:
        volume_type = default_type()
    zone = availability_zone or (source_volume.availability_zone if source_volume else conf.AVAILABILITY_ZONE)
    if zone != conf.AVAILABILITY_ZONE and zone not in availability_zones():
        raise invalid_input(f"Availability zone '{zone}' is invalid.")
    with transaction.atomic():
        quotas.reserve(caller.project_id, volume_type, volumes=1, gigabytes=size)
        volume = Volume(
            project_id=caller.project_id, user_id=caller.user_id, name=name, description=description,
            size=size, volume_type=volume_type, availability_zone=zone, metadata=metadata or {},
            snapshot=snapshot, source_volume=source, image_id=image["id"] if image else None,
            bootable=bool(image) or bool(source_volume and source_volume.bootable),
            multiattach=multiattach,
            volume_image_metadata={key: str(image[key]) for key in (
                "disk_format", "container_format", "size", "checksum", "min_disk", "min_ram")
            } | {"image_id": image["id"], "image_name": image["name"] or ""} if image else None)
        if restore_backup is not None:
            scheduler.place(volume, dispatch.RESTORE_BACKUP, restore_backup.pk)
        else:
            scheduler.place(volume)
    return volume


RETYPE_POLICIES = ("never", "on-demand")


def retype(caller, volume, new_type, policy="never"):
    """Cinder's os-retype on the locked volume: when its back end serves
    the new type too, only the type changes; otherwise, with the
    on-demand policy, an available volume without snapshots moves to a
    back end of the new type (its space claimed there now; the source's
    worker hands the data over, see tasks.send_volume). An attached
    volume is refused: its data cannot move under the guest here."""
    if policy not in RETYPE_POLICIES:
        raise invalid_input(f"Invalid migration_policy {policy!r}: it must be never or on-demand.")
    new_type = find_type(caller, new_type)
    if new_type.pk == volume.volume_type_id:
        raise invalid_input(f"Volume {volume.pk} is already of type {new_type.name}: retype needs a new type.")
    if volume.status not in (Volume.Status.AVAILABLE, Volume.Status.IN_USE):
        raise BadRequest(f"Invalid volume: Volume status must be available or in-use to retype, but the current "
                         f"status is {volume.status}.")
    quotas.reserve_type(volume.project_id, new_type, volumes=1, gigabytes=volume.size)
    wanted = new_type.backend_name
    if volume.backend_id is None or not wanted or volume.backend.backend_name == wanted:
        Volume.objects.filter(pk=volume.pk).update(volume_type=new_type)
        return None
    if policy != "on-demand":
        raise BadRequest(f"Invalid volume: Retype of volume {volume.pk} to {new_type.name} needs its data moved to "
                         f"another back end, and the migration policy is never.")
    if volume.status != Volume.Status.AVAILABLE:
        raise BadRequest(f"Invalid volume: Volume {volume.pk} is in-use: its data cannot move to another back end "
                         f"while attached; detach it first.")
    if volume.snapshots.exists():
        raise BadRequest(f"Invalid volume: Volume {volume.pk} has snapshots: its data cannot move to another back "
                         f"end.")
    spec = {"availability_zone": volume.availability_zone, "backend_name": wanted, "backend_id": None,
            "size": volume.size}
    try:
        target = scheduler.claim(spec, lambda backend: volume.set_status(
            Volume.Status.RETYPING, expected=Volume.Status.AVAILABLE, migration_backend=backend,
            migration_type=new_type))
    except scheduler.NoValidBackend as error:
        raise BadRequest(f"Invalid volume: Retype of volume {volume.pk} to {new_type.name}: {error}") from None
    dispatch.to_backend(dispatch.SEND_VOLUME, volume.backend.host, volume.pk, target.host)
    return target


def image_size_gb(image):
    """The GiB a volume needs to hold the image: its min_disk or its (virtual) size, rounded up."""
    return max(image["min_disk"] or 0, -(-(image["virtual_size"] or image["size"] or 0) // GiB))


def delete_volume(volume, snapshots=()):
    """Starts deleting the volume (and `snapshots`, its own), inside the
    caller's transaction with the rows locked."""
    from volumes.tasks import forget_volume

    for snapshot in snapshots:
        snapshot.set_status(Snapshot.Status.DELETING)
    if volume.backend_id is None:
        # Nothing was made anywhere (its create failed): only the row goes.
        forget_volume(volume)
        return
    volume.set_status(Volume.Status.DELETING)
    dispatch.to_backend(dispatch.DELETE, volume.backend.host, volume.pk)


def create_snapshot(caller, volume_id, force=False, name=None, description=None, metadata=None):
    """A snapshot of the caller's volume (`force`: also while in-use), its
    quota reserved and the space claimed on the volume's back end, whose
    worker makes it once the caller's transaction commits. No room there
    leaves it in error with a message, as Cinder's scheduler does."""
    from volumes.api.base import is_uuid
    from volumes.tasks import CREATE_SNAPSHOT

    with transaction.atomic():
        volumes = Volume.objects.select_for_update(of=("self",)).select_related("volume_type", "backend")
        if not caller.is_admin:
            volumes = volumes.filter(project_id=caller.project_id)
        # No volume named is no volume found, as Cinder answers.
        volume = volumes.filter(pk=volume_id).first() if volume_id and is_uuid(str(volume_id)) else None
        if volume is None:
            raise not_found("Volume", volume_id)
        allowed = (Volume.Status.AVAILABLE, Volume.Status.IN_USE) if force else (Volume.Status.AVAILABLE,)
        if volume.status not in allowed or volume.backend_id is None:
            raise BadRequest(f"Invalid volume: Volume {volume.pk} status must be available, but current status "
                             f"is: {volume.status}.")
        quotas.reserve(volume.project_id, volume.volume_type, snapshots=1, gigabytes=volume.size)
        snapshot = Snapshot.objects.create(project_id=volume.project_id, user_id=caller.user_id, volume=volume,
                                           size=volume.size, name=name, description=description,
                                           metadata=metadata or {})
        # The copy takes room on the volume's back end.
        if claim_capacity(volume.backend_id, volume.size):
            snapshot.set_status(Snapshot.Status.CREATING, backend=volume.backend)
            dispatch.to_backend(dispatch.CREATE_SNAPSHOT, volume.backend.host, snapshot.pk)
        else:
            snapshot.set_status(Snapshot.Status.ERROR)
            record_message(snapshot, f"create snapshot: Insufficient free space on back end "
                                     f"{volume.backend.host} for a snapshot of {volume.size} GB.",
                           CREATE_SNAPSHOT, resource_type="VOLUME_SNAPSHOT")
    return snapshot


def snapshot_progress(snapshot_id):
    """(status, why it failed or "") of a snapshot being made, for a caller
    waiting on it; (None, "") if it is gone."""
    from volumes.models import Message

    status = Snapshot.objects.filter(pk=snapshot_id).values_list("status", flat=True).first()
    reason = ""
    if status == Snapshot.Status.ERROR:
        reason = Message.objects.filter(resource_uuid=str(snapshot_id)).values_list("user_message",
                                                                                    flat=True).first() or ""
    return status, reason


def discard_snapshots(snapshot_ids):
    """Deletes snapshots compute made and will not use (a volume-backed
    server's image that failed). One still being made is deleted by its
    back end's worker right after it (the delete queues behind the create
    on the same worker), so none is left creating or holding space."""
    from volumes.tasks import forget_snapshot

    with transaction.atomic():
        for snapshot in Snapshot.objects.select_for_update(of=("self",)).select_related("backend").filter(
                pk__in=list(snapshot_ids)).order_by("pk"):
            if snapshot.status in (Snapshot.Status.DELETING, Snapshot.Status.ERROR_DELETING):
                continue
            if snapshot.backend_id is None:
                forget_snapshot(snapshot)
                continue
            snapshot.set_status(Snapshot.Status.DELETING)
            dispatch.to_backend(dispatch.DELETE_SNAPSHOT, snapshot.backend.host, snapshot.pk)


def snapshot_for_project(snapshot_id, project_id, is_admin=False):
    """The snapshot if the caller may see it (its project's, or any for an admin), else None."""
    snapshots = Snapshot.objects.filter(pk=snapshot_id)
    if not is_admin:
        snapshots = snapshots.filter(project_id=project_id)
    return snapshots.first()


def delete_unattached(volume_id):
    """Deletes the volume once nothing holds it (compute's
    delete_on_termination, a failed boot's own volume): a volume still
    attached elsewhere, or busy, is left as it is. Whether it was deleted."""
    from volumes.attachments import LIVE

    with transaction.atomic():
        volume = Volume.objects.select_for_update(of=("self",)).select_related("backend").filter(pk=volume_id).first()
        if volume is None:
            return False
        if volume.status not in (Volume.Status.AVAILABLE, Volume.Status.ERROR, Volume.Status.CREATING) or \
                volume.attachments.filter(status__in=LIVE).exists() or volume.snapshots.exists():
            return False
        if volume.status == Volume.Status.CREATING and volume.backend_id is not None:
            # Its back end is making it: deleting now would race the create.
            return False
        delete_volume(volume)
    return True


def progress_of(volume_id):
    """(status, why it failed or "") of a volume being made, for a caller
    waiting on it; (None, "") if it is gone."""
    from volumes.models import Message

    volume = Volume.objects.filter(pk=volume_id).values_list("status", flat=True).first()
    if volume is None:
        return None, ""
    reason = ""
    if volume == Volume.Status.ERROR:
        reason = Message.objects.filter(resource_uuid=str(volume_id)).values_list("user_message", flat=True).first() \
            or ""
    return volume, reason
