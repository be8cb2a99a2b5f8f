"""Attaching volumes to servers: the small functions compute calls (it never
writes volume rows), behind both the attachments API (3.27+) and the older
os-reserve / os-attach / os-detach actions.

    reserve(volume_id, instance_uuid) -> Attachment   volume reserved
    update(attachment_id, connector) -> connection info (what the node's disk XML needs)
    complete(attachment_id, mountpoint=None)           volume in-use
    detach(attachment_id)                              volume available once no attachment is left

and what compute reads: volume_for_project, attachments_of (a server's),
attached_volume_ids (a page of servers'), detach_instance (a deleted one's),
move_instance (a resized or unshelved one's, on its new node),
attach_without_host and disconnect_instance (a shelved offloaded one's).

Statuses as Cinder's: available -> reserved -> attaching -> in-use ->
detaching -> available. A volume attached elsewhere is refused unless it is
multiattach."""
from django.db import transaction
from django.utils import timezone

from cloud.errors import BadRequest, NotFound
from volumes.models import Attachment, Volume

LIVE = (Attachment.Status.RESERVED, Attachment.Status.ATTACHING, Attachment.Status.ATTACHED)


def _locked_volume(volume_id):
    volume = Volume.objects.select_for_update().filter(pk=volume_id).first()
    if volume is None:
        raise NotFound(f"Volume {volume_id} could not be found.")
    return volume


def _locked_attachment(attachment_id):
    attachment = Attachment.objects.select_for_update(of=("self",)).select_related("volume").filter(pk=attachment_id).first()
    if attachment is None:
        raise NotFound(f"VolumeAttachment {attachment_id} could not be found.")
    return attachment


def _invalid(reason):
    return BadRequest(f"Invalid volume: {reason}")


def summary(attachment):
    """An attachment as a volume's `attachments` list shows it."""
    return {"id": str(attachment.volume_id), "attachment_id": str(attachment.id),
            "volume_id": str(attachment.volume_id), "server_id": attachment.instance_uuid,
            "host_name": attachment.attached_host, "device": attachment.mountpoint,
            "attached_at": attachment.attach_time.strftime("%Y-%m-%dT%H:%M:%S.%f") if attachment.attach_time else None}


def _check_attachable(volume, instance_uuid):
    live = volume.attachments.filter(status__in=LIVE)
    if instance_uuid and live.filter(instance_uuid=instance_uuid).exists():
        raise _invalid(f"Volume {volume.pk} is already attached to server {instance_uuid}.")
    if volume.status == Volume.Status.AVAILABLE:
        return
    if volume.multiattach and volume.status in (Volume.Status.IN_USE, Volume.Status.RESERVED):
        return
    raise _invalid(f"Volume {volume.pk} status must be available or in-use with multiattach to reserve, "
                   f"but the current status is {volume.status}.")


def reserve(volume_id, instance_uuid, connector=None, mode="rw", mountpoint=None, delete_on_termination=False):
    """A new attachment of the volume to the server; the volume becomes
    reserved (attaching, with a connector). `mountpoint`: the device the
    server will see it as, held from now on so no other attach takes it."""
    if mode not in ("rw", "ro"):
        raise BadRequest(f"Invalid input received: Invalid attach mode {mode!r}: it must be rw or ro.")
    with transaction.atomic():
        volume = _locked_volume(volume_id)
        _check_attachable(volume, instance_uuid)
        attachment = Attachment.objects.create(volume=volume, instance_uuid=instance_uuid, attach_mode=mode,
                                               mountpoint=mountpoint, delete_on_termination=delete_on_termination)
        if volume.status == Volume.Status.AVAILABLE:
            volume.set_status(Volume.Status.RESERVED)
        if connector is not None:
            return attachment, _update(attachment, volume, connector)
    return attachment, None


def update(attachment_id, connector):
    """Gives the attachment its connector (the node that will attach it);
    returns the connection info the node's disk XML is made from."""
    if not isinstance(connector, dict):
        raise BadRequest("Invalid input received: connector must be an object.")
    with transaction.atomic():
        attachment = _locked_attachment(attachment_id)
        volume = _locked_volume(attachment.volume_id)
        return _update(attachment, volume, connector)


def _update(attachment, volume, connector):
    if attachment.status not in (Attachment.Status.RESERVED, Attachment.Status.ATTACHING):
        raise _invalid(f"Attachment {attachment.pk} is {attachment.status}: it cannot be updated.")
    if volume.connection_info is None:
        raise _invalid(f"Volume {volume.pk} has no data to connect to.")
    attachment.status = Attachment.Status.ATTACHING
    attachment.connector = connector
    attachment.attached_host = connector.get("host")
    attachment.save(update_fields=["status", "connector", "attached_host", "updated_at"])
    if volume.status == Volume.Status.RESERVED:
        volume.set_status(Volume.Status.ATTACHING)
    return connection_info(volume, attachment)


def connection_info(volume, attachment=None):
    info = {**volume.connection_info}
    info["data"] = {**info.get("data", {}), "volume_id": str(volume.pk),
                    "access_mode": attachment.attach_mode if attachment else "rw"}
    if attachment is not None:
        info["attachment_id"] = str(attachment.pk)
    return info


def connection_info_of(volume_id):
    volume = Volume.objects.filter(pk=volume_id).first()
    if volume is None or volume.connection_info is None:
        raise _invalid(f"Volume {volume_id} has no data to connect to.")
    return connection_info(volume)


def complete(attachment_id, mountpoint=None):
    """The node attached it: the volume is in-use."""
    with transaction.atomic():
        attachment = _locked_attachment(attachment_id)
        volume = _locked_volume(attachment.volume_id)
        if attachment.status not in (Attachment.Status.ATTACHING, Attachment.Status.ATTACHED):
            raise _invalid(f"Attachment {attachment.pk} has no connector yet: it cannot be completed.")
        attachment.status = Attachment.Status.ATTACHED
        attachment.attach_time = attachment.attach_time or timezone.now()
        if mountpoint:
            attachment.mountpoint = mountpoint
        attachment.save(update_fields=["status", "attach_time", "mountpoint", "updated_at"])
        volume.set_status(Volume.Status.IN_USE, attach_status="attached")
    return attachment


def attach_without_host(volume_id, instance_uuid, mountpoint, delete_on_termination=False):
    """An attachment to a server on no host (shelved offloaded), completed
    without a connector as Nova's shelved attach does: the volume is in-use
    and the attachment has no host until the server's next node connects
    it (update with its connector, then complete)."""
    with transaction.atomic():
        attachment, _info = reserve(volume_id, instance_uuid, mountpoint=mountpoint,
                                    delete_on_termination=delete_on_termination)
        volume = _locked_volume(volume_id)
        Attachment.objects.filter(pk=attachment.pk).update(status=Attachment.Status.ATTACHED,
                                                           attach_time=timezone.now(), updated_at=timezone.now())
        volume.set_status(Volume.Status.IN_USE, attach_status="attached")
    return attachment


def detach(attachment_id):
    """Removes the attachment; the volume is available once it has no other."""
    with transaction.atomic():
        attachment = _locked_attachment(attachment_id)
        volume = _locked_volume(attachment.volume_id)
        attachment.delete()
        _settle(volume)


def _settle(volume):
    left = volume.attachments.filter(status__in=LIVE)
    if left.filter(status=Attachment.Status.ATTACHED).exists():
        volume.set_status(Volume.Status.IN_USE, attach_status="attached")
    elif left.exists():
        volume.set_status(Volume.Status.RESERVED, attach_status="detached")
    else:
        volume.set_status(Volume.Status.AVAILABLE, attach_status="detached")


def move_instance(instance_uuid, connector):
    """The server's attachments now name the node that attaches them (a
    resize moved it there, or a revert back): its connector and host."""
    if not isinstance(connector, dict):
        raise BadRequest("Invalid input received: connector must be an object.")
    return Attachment.objects.filter(instance_uuid=str(instance_uuid), status__in=LIVE).update(
        connector=connector, attached_host=connector.get("host"), updated_at=timezone.now())


def disconnect_instance(instance_uuid):
    """The server left its node (shelve offload): its attachments name no
    host until a node connects them again (move_instance)."""
    return Attachment.objects.filter(instance_uuid=str(instance_uuid), status__in=LIVE).update(
        connector=None, attached_host=None, updated_at=timezone.now())


def volume_for_project(volume_id, project_id, is_admin=False):
    """The volume if the caller may attach it (its project's, or any for an
    admin), else None: another project's volume is not found."""
    volumes = Volume.objects.filter(pk=volume_id)
    if not is_admin:
        volumes = volumes.filter(project_id=project_id)
    return volumes.first()


def attachments_of(instance_uuid):
    """The server's live attachments, oldest first, with their volumes."""
    return list(Attachment.objects.filter(instance_uuid=str(instance_uuid), status__in=LIVE)
                .select_related("volume"))


def attached_volume_ids(instance_uuids):
    """{server id: [(volume id, delete_on_termination) of each volume
    attached to it]} for a page of servers, in one query."""
    found = {str(uuid): [] for uuid in instance_uuids}
    for instance_uuid, volume_id, on_termination in Attachment.objects.filter(
            instance_uuid__in=list(found), status=Attachment.Status.ATTACHED).values_list(
            "instance_uuid", "volume_id", "delete_on_termination"):
        found[instance_uuid].append((str(volume_id), on_termination))
    return found


def detach_instance(instance_uuid):
    """A deleted server's volumes detached: each is available again (or
    in-use by its other servers)."""
    with transaction.atomic():
        volume_ids = list(Attachment.objects.filter(instance_uuid=str(instance_uuid)).values_list("volume_id",
                                                                                               flat=True))
        for volume in Volume.objects.select_for_update().filter(pk__in=volume_ids).order_by("pk"):
            volume.attachments.filter(instance_uuid=str(instance_uuid)).delete()
            _settle(volume)
    return volume_ids


# --- the older actions (os-reserve, os-attach, os-begin_detaching, os-detach)

def reserve_legacy(volume_id):
    with transaction.atomic():
        volume = _locked_volume(volume_id)
        if volume.status != Volume.Status.AVAILABLE:
            raise _invalid(f"Volume {volume_id} status must be available to reserve, but the current status is "
                           f"{volume.status}.")
        volume.set_status(Volume.Status.ATTACHING)


def unreserve_legacy(volume_id):
    with transaction.atomic():
        volume = _locked_volume(volume_id)
        if volume.status == Volume.Status.ATTACHING:
            _settle(volume)


def attach_legacy(volume_id, instance_uuid, mountpoint, host_name, mode):
    if mode not in ("rw", "ro"):
        raise BadRequest(f"Invalid input received: Invalid attach mode {mode!r}: it must be rw or ro.")
    with transaction.atomic():
        volume = _locked_volume(volume_id)
        if volume.status not in (Volume.Status.ATTACHING, Volume.Status.AVAILABLE) and not (
                volume.multiattach and volume.status == Volume.Status.IN_USE):
            raise _invalid(f"Volume {volume_id} status must be attaching or available to attach, but the current "
                           f"status is {volume.status}.")
        if instance_uuid and volume.attachments.filter(status__in=LIVE, instance_uuid=instance_uuid).exists():
            raise _invalid(f"Volume {volume_id} is already attached to server {instance_uuid}.")
        Attachment.objects.create(volume=volume, instance_uuid=instance_uuid, attached_host=host_name,
                                  mountpoint=mountpoint, attach_mode=mode, status=Attachment.Status.ATTACHED,
                                  attach_time=timezone.now())
        volume.set_status(Volume.Status.IN_USE, attach_status="attached")


def begin_detaching(volume_id):
    with transaction.atomic():
        volume = _locked_volume(volume_id)
        if volume.status != Volume.Status.IN_USE:
            raise _invalid(f"Volume {volume_id} status must be in-use to detach, but the current status is "
                           f"{volume.status}.")
        volume.set_status(Volume.Status.DETACHING)


def roll_detaching(volume_id):
    with transaction.atomic():
        volume = _locked_volume(volume_id)
        if volume.status == Volume.Status.DETACHING:
            volume.set_status(Volume.Status.IN_USE)


def end_detaching(volume_id):
    """A detach nobody finished (its server's node died mid-detach): the
    volume is in-use again while a server still holds it (the disk may
    still be in its domain; a detach asked again, or the node's own once it
    is back, takes it out), else available. Returns the new status, or None
    if the volume is no longer detaching."""
    with transaction.atomic():
        volume = Volume.objects.select_for_update().filter(pk=volume_id, status=Volume.Status.DETACHING).first()
        if volume is None:
            return None
        _settle(volume)
        return volume.status


def force_detach(volume_id, attachment_id=None, connector=None):
    """os-force_detach (an admin's): ends one attachment whatever state it
    is in (an attach or a detach left half done), as Cinder's: the one
    `attachment_id` names, else the one of the connector's host, else the
    volume's only one; the volume is available once none is left (in-use
    while another server still holds it). Like Cinder, it does not tell the
    server's node: a disk still in a domain is the admin's to unplug."""
    from volumes.api.base import is_uuid

    if connector is not None and not isinstance(connector, dict):
        raise BadRequest("Invalid input received: connector must be an object.")
    with transaction.atomic():
        volume = _locked_volume(volume_id)
        if volume.status == Volume.Status.MAINTENANCE:
            raise _invalid(f"Volume {volume_id} is in maintenance: it cannot be detached.")
        live = volume.attachments.exclude(status=Attachment.Status.DETACHED)
        if attachment_id is not None:
            found = live.filter(pk=attachment_id) if is_uuid(str(attachment_id)) else live.none()
            if not found.exists():
                raise BadRequest(f"Error force detaching volume - VolumeAttachmentNotFound: attachment_id "
                                 f"{attachment_id} is not an attachment of volume {volume_id}.")
            live = found
        elif connector and connector.get("host"):
            live = live.filter(attached_host=connector["host"])
            if not live.exists():
                raise BadRequest(f"Error force detaching volume - VolumeAttachmentNotFound: volume {volume_id} "
                                 f"has no attachment on host {connector['host']}.")
        if live.count() > 1:
            raise BadRequest(f"Error force detaching volume - InvalidVolume: volume {volume_id} has several "
                             f"attachments: name the attachment_id to detach.")
        live.delete()
        _settle(volume)


# A volume os-detach finds nothing attached to settles (available), as
# Cinder's does: a force detach or another detach got there first.
SETTLED_BY_A_DETACH = (Volume.Status.AVAILABLE, Volume.Status.RESERVED, Volume.Status.ATTACHING,
                       Volume.Status.IN_USE, Volume.Status.DETACHING)


def detach_legacy(volume_id, attachment_id=None):
    from volumes.api.base import is_uuid

    with transaction.atomic():
        volume = _locked_volume(volume_id)
        live = volume.attachments.filter(status__in=LIVE)
        if attachment_id:
            live = live.filter(pk=attachment_id) if is_uuid(str(attachment_id)) else live.none()
        if not live.exists():
            if volume.status not in SETTLED_BY_A_DETACH:
                raise _invalid(f"Volume {volume_id} is not attached, and it is {volume.status}.")
            _settle(volume)
            return
        if attachment_id is None and live.count() > 1:
            raise _invalid(f"Volume {volume_id} has several attachments: name the attachment_id to detach.")
        live.delete()
        _settle(volume)
