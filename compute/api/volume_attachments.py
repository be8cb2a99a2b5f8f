"""A server's volumes (os-volume_attachments: list, show, attach, detach;
swap refused), as Nova's API up to this cloud's microversion. The volumes
app owns the volume rows (volumes.attachments); the server's node plugs
and unplugs the disks (compute.node.volumes): an attach answers within
compute.conf.NODE_CALL_TIMEOUT, a detach is 202 with the volume detaching
(a guest takes its time to let go of a disk). Attached volumes are virtio
disks vdb, vdc, ... (vda is the root disk).

From microversion 2.20, as Nova's, a shelved server takes and gives up
volumes too: SHELVED through its node (the domain is there, stopped);
SHELVED_OFFLOADED on no node at all: the attachment is recorded with no
host and completed (the volume in-use, as Nova leaves it), and the node
the server is unshelved on connects it (compute.node.shelve); a detach
removes the attachment at once."""
import re
import string

from django.db import transaction
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict, NotFound
from compute import conf
from compute.api.base import ComputeView, is_uuid
from compute.api.consoles import waiting_for_node
from compute.api.interfaces import find_instance
from compute.models import Instance, VmState
from volumes import attachments
from workers import pipelines

# The states a volume may be attached or detached in (Nova's), and from 2.20 also the shelved ones.
VOLUME_VM_STATES = (VmState.ACTIVE, VmState.PAUSED, VmState.STOPPED)
SHELVED_VM_STATES = (VmState.SHELVED, VmState.SHELVED_OFFLOADED)
DEVICE = re.compile(r"^/dev/[a-z]+$")
TAG = re.compile(r"^[^/,]{1,60}$")


def attachment_body(instance, attachment):
    volume_id = str(attachment.volume_id)
    return {"id": volume_id, "volumeId": volume_id, "serverId": str(instance.pk), "device": attachment.mountpoint}


def check_volume_state(request, instance, action):
    """Refuses (409, Nova's words) a server in a state volumes cannot be
    attached or detached in; whether it is offloaded (no node to ask)."""
    states = VOLUME_VM_STATES + (SHELVED_VM_STATES if request.api_version >= (2, 20) else ())
    if instance.vm_state not in states or instance.task_state is not None:
        raise Conflict(f"Cannot '{action}' instance {instance.id} while it is in vm_state {instance.vm_state}"
                       f"{'' if instance.task_state is None else ', task_state ' + instance.task_state}.")
    if instance.vm_state == VmState.SHELVED_OFFLOADED:
        return True
    if not instance.host or instance.node is None:
        raise Conflict(f"Cannot '{action}' instance {instance.id}: it is not on any host.")
    return False


def attached(instance, volume_id):
    found = next((attachment for attachment in attachments.attachments_of(instance.pk)
                  if str(attachment.volume_id) == str(volume_id)), None)
    if found is None:
        raise NotFound(f"Volume {volume_id} is not attached to server {instance.pk}.")
    return found


def free_device(instance, wanted):
    """The device the volume gets: `wanted` if free, else the next free
    /dev/vdX. Read under the instance's row lock, so two attaches at once
    never get the same one."""
    used = {"vda"} | {(attachment.mountpoint or "").removeprefix("/dev/")
                      for attachment in attachments.attachments_of(instance.pk)}
    if wanted:
        name = wanted.removeprefix("/dev/")
        if name in used:
            raise BadRequest(f"The supplied device path ({wanted}) is in use.")
        if re.fullmatch(r"vd[a-z]", name):
            return f"/dev/{name}"
        # Nova's libvirt driver too picks the bus's own next name whatever was asked.
    for letter in string.ascii_lowercase[1:]:
        if f"vd{letter}" not in used:
            return f"/dev/vd{letter}"
    raise BadRequest(f"Instance {instance.pk} has no free device name left for another volume.")


class VolumeAttachmentListView(ComputeView):
    policy = {"get": "reader", "post": "member"}

    def get(self, request, server_id):
        instance = find_instance(request, server_id)
        found = [attachment for attachment in attachments.attachments_of(instance.pk)
                 if attachment.status == attachment.Status.ATTACHED]
        limit, offset = request.query_params.get("limit"), request.query_params.get("offset")
        start = int(offset) if offset and offset.isdigit() else 0
        found = found[start:start + int(limit)] if limit and limit.isdigit() else found[start:]
        return Response({"volumeAttachments": [attachment_body(instance, attachment) for attachment in found]})

    def post(self, request, server_id):
        body = self.body("volumeAttachment")
        allowed = {"volumeId", "device"} | ({"tag"} if request.api_version >= (2, 49) else set())
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise BadRequest(f"Invalid input for field 'volumeAttachment': additional properties are not allowed "
                             f"({', '.join(unknown)} unexpected).")
        volume_id = body.get("volumeId")
        if not isinstance(volume_id, str) or not is_uuid(volume_id):
            raise BadRequest(f"Invalid input for field 'volumeAttachment.volumeId': {volume_id!r} is not a "
                             f"'uuid'.")
        device = body.get("device")
        if device is not None and (not isinstance(device, str) or not DEVICE.match(device)):
            raise BadRequest(f"Invalid input for field 'volumeAttachment.device': {device!r} does not match "
                             f"'{DEVICE.pattern}'.")
        tag = body.get("tag")
        if tag is not None and (not isinstance(tag, str) or not TAG.match(tag)):
            raise BadRequest(f"Invalid input for field 'volumeAttachment.tag': {tag!r} must be 1 to 60 "
                             f"characters without '/' or ','.")
        instance = find_instance(request, server_id)
        attachment = attach_volume(request, instance, volume_id, device)
        return Response({"volumeAttachment": attachment_body(instance, attachment)})


class VolumeAttachmentView(ComputeView):
    policy = {"get": "reader", "put": "member", "delete": "member"}

    def get(self, request, server_id, volume_id):
        instance = find_instance(request, server_id)
        attachment = attached(instance, volume_id)
        if attachment.status != attachment.Status.ATTACHED:
            raise NotFound(f"Volume {volume_id} is not attached to server {instance.pk}.")
        return Response({"volumeAttachment": attachment_body(instance, attachment)})

    def put(self, request, server_id, volume_id):
        instance = find_instance(request, server_id)
        attached(instance, volume_id)
        raise Conflict(f"Swapping volume {volume_id} of instance {instance.pk} for another is not supported by "
                       f"this cloud.")

    def delete(self, request, server_id, volume_id):
        instance = find_instance(request, server_id)
        detach_volume(request, instance, attached(instance, volume_id))
        return Response(status=202)


def attach_volume(request, instance, volume_id, device=None):
    """The volume reserved for the instance (its project's only: another
    project's is not found), then connected and hot-plugged on its node;
    nothing stays reserved if the node refuses."""
    offloaded = check_volume_state(request, instance, "attach_volume")
    credentials = request.auth
    with transaction.atomic():
        Instance.objects.select_for_update().filter(pk=instance.pk).first()
        if attachments.volume_for_project(volume_id, credentials.project_id, credentials.is_admin) is None:
            raise NotFound(f"Volume {volume_id} could not be found.")
        mountpoint = free_device(instance, device)
        if offloaded:
            attachments.attach_without_host(volume_id, str(instance.pk), mountpoint)
            return attached(instance, volume_id)
        attachment, _info = attachments.reserve(volume_id, str(instance.pk), mountpoint=mountpoint)
    try:
        with waiting_for_node(instance, "Attaching a volume"):
            pipelines.attach_volume(instance.pk, instance.host, attachment.pk, conf.NODE_CALL_TIMEOUT)
    except Conflict:
        attachments.detach(attachment.pk)
        raise
    return attached(instance, volume_id)


def detach_volume(request, instance, attachment):
    offloaded = check_volume_state(request, instance, "detach_volume")
    if attachment.mountpoint == "/dev/vda":
        raise BadRequest(f"Cannot detach a root device volume (volume {attachment.volume_id} of server "
                         f"{instance.pk}).")
    if offloaded:
        # No node holds it: the attachment goes, the volume is available.
        attachments.detach(attachment.pk)
        return
    if not instance.node.is_up:
        raise Conflict(f"Compute host {instance.host} is not available.")
    # As Nova's: the volume is detaching at once, its node finishes the detach.
    with transaction.atomic():
        attachments.begin_detaching(attachment.volume_id)
        pipelines.detach_volume(instance.pk, instance.host, attachment.pk)
