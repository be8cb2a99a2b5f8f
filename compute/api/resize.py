"""Server actions resize, migrate (cold, for admins), confirmResize and
revertResize (os-migrations lists them: compute.api.server_migrations).

A resize is checked here (flavor, disk, quota, state), recorded as a
Migration holding the old and new flavors, and placed by the scheduler
with a second claim beside the instance's own; the nodes do the rest
(compute.node.resize). A cold migration is a resize to the same flavor
that must change host. Confirm is bookkeeping the API finishes at once
(the source only deletes files); revert goes back through the nodes."""
from django.db import transaction
from rest_framework.response import Response

from cloud.errors import ApiError, BadRequest, Conflict
from compute import block_devices, quotas
from compute.api.base import begin_or_conflict, request_ids, require_disk_config, require_string
from compute.api.flavors import flavor_to_use
from compute.models import (
    ComputeNode, Instance, InvalidState, Migration, UnexpectedState, VmState, cannot_message, flavor_snapshot,
    start_action,
)
from compute.tasks import confirm
from workers import pipelines


def _conflict(instance, action):
    return Conflict(cannot_message(instance, action))


def _resized_migration(instance, action):
    """The finished resize waiting for confirm or revert; 409 if none."""
    migration = Migration.objects.filter(instance_id=instance.pk, status=Migration.Status.FINISHED).order_by(
        "-created_at", "-id").first()
    if instance.vm_state != VmState.RESIZED or instance.task_state is not None or migration is None:
        raise _conflict(instance, action)
    return migration


def resize(request, instance, argument):
    """{"resize": {"flavorRef": ...}}: 202, then RESIZE until VERIFY_RESIZE."""
    if not isinstance(argument, dict) or "flavorRef" not in argument:
        raise BadRequest("Invalid input for field 'resize.flavorRef': a flavor is required.")
    unknown = set(argument) - {"flavorRef", "OS-DCF:diskConfig"}
    if unknown:
        raise BadRequest(f"Invalid input for field 'resize': unknown attribute {sorted(unknown)[0]!r}.")
    flavor = flavor_to_use(request, argument["flavorRef"], field="resize.flavorRef")
    disk_config = argument.get("OS-DCF:diskConfig")
    auto_disk_config = None if disk_config is None else require_disk_config(disk_config, "resize.OS-DCF:diskConfig")
    new_flavor, old_flavor = flavor_snapshot(flavor), flavor_snapshot(instance)
    if new_flavor["id"] == old_flavor["id"]:
        raise BadRequest("Invalid input for field 'resize.flavorRef': when resizing, instances must change "
                         "flavor.")
    # As Nova's: a root volume keeps its size whatever the flavor's disk says.
    if new_flavor["root_gb"] < old_flavor["root_gb"] and not block_devices.boots_from_volume(instance):
        raise BadRequest(f"Invalid input for field 'resize.flavorRef': flavor {flavor.name} has a "
                         f"{new_flavor['root_gb']} GiB root disk, smaller than the server's "
                         f"{old_flavor['root_gb']} GiB; a disk cannot shrink.")
    with transaction.atomic():
        quotas.reserve_growth(instance.project_id, new_flavor["vcpus"] - old_flavor["vcpus"],
                              new_flavor["memory_mb"] - old_flavor["memory_mb"])
        # From exactly the vm_state read: the migration records it to return to.
        begin_or_conflict(instance, "resize", keep_vm_state=True)
        node = instance.node
        migration = Migration.objects.create(
            instance=instance, project_id=instance.project_id, user_id=request.auth.user_id,
            source_compute=instance.host, source_node=node.hypervisor_hostname if node else instance.host,
            old_flavor=old_flavor, new_flavor=new_flavor, old_vm_state=instance.vm_state)
        if auto_disk_config is not None:
            Instance.objects.filter(pk=instance.pk).update(auto_disk_config=auto_disk_config)
        start_action(instance, "resize", *request_ids(request))
        pipelines.resize(instance.pk, migration.pk)
    return Response(status=202)


def migrate(request, instance, argument):
    """{"migrate": null}, from 2.56 {"migrate": {"host": ...}} (admins): 202,
    then RESIZE until VERIFY_RESIZE on another host with the same flavor;
    confirmResize or revertResize as after a resize."""
    if not request.auth.is_admin:
        raise ApiError("Policy doesn't allow os_compute_api:os-migrate-server:migrate to be performed.", status=403)
    host = None
    if argument is not None:
        if not isinstance(argument, dict):
            raise BadRequest("Invalid input for field 'migrate': must be null or an object.")
        unknown = set(argument) - ({"host"} if request.api_version >= (2, 56) else set())
        if unknown:
            raise BadRequest(f"Invalid input for field 'migrate': unknown attribute {sorted(unknown)[0]!r}.")
        if argument.get("host") is not None:
            host = require_string(argument["host"], "migrate.host")
            if not ComputeNode.objects.filter(host=host).exists():
                raise BadRequest(f"Compute host {host} could not be found.")
            if host == instance.host:
                raise BadRequest(f"Unable to migrate instance {instance.id} to the host it is on ({host}).")
    flavor = flavor_snapshot(instance)
    with transaction.atomic():
        try:
            instance.begin("resize", keep_vm_state=True)
        except InvalidState:
            raise _conflict(instance, "migrate") from None
        node = instance.node
        migration = Migration.objects.create(
            instance=instance, project_id=instance.project_id, user_id=request.auth.user_id,
            migration_type=Migration.COLD_MIGRATION, source_compute=instance.host,
            source_node=node.hypervisor_hostname if node else instance.host, dest_compute=host,
            old_flavor=flavor, new_flavor=flavor, old_vm_state=instance.vm_state)
        start_action(instance, migration.action, *request_ids(request))
        pipelines.resize(instance.pk, migration.pk)
    return Response(status=202)


def confirm_resize(request, instance):
    """{"confirmResize": null}: 204; the server keeps its new flavor."""
    migration = _resized_migration(instance, "confirmResize")
    try:
        confirm(instance, migration, *request_ids(request))
    except UnexpectedState:
        instance.refresh_from_db(fields=["vm_state", "task_state"])
        raise _conflict(instance, "confirmResize") from None
    return Response(status=204)


def revert_resize(request, instance):
    """{"revertResize": null}: 202, then REVERT_RESIZE until the server is
    back on its old flavor (and node) as it was."""
    migration = _resized_migration(instance, "revertResize")
    source = ComputeNode.objects.filter(host=migration.source_compute).first()
    if source is None or not source.is_up:
        raise Conflict(f"Compute host {migration.source_compute} is not available: cannot 'revertResize' "
                       f"instance {instance.id} now.")
    old, new = migration.old_flavor, migration.new_flavor
    with transaction.atomic():
        quotas.reserve_growth(instance.project_id, old["vcpus"] - new["vcpus"], old["memory_mb"] - new["memory_mb"])
        begin_or_conflict(instance, "revert_resize")
        migration.set_status(Migration.Status.REVERTING)
        start_action(instance, "revertResize", *request_ids(request))
        pipelines.revert_resize(instance.pk, migration.pk, migration.source_compute, migration.dest_compute,
                                "revertResize")
    return Response(status=202)
