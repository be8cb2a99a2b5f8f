"""Server action createImage (Nova's snapshot): the image is made here,
queued and empty (images.from_server), task_state image_snapshot_pending
is set and the server's node copies the disk into it
(compute.node.snapshot). 202 with the image's URL as Location and, from
microversion 2.45, {"image_id"} as the body."""
from django.db import transaction
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict, OverLimit
from compute import block_devices, quotas
from compute.api.base import request_ids, require_metadata, require_string
from compute.api.server_views import base_url
from compute.models import InvalidState, cannot_message, start_action
from workers import pipelines

ACTION = "createImage"


def parse(request, argument):
    """(name, metadata) of a createImage body, each error naming its field."""
    if not isinstance(argument, dict):
        raise BadRequest("Invalid input for field 'createImage': must be an object holding 'name'.")
    unknown = set(argument) - {"name", "metadata"}
    if unknown:
        raise BadRequest(f"Invalid input for field 'createImage': unknown attribute {sorted(unknown)[0]!r}.")
    if "name" not in argument:
        raise BadRequest("Invalid input for field 'createImage.name': a name is required.")
    name = argument["name"]
    if isinstance(name, str) and name != name.strip():
        raise BadRequest("Invalid input for field 'createImage.name': it may not begin or end with spaces.")
    name = require_string(name, "createImage.name")
    # Nova counts the metadata against metadata_items only up to 2.38.
    limit = quotas.limit_of(request.auth.project_id, "metadata_items") if request.api_version < (2, 39) else None
    metadata = require_metadata(argument.get("metadata") or {}, "createImage.metadata", limit=limit)
    return name, metadata


def create_image(request, instance, argument):
    """Starts a snapshot of `instance` (on a live host, checked by the caller)."""
    from images import from_server

    name, metadata = parse(request, argument)
    if block_devices.boots_from_volume(instance):
        raise Conflict(f"Cannot '{ACTION}' instance {instance.id}: its root disk is a volume; snapshot the "
                       f"volume instead (openstack volume snapshot create).")
    with transaction.atomic():
        try:
            instance.begin("snapshot")
        except InvalidState:
            raise Conflict(cannot_message(instance, ACTION)) from None
        try:
            image_id = from_server.new_snapshot(name, request.auth.project_id, request.auth.user_id, instance,
                                                metadata)
        except from_server.SnapshotRefused as error:
            raise OverLimit(str(error)) from None
        start_action(instance, ACTION, *request_ids(request))
        pipelines.snapshot(instance.pk, instance.host, image_id)
    body = {"image_id": image_id} if request.api_version >= (2, 45) else None
    return Response(body, status=202, headers={"Location": f"{base_url(request)}/image/v2/images/{image_id}"})
