"""The evacuate server action (admins, Nova's os-evacuate): a server whose
node is down is made again on another host the scheduler picks (or the
one named), from its image, with its ports and volumes moved there; it
comes back as it was (ACTIVE, or SHUTOFF if it was stopped), and
os-migrations lists the move as an `evacuation`.

The node's disk is not reachable from another node, so the disk is always
made again from the image (Nova's evacuation without shared storage);
onSharedStorage true (below 2.14) is refused."""
import uuid

from django.db import transaction
from rest_framework.response import Response

from cloud.errors import ApiError, BadRequest, Conflict, NotFound
from compute.api.base import request_ids, require_bool, require_string
from compute.models import ACTIONS, ComputeNode, InvalidState, Migration, cannot_message, flavor_snapshot, start_action
from workers import pipelines

SHARED_STORAGE_DETECTED = (2, 14)  # from here Nova finds shared storage itself: no onSharedStorage, no adminPass
FORCE_SINCE = (2, 29)
# Nova's evacuate starts as its rebuild does: from ACTIVE, SHUTOFF or ERROR, task_state rebuilding.
TRANSITION = "rebuild"


def check_argument(request, argument):
    if not isinstance(argument, dict):
        raise BadRequest("Invalid input for field 'evacuate': must be an object.")
    allowed = {"host", "adminPass"}
    if request.api_version < SHARED_STORAGE_DETECTED:
        allowed.add("onSharedStorage")
    if request.api_version >= FORCE_SINCE:
        allowed.add("force")
    unknown = sorted(set(argument) - allowed)
    if unknown:
        raise BadRequest(f"Invalid input for field 'evacuate': additional properties are not allowed "
                         f"({', '.join(unknown)} unexpected).")
    if request.api_version < SHARED_STORAGE_DETECTED:
        if "onSharedStorage" not in argument:
            raise BadRequest("Invalid input for field 'evacuate/onSharedStorage': 'onSharedStorage' is a required "
                             "property.")
        if require_bool(argument["onSharedStorage"], "onSharedStorage"):
            raise BadRequest("Invalid input for field 'evacuate/onSharedStorage': a node's disks are not on "
                             "storage other nodes share; the disk is made again from the image (false).")


def evacuate(request, instance, argument):
    """{"evacuate": {"host"?, "adminPass"?, "onSharedStorage" (below 2.14), "force"? (2.29)}}:
    200 (with adminPass below 2.14), then REBUILD until the server is back on another host."""
    if not request.auth.is_admin:
        raise ApiError("Policy doesn't allow os_compute_api:os-evacuate to be performed.", status=403)
    check_argument(request, argument)
    host = None
    if argument.get("host") is not None:
        host = require_string(argument["host"], "evacuate/host")
        if not ComputeNode.objects.filter(host=host).exists():
            raise NotFound(f"Compute host {host} could not be found.")
        if host == instance.host:
            raise BadRequest("The target host can't be the same one.")
    force = require_bool(argument["force"], "evacuate/force") if "force" in argument else False
    admin_pass = require_string(argument["adminPass"], "evacuate/adminPass", allow_empty=True) \
        if argument.get("adminPass") is not None else uuid.uuid4().hex[:12]
    # As Nova: the server's state first (409), then its host (400).
    if instance.task_state is not None or instance.vm_state not in ACTIONS[TRANSITION].vm_states:
        raise Conflict(cannot_message(instance, "evacuate"))
    source = instance.node
    if source is None or not instance.host:
        raise BadRequest(f"Instance {instance.id} is on no host: there is nothing to evacuate.")
    if source.is_up:
        raise BadRequest(f"Compute service of {instance.host} is still in use.")
    with transaction.atomic():
        try:
            instance.begin(TRANSITION)
        except InvalidState:
            raise Conflict(cannot_message(instance, "evacuate")) from None
        flavor = flavor_snapshot(instance)
        migration = Migration.objects.create(
            instance=instance, project_id=instance.project_id, user_id=request.auth.user_id,
            migration_type=Migration.EVACUATION, status=Migration.Status.ACCEPTED, source_compute=instance.host,
            source_node=source.hypervisor_hostname, dest_compute=host, old_flavor=flavor, new_flavor=flavor,
            old_vm_state=instance.vm_state)
        start_action(instance, "evacuate", *request_ids(request))
        pipelines.evacuate(instance.pk, migration.pk, force=force)
    if request.api_version < SHARED_STORAGE_DETECTED:
        return Response({"adminPass": admin_pass})
    return Response(status=200)
