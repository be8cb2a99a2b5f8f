"""A server's block device mappings (Nova's block_device_mapping_v2) with a
volume destination: boot from volume and volumes made or attached at boot.

The API checks them (`parse`) and keeps them in the instance's
request_spec["block_devices"] (`spec_entries`); the boot's volume step
(compute.node.volumes.connect_block_devices) makes the volumes through the
volumes app and records their ids there; a delete detaches them and
deletes those marked delete_on_termination; a failed build gives back what
it made (`release`). Volume rows stay the volumes app's: this module only
calls volumes.attachments and volumes.lifecycle."""
from django.db import transaction

from cloud.errors import BadRequest
from compute.api.base import is_uuid, require_bool, require_int
from compute.images import image_for_boot
from volumes import attachments, lifecycle

SOURCES = ("image", "volume", "snapshot", "blank")
DESTINATIONS = ("local", "volume")


def of(instance):
    return (instance.request_spec or {}).get("block_devices") or []


def spec_entries(devices, credentials):
    """What the instance's request_spec keeps of its mappings: the devices,
    and whether an admin asked for them (the volume step then makes the
    volumes with the admin's rights to read images and snapshots, as Nova
    hands Cinder the requester's context)."""
    return {"block_devices": devices, "block_devices_by_admin": bool(credentials.is_admin)}


def requested_by_admin(instance):
    return bool((instance.request_spec or {}).get("block_devices_by_admin"))


def boots_from_volume(instance):
    return any(device.get("boot_index") == 0 for device in of(instance))


def _invalid_bdm(reason):
    return BadRequest(f"Block Device Mapping is Invalid: {reason}")


def with_image_mappings(mappings, image):
    """The request's block_device_mapping_v2 with its image's own before
    them (a volume-backed server's snapshot carries Nova's bdm_v2
    block_device_mapping, each entry naming its snapshot_id, volume_id or
    image_id): merged as Nova does, a boot volume of the request's
    replacing the image's."""
    from images.from_server import block_device_mapping

    properties = image.properties if image is not None else {}
    if str((properties or {}).get("bdm_v2", "")).lower() not in ("true", "1", "yes"):
        return mappings
    given = mappings if isinstance(mappings, list) else []

    def boots_the_image_locally(mapping):
        # What clients send for `--image` beside other devices: the
        # image's own root; here the image's mapping says what that is.
        return mapping.get("source_type") == "image" and mapping.get("destination_type", "local") == "local" \
            and mapping.get("uuid") in (None, image.id)

    given = [mapping for mapping in given if not (isinstance(mapping, dict) and boots_the_image_locally(mapping))]
    own_boot = any(isinstance(mapping, dict) and str(mapping.get("boot_index")) == "0" for mapping in given)
    from_image = []
    for entry in block_device_mapping(properties):
        if entry.get("destination_type") != "volume" or (own_boot and str(entry.get("boot_index")) == "0"):
            continue
        source = entry.get("source_type")
        mapping = {key: entry.get(key) for key in ("source_type", "destination_type", "boot_index", "volume_size",
                                                    "delete_on_termination", "volume_type")}
        mapping["uuid"] = entry.get({"snapshot": "snapshot_id", "volume": "volume_id", "image": "image_id"}.get(
            source, "uuid"))
        from_image.append(mapping)
    if not from_image:
        return mappings
    return from_image + given if mappings is None or isinstance(mappings, list) else mappings


def parse(mappings, credentials, image, max_count):
    """The mappings with a volume destination, checked and normalized, in
    their device order (the boot volume first: vda); the local image disk
    mapping is accepted as Nova does and left out. BadRequest names the
    field of the first wrong one."""
    if not mappings:
        return []
    if not isinstance(mappings, list):
        raise BadRequest("Invalid input for field 'block_device_mapping_v2': must be a list.")
    devices = []
    for index, mapping in enumerate(mappings):
        field = f"block_device_mapping_v2[{index}]"
        if not isinstance(mapping, dict):
            raise BadRequest(f"Invalid input for field '{field}': must be an object.")
        source = mapping.get("source_type")
        if source not in SOURCES:
            raise BadRequest(f"Invalid input for field '{field}.source_type': {source!r} is not one of "
                             f"{', '.join(SOURCES)}.")
        destination = mapping.get("destination_type") or ("volume" if source in ("volume", "snapshot") else "local")
        if destination not in DESTINATIONS:
            raise BadRequest(f"Invalid input for field '{field}.destination_type': {destination!r} is not local "
                             f"or volume.")
        boot_index = mapping.get("boot_index")
        if boot_index is not None:
            boot_index = require_int(boot_index, f"{field}.boot_index", minimum=-1)
            boot_index = None if boot_index < 0 else boot_index
        if destination == "local":
            if source == "image" and (image is not None and mapping.get("uuid") in (None, image.id)):
                continue
            raise BadRequest(f"Invalid input for field '{field}': only the local disk of the server's image is "
                             f"supported with destination_type local.")
        devices.append(_volume_device(field, mapping, source, boot_index, credentials, max_count))
    boot = [device for device in devices if device["boot_index"] == 0]
    if len(boot) > 1:
        raise BadRequest("Boot sequence for the instance and image/block device mapping combination is not "
                         "valid.")
    return boot + [device for device in devices if device["boot_index"] != 0]


def _volume_device(field, mapping, source, boot_index, credentials, max_count):
    volume_id = mapping.get("uuid")
    if source != "blank" and (not isinstance(volume_id, str) or not is_uuid(volume_id)):
        raise BadRequest(f"Invalid input for field '{field}.uuid': {volume_id!r} is not a 'uuid'.")
    size = mapping.get("volume_size")
    if size is not None:
        size = require_int(size, f"{field}.volume_size", minimum=1)
    dot = mapping.get("delete_on_termination", False)
    dot = require_bool(dot, f"{field}.delete_on_termination") if dot is not None else False
    volume_type = mapping.get("volume_type")
    if volume_type is not None and not isinstance(volume_type, str):
        raise BadRequest(f"Invalid input for field '{field}.volume_type': {volume_type!r} is not a string.")
    device = {"boot_index": boot_index, "source_type": source, "uuid": volume_id, "volume_size": size,
              "delete_on_termination": dot, "volume_type": volume_type, "volume_id": None}
    if source in ("image", "blank") and size is None:
        raise BadRequest(f"Invalid input for field '{field}.volume_size': a size is needed to make a volume from "
                         f"source_type {source}.")
    if source == "image":
        found = image_for_boot(volume_id, credentials.project_id, credentials.is_admin)
        if found is None or found.status != "active":
            raise _invalid_bdm(f"failed to get image {volume_id}.")
        needed = lifecycle.image_size_gb({"min_disk": found.min_disk, "virtual_size": found.virtual_size,
                                          "size": found.size})
        if needed > size:
            raise BadRequest(f"Invalid input for field '{field}.volume_size': image {volume_id} needs "
                             f"{needed} GiB, more than {size}.")
    elif source == "snapshot":
        snapshot = lifecycle.snapshot_for_project(volume_id, credentials.project_id, credentials.is_admin)
        if snapshot is None:
            raise _invalid_bdm(f"failed to get snapshot {volume_id}.")
        if snapshot.status != "available":
            raise BadRequest(f"Invalid snapshot: Snapshot {volume_id} status must be available, but the current "
                             f"status is {snapshot.status}.")
    elif source == "volume":
        volume = attachments.volume_for_project(volume_id, credentials.project_id, credentials.is_admin)
        if volume is None:
            raise _invalid_bdm(f"failed to get volume {volume_id}.")
        if volume.status != "available" and not volume.multiattach:
            raise BadRequest(f"Invalid volume: volume {volume_id} status must be available, but the current "
                             f"status is {volume.status}.")
        if max_count > 1 and not volume.multiattach:
            raise BadRequest(f"Invalid input for field '{field}.uuid': volume {volume_id} cannot be attached to "
                             f"several servers.")
        if boot_index == 0 and not volume.bootable:
            raise _invalid_bdm(f"Volume {volume_id} is not bootable (set its bootable flag to boot from it).")
        device["volume_id"] = volume_id
    return device


def set_volume_id(instance, position, volume_id):
    """Records the volume the step made for the `position`th mapping (so a
    repeated step or a failed build finds it)."""
    from compute.models import Instance

    with transaction.atomic():
        row = Instance.objects.select_for_update().get(pk=instance.pk)
        spec = dict(row.request_spec or {})
        devices = [dict(device) for device in spec.get("block_devices") or []]
        devices[position]["volume_id"] = str(volume_id)
        spec["block_devices"] = devices
        Instance.objects.filter(pk=instance.pk).update(request_spec=spec)
        instance.request_spec = spec


def release(instance, deleting=False):
    """Detaches the instance's volumes (in the caller's transaction). On a
    delete, the volumes marked delete_on_termination are deleted; after a
    failed build, the volumes the build made are (none is left behind, the
    next attempt makes them anew) and the user's own are left available."""
    from compute.models import Instance

    attachments.detach_instance(instance.pk)
    devices = of(instance)
    if not devices:
        return
    kept = []
    for device in devices:
        made_here = device["source_type"] != "volume"
        if device.get("volume_id") and (device["delete_on_termination"] if deleting else made_here):
            lifecycle.delete_unattached(device["volume_id"])
            if made_here:
                device = {**device, "volume_id": None}
        kept.append(device)
    if not deleting:
        spec = {**(instance.request_spec or {}), "block_devices": kept}
        Instance.objects.filter(pk=instance.pk).update(request_spec=spec)
        instance.request_spec = spec
