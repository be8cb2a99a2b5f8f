"""Images made from servers (Nova's createImage): the compute API asks for
the snapshot's record (`new_snapshot`), the server's node hands over the
flattened disk as a file (`store_snapshot`), or gives up (`discard`). A
server whose root disk is a volume is snapshotted as Nova does: its
volumes' snapshots are named in the image's block_device_mapping
(`describe_volume_snapshots`, while the image is still queued, so a
snapshot given up finds them) and the image goes active with no data
(`store_without_data`).

The record follows Nova's snapshot: private to the caller's project (shared
with the server's project when an administrator snapshots another
project's server), properties image_type=snapshot, instance_uuid, user_id,
owner_id, base_image_ref and the base image's inheritable properties,
min_disk at least the server's root disk, min_ram the base image's."""
import json

from django.db import transaction

from images import data, stores
from images.api.serializers import check_name, check_value
from images.from_volume import store_file
from images.models import ACTIVE, QUEUED, SAVING, Image, ImageMember

# Properties of the base image a snapshot does not take over (Nova's
# NON_INHERITABLE_IMAGE_PROPERTIES and namespaces, and what the snapshot sets).
NOT_INHERITED = {"cache_in_nova", "bittorrent", "img_signature", "img_signature_hash_method",
                 "img_signature_certificate_uuid", "img_signature_key_type", "image_type", "instance_uuid",
                 "user_id", "owner_id", "image_location", "image_state", "instance_owner", "block_device_mapping",
                 "bdm_v2", "root_device_name"}
NOT_INHERITED_PREFIXES = ("os_glance", "img_signature", "trait:")


class SnapshotRefused(Exception):
    """The project may not store another image now (its image quota is
    used up): Glance's words, for the compute API's 413."""


def snapshot_properties(base, instance_id, user_id, owner_id, base_image_ref, metadata, backup_type=None):
    """The snapshot's custom properties: the base image's inheritable ones,
    Nova's snapshot properties (a backup's with its backup_type), then the
    caller's metadata (each checked as the Image API checks a property: a
    reserved name is a 403, a bad one a 400)."""
    properties = {name: value for name, value in (base.properties if base else {}).items()
                  if name not in NOT_INHERITED and not name.startswith(NOT_INHERITED_PREFIXES)}
    if backup_type is not None:
        properties["backup_type"] = backup_type
    properties.update({"image_type": "snapshot" if backup_type is None else "backup",
                       "instance_uuid": str(instance_id), "user_id": user_id,
                       "owner_id": owner_id, "image_location": "snapshot", "image_state": "available",
                       "base_image_ref": (base.properties.get("base_image_ref") if base else None) or base_image_ref})
    for name, value in metadata.items():
        check_name(name, f"metadata/{name}")
        properties[name] = check_value(name, value, f"metadata/{name}")
    return properties


def new_snapshot(name, project_id, user_id, instance, metadata, backup_type=None):
    """A queued qcow2 image for a snapshot (with `backup_type`, a backup)
    of `instance`, taken by `project_id`'s `user_id`; its id.
    SnapshotRefused when the project's image quota has no room left,
    BadRequest/Forbidden for bad metadata."""
    base = Image.objects.filter(pk=instance.image_id).first() if instance.image_id else None
    properties = snapshot_properties(base, instance.pk, user_id, instance.project_id, instance.image_id, metadata,
                                     backup_type)
    for_other_project = project_id != instance.project_id
    if for_other_project:
        properties["instance_owner"] = instance.project_id
    with transaction.atomic():
        data.lock_project(project_id)
        probe = Image(owner=project_id)
        remaining = data.quota_remaining(probe)
        if remaining <= 0:
            raise SnapshotRefused(str(data.quota_exceeded(remaining)))
        image = Image.objects.create(
            name=name, owner=project_id, visibility="shared" if for_other_project else "private",
            disk_format="qcow2", container_format="bare", properties=properties,
            min_disk=max(base.min_disk if base else 0, instance.root_gb or 0), min_ram=base.min_ram if base else 0)
        if for_other_project:
            ImageMember.objects.create(image=image, member=instance.project_id)
    return str(image.id)


class SnapshotGone(Exception):
    """The snapshot's image was deleted (or changed) before its data was
    stored: nothing is left to finish."""


def store_snapshot(image_id, path):
    """The flattened disk at `path` as the image's data in the default
    store (through the same upload as every image: quota, hashes, format
    check). Returns the active image; raises SnapshotGone when the image
    was deleted meanwhile, or the upload's error (the image is then back
    in queued: `discard` it)."""
    image = Image.objects.filter(pk=image_id).first()
    if image is None or image.status not in (QUEUED, SAVING):
        raise SnapshotGone(f"Image {image_id} was deleted before the snapshot was stored.")
    try:
        store_file(image_id, path)
    except Exception:
        if not Image.objects.filter(pk=image_id).exists():
            raise SnapshotGone(f"Image {image_id} was deleted while the snapshot was stored.") from None
        raise
    return Image.objects.get(pk=image_id)


def describe_volume_snapshots(image_id, mappings, root_device_name="/dev/vda"):
    """Nova's properties of a volume-backed snapshot on the queued image:
    block_device_mapping (a JSON list of block_device_mapping_v2 entries
    with their snapshot_id), bdm_v2 and root_device_name; inside the
    caller's transaction. SnapshotGone when the image was deleted."""
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id, status=QUEUED).first()
        if image is None:
            raise SnapshotGone(f"Image {image_id} was deleted before its volumes were snapshotted.")
        image.properties = {**image.properties, "block_device_mapping": json.dumps(mappings), "bdm_v2": "True",
                            "root_device_name": root_device_name}
        # Nothing but these properties: an empty raw image, as Nova uploads.
        image.disk_format, image.container_format = "raw", "bare"
        image.save(update_fields=["properties", "disk_format", "container_format", "updated_at"])


def snapshot_name(image_id):
    return Image.objects.filter(pk=image_id).values_list("name", flat=True).first() or ""


def block_device_mapping(properties):
    """The block_device_mapping_v2 entries an image's properties carry
    (Nova's JSON string, or a list), [] when there are none."""
    value = (properties or {}).get("block_device_mapping")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def snapshot_mappings(image_id):
    """The block_device_mapping of image `image_id` ([] if it is gone)."""
    return block_device_mapping(Image.objects.filter(pk=image_id).values_list("properties", flat=True).first())


def store_without_data(image_id):
    """The volume-backed snapshot's image active with zero bytes (through
    the same upload as every image). SnapshotGone when it was deleted."""
    image = Image.objects.filter(pk=image_id, status__in=(QUEUED, SAVING)).first()
    if image is None:
        raise SnapshotGone(f"Image {image_id} was deleted before the snapshot was stored.")
    try:
        data.upload(image, iter(()), stores.default(), 0)
    except Exception:
        if not Image.objects.filter(pk=image_id).exists():
            raise SnapshotGone(f"Image {image_id} was deleted while the snapshot was stored.") from None
        raise
    return Image.objects.get(pk=image_id)


def discard(image_id):
    """A snapshot that cannot finish: its image goes (as Nova deletes it),
    with any data stored. Nothing if it is gone already."""
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is None:
            return False
        locations = list(image.locations.values_list("store", "url"))
        image.delete()
    data.delete_data(locations)
    return True


def unfinished_snapshots(instance_id):
    """(id, image_type) of the snapshots and backups of an instance whose
    data never arrived."""
    return [(image_id, properties.get("image_type")) for image_id, properties in Image.objects.filter(
        properties__instance_uuid=str(instance_id), properties__image_type__in=("snapshot", "backup"),
        status__in=(QUEUED, SAVING)).values_list("id", "properties")]


def rotate_backups(image, rotation):
    """After backup `image` is stored: the instance's active backups of
    its backup_type past the newest `rotation` are deleted (Nova's
    rotation; 0 keeps none). Returns the ids deleted."""
    backups = Image.objects.filter(
        status=ACTIVE, properties__image_type="backup", properties__instance_uuid=image.properties["instance_uuid"],
        properties__backup_type=image.properties["backup_type"]).order_by("-created_at", "-id")
    stale = [str(image_id) for image_id in backups.values_list("id", flat=True)[rotation:]]
    return [image_id for image_id in stale if discard(image_id)]

