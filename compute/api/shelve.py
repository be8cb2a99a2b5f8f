"""Server actions shelve, shelveOffload (admins) and unshelve (Nova's
os-shelve): checked and started here, carried out by the nodes
(compute.node.shelve). Shelving makes the image the disk is stored in
(images.from_server, named "<server>-shelved"); a server whose root is a
volume needs none. Their bodies are not read, as Nova's below 2.77 (null
or {} alike)."""
from django.db import transaction
from rest_framework.response import Response

from cloud.errors import ApiError, Conflict, OverLimit
from compute import block_devices, conf
from compute.api.base import request_ids
from compute.models import Instance, InvalidState, VmState, cannot_message, start_action
from workers import pipelines


def _begin(instance, transition, action):
    try:
        instance.begin(transition)
    except InvalidState:
        raise Conflict(cannot_message(instance, action)) from None


def shelve(request, instance, argument):
    """{"shelve": null}: 202, then SHELVED (and SHELVED_OFFLOADED when the
    cloud offloads at once, conf.SHELVED_OFFLOAD_TIME 0)."""
    from images import from_server

    with transaction.atomic():
        _begin(instance, "shelve", "shelve")
        image_id = ""
        if not block_devices.boots_from_volume(instance):
            try:
                image_id = from_server.new_snapshot(f"{instance.name}-shelved", request.auth.project_id,
                                                    request.auth.user_id, instance, {})
            except from_server.SnapshotRefused as error:
                raise OverLimit(str(error)) from None
        Instance.objects.filter(pk=instance.pk).update(shelved_image_id=image_id)
        start_action(instance, "shelve", *request_ids(request))
        pipelines.shelve(instance.pk, instance.host, offload=conf.SHELVED_OFFLOAD_TIME == 0)
    return Response(status=202)


def shelve_offload(request, instance, argument):
    """{"shelveOffload": null} (admins, as Nova's policy): a SHELVED server
    leaves its host now."""
    if not request.auth.is_admin:
        raise ApiError("Policy doesn't allow os_compute_api:os-shelve:shelve_offload to be performed.", status=403)
    with transaction.atomic():
        _begin(instance, "shelve_offload", "shelveOffload")
        start_action(instance, "shelveOffload", *request_ids(request))
        pipelines.shelve_offload(instance.pk, instance.host)
    return Response(status=202)


def unshelve(request, instance, argument):
    """{"unshelve": null}: 202, then ACTIVE: started on its host, or placed
    again by the scheduler when offloaded."""
    if instance.vm_state == VmState.SHELVED and (instance.node is None or not instance.node.is_up):
        raise Conflict(f"Compute host {instance.host} is not available: cannot 'unshelve' instance "
                       f"{instance.id} now.")
    with transaction.atomic():
        _begin(instance, "unshelve", "unshelve")
        start_action(instance, "unshelve", *request_ids(request))
        pipelines.unshelve(instance.pk, instance.host if instance.vm_state == VmState.SHELVED else None)
    return Response(status=202)
