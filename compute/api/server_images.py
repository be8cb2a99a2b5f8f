"""Server actions createImage (Nova's snapshot) and createBackup (a
snapshot kept in a rotation of `rotation` per backup_type): the image is
made here, queued and empty (images.from_server), task_state
image_snapshot_pending is set and the server's node copies the disk into
it (compute.node.snapshot; for a server whose root disk is a volume, the
node snapshots its volumes and the image only names them). 202 with the image's URL as Location and,
from microversion 2.45, {"image_id"} as the body."""
from django.db import transaction
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict, OverLimit
from compute import block_devices, quotas
from compute.api.base import request_ids, require_int, require_metadata, require_string
from compute.api.server_views import base_url
from compute.models import InvalidState, cannot_message, start_action
from workers import pipelines

ACTION = "createImage"
BACKUP_ACTION = "createBackup"


def parse(request, argument, action=ACTION, extra=()):
    """(name, metadata) of a createImage (or createBackup, with its `extra`
    attributes) body, each error naming its field."""
    if not isinstance(argument, dict):
        raise BadRequest(f"Invalid input for field '{action}': must be an object holding 'name'.")
    unknown = set(argument) - {"name", "metadata", *extra}
    if unknown:
        raise BadRequest(f"Invalid input for field '{action}': unknown attribute {sorted(unknown)[0]!r}.")
    if "name" not in argument:
        raise BadRequest(f"Invalid input for field '{action}.name': a name is required.")
    name = argument["name"]
    if isinstance(name, str) and name != name.strip():
        raise BadRequest(f"Invalid input for field '{action}.name': it may not begin or end with spaces.")
    name = require_string(name, f"{action}.name")
    # Nova counts the metadata against metadata_items only up to 2.38.
    limit = quotas.limit_of(request.auth.project_id, "metadata_items") if request.api_version < (2, 39) else None
    metadata = require_metadata(argument.get("metadata") or {}, f"{action}.metadata", limit=limit)
    return name, metadata


def create_image(request, instance, argument):
    """Starts a snapshot of `instance` (on a live host, checked by the caller)."""
    name, metadata = parse(request, argument)
    return start(request, instance, ACTION, name, metadata)


def create_backup(request, instance, argument):
    """Starts a backup of `instance`: a snapshot with image_type backup and
    its backup_type; once it is stored, the server's backups of that type
    past the newest `rotation` are deleted (0 keeps none)."""
    name, metadata = parse(request, argument, BACKUP_ACTION, extra=("backup_type", "rotation"))
    for field in ("backup_type", "rotation"):
        if field not in argument:
            raise BadRequest(f"Invalid input for field '{BACKUP_ACTION}.{field}': it is required.")
    backup_type = require_string(argument["backup_type"], f"{BACKUP_ACTION}.backup_type")
    rotation = argument["rotation"]
    if isinstance(rotation, str) and rotation.isdigit():
        rotation = int(rotation)  # Nova's schema takes a numeric string too
    rotation = require_int(rotation, f"{BACKUP_ACTION}.rotation", 0)
    return start(request, instance, BACKUP_ACTION, name, metadata, backup_type, rotation)


def start(request, instance, action, name, metadata, backup_type=None, rotation=None):
    from images import from_server

    if action == BACKUP_ACTION and block_devices.boots_from_volume(instance):
        raise BadRequest("Backup is not supported for volume-backed instances.")
    with transaction.atomic():
        try:
            instance.begin("snapshot")
        except InvalidState:
            raise Conflict(cannot_message(instance, action)) from None
        try:
            image_id = from_server.new_snapshot(name, request.auth.project_id, request.auth.user_id, instance,
                                                metadata, backup_type)
        except from_server.SnapshotRefused as error:
            raise OverLimit(str(error)) from None
        start_action(instance, action, *request_ids(request))
        pipelines.snapshot(instance.pk, instance.host, image_id, rotation)
    body = {"image_id": image_id} if request.api_version >= (2, 45) else None
    return Response(body, status=202, headers={"Location": f"{base_url(request)}/image/v2/images/{image_id}"})
