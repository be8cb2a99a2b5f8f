"""Server actions rescue and unrescue (Nova's os-rescue): checked and
started here, carried out by the node (compute.node.agent's rescue
operations): a rescued server runs from a fresh disk of the rescue image,
its own disk attached as the second one, until it is unrescued."""
import uuid

from django.db import transaction
from rest_framework.response import Response

from cloud.errors import BadRequest
from compute import block_devices
from compute.api.base import begin_or_conflict, request_ids, require_string
from compute.images import image_for_boot
from compute.models import Instance, start_action
from workers import pipelines


def rescue(request, instance, argument):
    """{"rescue": null | {"adminPass", "rescue_image_ref"}}: 200 with the
    admin password, then RESCUE. The rescue image is the server's own
    unless another one the caller may boot is named."""
    if argument is None:
        argument = {}
    if not isinstance(argument, dict):
        raise BadRequest("Invalid input for field 'rescue': must be null or an object.")
    unknown = set(argument) - {"adminPass", "rescue_image_ref"}
    if unknown:
        raise BadRequest(f"Invalid input for field 'rescue': additional properties are not allowed "
                         f"({', '.join(sorted(unknown))} unexpected).")
    admin_pass = require_string(argument["adminPass"], "adminPass", allow_empty=True) \
        if "adminPass" in argument else uuid.uuid4().hex[:12]
    image_id = instance.image_id
    if "rescue_image_ref" in argument:
        image_ref = require_string(argument["rescue_image_ref"], "rescue_image_ref")
        image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
        image = image_for_boot(image_id, request.auth.project_id, request.auth.is_admin)
        if image is None or image.status != "active":
            raise BadRequest(f"Invalid input for field 'rescue_image_ref': image {image_id} could not be found "
                             f"or is not active.")
    if block_devices.boots_from_volume(instance) or not image_id:
        raise BadRequest(f"Cannot rescue a volume-backed instance: instance {instance.pk} boots from a volume.")
    with transaction.atomic():
        begin_or_conflict(instance, "rescue")
        Instance.objects.filter(pk=instance.pk).update(rescue_image_id=image_id)
        start_action(instance, "rescue", *request_ids(request))
        pipelines.power_action(instance.pk, instance.host, "rescue")
    return Response({"adminPass": admin_pass})


def unrescue(request, instance, argument):
    """{"unrescue": null}: 202, then ACTIVE on the server's own disk."""
    with transaction.atomic():
        begin_or_conflict(instance, "unrescue")
        start_action(instance, "unrescue", *request_ids(request))
        pipelines.power_action(instance.pk, instance.host, "unrescue")
    return Response(status=202)
