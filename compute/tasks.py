"""Compute's tasks on the control queue: scheduling (of boots and
resizes), the decision after a failed step (reschedule, revert or ERROR),
and the periodic reconciler that makes sure nothing stays in a
transitional state forever."""
import logging
from datetime import timedelta

from celery import shared_task
from celery.result import AsyncResult
from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from compute import block_devices, conf, networking
from compute.models import (
    BOOT_TASK_STATES, ComputeNode, Instance, InstanceActionEvent, Migration, PowerState, Service, TaskState,
    UnexpectedState, VmState, alive_since, confirm_claims, finish_action, record_event, release_claim, set_fault,
    start_action,
)
from compute.scheduler import manager as scheduler
from compute.scheduler.manager import NoValidHost, schedule
from workers import pipelines
from workers.celery import app

log = logging.getLogger(__name__)

SCHEDULER_BINARY = "stratus-scheduler"
# Nova's fault for a boot no host can take; which filter removed which
# hosts is for operators (the fault's details).
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."
# Errors of a boot step that no other host would avoid: the image cannot
# back a disk (images.cache.ImageUnacceptable), a volume of the server
# could not be made (compute.node.volumes.VolumeNotCreated, as Nova's).
BUILD_ABORTING_ERRORS = {"ImageUnacceptable", "VolumeNotCreated"}


@shared_task(name="compute.tasks.schedule_instance", ignore_result=True)
def schedule_instance(instance_id):
    instance = Instance.objects.filter(pk=instance_id, deleted=False).first()
    if instance is None or instance.vm_state != VmState.BUILDING or instance.task_state != TaskState.SCHEDULING:
        return None  # deleted, or a repeated message for a boot that moved on
    if instance.host:
        # A repeat after the claim committed. Its node chain was sent then,
        # unless the broker was away or this worker died in between; no node
        # step has begun (the instance is still in scheduling), so it is sent
        # again (a step that finds the boot further along does nothing).
        log.info("instance %s is scheduled to %s already: sending its node chain again", instance_id,
                 instance.host)
        pipelines.run_on_node(instance.pk, instance.host, leave_out=idle_boot_steps(instance))
        return instance.host
    try:
        # Scheduling takes milliseconds: the task_state shows it under way.
        with record_event(instance, "create", "conductor_schedule", host=settings.HOSTNAME, quick=True):
            node = schedule(instance)
    except NoValidHost as error:
        end_build(instance, NO_VALID_HOST, details=f"No valid host was found: {error}")
        return None
    except UnexpectedState:
        return None  # deleted while scheduling: nothing was claimed
    pipelines.run_on_node(instance.pk, node.host, leave_out=idle_boot_steps(instance))
    return node.host


def idle_boot_steps(instance):
    """The node's boot steps with nothing to do for `instance` (no network
    asked for, no block devices), which its chain leaves out: two tasks
    fewer for a server booted with `networks: none` from an image."""
    idle = []
    if not networking.has_ports(instance):
        idle.append("network")
    if not block_devices.of(instance):
        idle.append("volumes")
    return idle


def end_build(instance, message, code=500, expected_task_state=BOOT_TASK_STATES, details=""):
    """Ends a build in ERROR with `message` (and the operators' `details`)
    as its fault and releases its claim; the failed host (if any) is asked
    to clean up. False if the instance had already moved on (deleted,
    reset)."""
    host = instance.host
    with transaction.atomic():
        try:
            instance.update_state(expected_task_state=expected_task_state, expected_vm_state=VmState.BUILDING,
                                  vm_state=VmState.ERROR, task_state=None, power_state=PowerState.NOSTATE)
        except UnexpectedState:
            return False
        release_claim(instance)
        networking.release_ports(instance.pk)
        block_devices.release(instance)
        set_fault(instance, message, code=code, details=details, host=host)
        finish_action(instance, "create")
        if host:
            pipelines.cleanup(instance.pk, host)
    return True


def step_failure(failed_task_id, instance):
    """What went wrong in a failed step, as (the error's class name, its
    message), from the step's result or else from the last failed event of
    the instance; None when the step only found the instance further along
    (UnexpectedState: a repeat, not a failure)."""
    kind, message, traceback_text = "Error", "A boot step failed.", ""
    result = AsyncResult(failed_task_id, app=app) if failed_task_id else None
    if result is not None and result.failed():
        kind, message, traceback_text = type(result.result).__name__, str(result.result), result.traceback or ""
    else:
        event = InstanceActionEvent.objects.filter(action__instance=instance, result="Error").order_by(
            "-start_time", "-id").first()
        if event is not None:
            message, traceback_text = event.details or event.event, event.traceback or ""
    last_line = traceback_text.strip().splitlines()[-1] if traceback_text.strip() else ""
    if ":" in last_line and kind == "Error":  # "package.module.ClassName: message"
        kind = last_line.split(":", 1)[0].rsplit(".", 1)[-1]
    if kind == "UnexpectedState" or "UnexpectedState" in last_line:
        return None
    return kind, message


@shared_task(name="compute.tasks.boot_step_failed", ignore_result=True)
def boot_step_failed(failed_task_id=None, *, instance_id, host):
    """Errback of the node chain: roll back and reschedule to another host
    while attempts remain, else ERROR with the failure as the fault."""
    instance = Instance.objects.filter(pk=instance_id).first()
    if instance is None or instance.deleted or instance.vm_state != VmState.BUILDING:
        return "gone"
    if instance.task_state == TaskState.DELETING or instance.host != host:
        return "moved on"  # being deleted, or already rescheduled elsewhere
    failure = step_failure(failed_task_id, instance)
    if failure is None:
        return "moved on"  # a repeated step found the boot further along
    kind, message = failure
    if kind in BUILD_ABORTING_ERRORS:
        # The request itself cannot work (Nova's BuildAbortException): no
        # other host would do better, and the user is told why.
        end_build(instance, f"Build of instance {instance.pk} aborted: {message}",
                  details=f"Build aborted on {host}: {message}")
        return "error"
    return handle_build_failure(instance, message)


def handle_build_failure(instance, message):
    """Reschedules (claim released, failed host cleaned, host excluded from
    the next try) or, after conf.SCHEDULER_MAX_ATTEMPTS hosts, ends in ERROR."""
    host = instance.host
    if instance.attempts < conf.SCHEDULER_MAX_ATTEMPTS:
        with transaction.atomic():
            try:
                instance.update_state(expected_task_state=BOOT_TASK_STATES, expected_vm_state=VmState.BUILDING,
                                      task_state=TaskState.SCHEDULING, host=None, node=None)
            except UnexpectedState:
                return "moved on"
            release_claim(instance)
            networking.release_ports(instance.pk)
            block_devices.release(instance)
            set_fault(instance, "Build failed, rescheduling to another host.", code=500,
                      details=f"Build failed on {host}, rescheduling: {message}", host=host)
            pipelines.reschedule(instance.pk, host)
        return "rescheduled"
    attempts = instance.attempts
    end_build(instance, f"Exceeded maximum number of retries ({attempts} hosts tried).",
              details=f"Last failure on {host}: {message}")
    return "error"


@shared_task(name="compute.tasks.schedule_resize", ignore_result=True)
def schedule_resize(instance_id, migration_id):
    """Places a resize's new flavor, then starts the node chain. With no
    host for it, the instance stays as it was and the resize action shows
    the scheduler's error."""
    instance = Instance.objects.filter(pk=instance_id, deleted=False).first()
    migration = Migration.objects.filter(pk=migration_id, instance_id=instance_id).first()
    if instance is None or migration is None or instance.task_state != TaskState.RESIZE_PREP:
        return None  # deleted, or a repeated message for a resize that moved on
    if migration.status != Migration.Status.PRE_MIGRATING:
        # A repeat after the claim committed: the chain was published then.
        return migration.dest_compute
    try:
        with record_event(instance, migration.action, "conductor_migrate_server", host=settings.HOSTNAME):
            node = scheduler.schedule_resize(instance, migration)
    except NoValidHost as error:
        undo_resize(instance, migration, "No valid host was found for the resize.",
                    details=f"No valid host was found: {error}")
        return None
    except UnexpectedState:
        return None  # deleted meanwhile: nothing was claimed
    pipelines.run_resize(instance.pk, migration.pk, migration.source_compute, node.host)
    return node.host


@shared_task(name="compute.tasks.schedule_unshelve", ignore_result=True)
def schedule_unshelve(instance_id):
    """Places an offloaded instance being unshelved, then its node boots it.
    With no host for it, it stays offloaded with the scheduler's fault."""
    instance = Instance.objects.filter(pk=instance_id, deleted=False).first()
    if instance is None or instance.task_state != TaskState.UNSHELVING or \
            instance.vm_state != VmState.SHELVED_OFFLOADED:
        return None  # deleted, or a repeated message for an unshelve that moved on
    if instance.host:
        pipelines.unshelve(instance.pk, instance.host)  # a repeat after the claim committed
        return instance.host
    try:
        with record_event(instance, "unshelve", "conductor_unshelve_instance", host=settings.HOSTNAME):
            node = scheduler.schedule_unshelve(instance)
    except NoValidHost as error:
        try:
            instance.update_state(expected_task_state=TaskState.UNSHELVING, task_state=None)
        except UnexpectedState:
            return None
        set_fault(instance, NO_VALID_HOST, details=f"No valid host was found: {error}")
        finish_action(instance, "unshelve")
        return None
    except UnexpectedState:
        return None  # deleted meanwhile: nothing was claimed
    pipelines.unshelve(instance.pk, node.host)
    return node.host


@shared_task(name="compute.tasks.schedule_evacuate", ignore_result=True)
def schedule_evacuate(instance_id, migration_id, force=False):
    """Places an evacuated instance on another host, then that node makes
    it again. With no host for it, it stays where it was (its task over,
    the migration failed) with the scheduler's fault."""
    instance = Instance.objects.filter(pk=instance_id, deleted=False).first()
    migration = Migration.objects.filter(pk=migration_id, instance_id=instance_id).first()
    if instance is None or migration is None or instance.task_state != TaskState.REBUILDING:
        return None  # deleted, or a repeated message for an evacuation that moved on
    if migration.status != Migration.Status.ACCEPTED:
        pipelines.evacuate_on_node(instance.pk, migration.pk, migration.dest_compute)  # a repeat after the claim
        return migration.dest_compute
    try:
        with record_event(instance, "evacuate", "conductor_rebuild_server", host=settings.HOSTNAME):
            node = scheduler.schedule_evacuate(instance, migration, force=force)
    except NoValidHost as error:
        try:
            instance.update_state(expected_task_state=TaskState.REBUILDING, task_state=None)
        except UnexpectedState:
            return None
        migration.set_status(Migration.Status.FAILED)
        set_fault(instance, NO_VALID_HOST, details=f"No valid host was found: {error}")
        finish_action(instance, "evacuate")
        return None
    except UnexpectedState:
        return None  # deleted meanwhile: the old claim stays for the delete to release
    pipelines.evacuate_on_node(instance.pk, migration.pk, node.host)
    return node.host


@shared_task(name="compute.tasks.resize_step_failed", ignore_result=True)
def resize_step_failed(failed_task_id=None, *, instance_id, migration_id, stage):
    """Errback of the resize chains. A failed resize undoes itself (the
    revert chain, under the resize action); a failed revert ends in ERROR."""
    instance = Instance.objects.filter(pk=instance_id, deleted=False).first()
    migration = Migration.objects.filter(pk=migration_id, instance_id=instance_id).first()
    if instance is None or migration is None:
        return "gone"
    failure = step_failure(failed_task_id, instance)
    if failure is None:
        return "moved on"
    message = failure[1]
    if stage == "resize":
        return undo_resize(instance, migration, f"Resize failed, going back to flavor "
                                                f"{migration.old_flavor['name']}.", details=message)
    with transaction.atomic():
        try:
            instance.update_state(expected_task_state=TaskState.RESIZE_REVERTING, vm_state=VmState.ERROR,
                                  task_state=None)
        except UnexpectedState:
            return "moved on"
        migration.set_status(Migration.Status.ERROR)
        set_fault(instance, "Reverting the resize failed.", details=message)
    return "error"


def confirm(instance, migration, request_id="", user_id=None, project_id=None):
    """Confirms a finished resize (the user's confirmResize, or the
    reconciler once conf.RESIZE_CONFIRM_WINDOW has passed): the instance
    keeps its new flavor and is active (or stopped) again, its old claim
    released and the new one its own; the source deletes the files it
    kept. Raises UnexpectedState if the instance is no longer resized."""
    with transaction.atomic():
        instance.update_state(expected_task_state=None, expected_vm_state=VmState.RESIZED,
                              vm_state=migration.old_vm_state)
        confirm_claims(instance, migration)
        migration.set_status(Migration.Status.CONFIRMED)
        start_action(instance, "confirmResize", request_id, user_id or instance.user_id,
                     project_id or instance.project_id)
        pipelines.confirm_resize(instance.pk, migration.pk, migration.source_compute)


def undo_resize(instance, migration, message, details=""):
    """A resize that cannot go on: before any node acted (resize_prep) the
    new claim is released and the instance is as it was; after, the
    revert chain brings the old domain back. `message` (and the operators'
    `details`) is the fault."""
    with transaction.atomic():
        try:
            if instance.task_state == TaskState.RESIZE_PREP:
                instance.update_state(expected_task_state=TaskState.RESIZE_PREP, task_state=None)
            else:
                instance.update_state(expected_task_state=TaskState.RESIZING, task_state=TaskState.RESIZE_REVERTING)
        except UnexpectedState:
            return "moved on"
        set_fault(instance, message, details=details)
        if instance.task_state is None:
            release_claim(instance, migration)
            migration.set_status(Migration.Status.ERROR)
            finish_action(instance, migration.action)
            return "undone"
        migration.set_status(Migration.Status.REVERTING)
        pipelines.revert_resize(instance.pk, migration.pk, migration.source_compute, migration.dest_compute,
                                migration.action)
    return "reverting"


@shared_task(name="compute.tasks.reconcile", ignore_result=True)
def reconcile():
    """Periodic (workers/schedule.py): reports the scheduler alive, sends
    again the boots whose scheduling message was lost, moves every
    instance stuck in a transitional state past conf.TASK_STATE_DEADLINE
    on, and fails builds held by nodes that stopped heartbeating."""
    now = timezone.now()
    Service.objects.update_or_create(host=settings.HOSTNAME, binary=SCHEDULER_BINARY,
                                     defaults={"last_seen_up": now, "topic": "control"})
    outcome = {"stuck": 0, "node_down": 0, "resent": 0}
    # Boots still in scheduling for a while: the scheduling message, or the
    # node chain sent after the claim, was lost. Scheduling again claims a
    # host, or sends the claimed host's chain again.
    waiting_since = now - timedelta(seconds=conf.SCHEDULE_RESEND_AFTER)
    for instance_id in Instance.objects.filter(
            deleted=False, vm_state=VmState.BUILDING, task_state=TaskState.SCHEDULING,
            updated_at__lt=waiting_since).values_list("pk", flat=True):
        pipelines.schedule(instance_id)
        outcome["resent"] += 1
    if conf.SHELVED_OFFLOAD_TIME > 0:
        outcome["offloaded"] = offload_shelved(now - timedelta(seconds=conf.SHELVED_OFFLOAD_TIME))
    if conf.RESIZE_CONFIRM_WINDOW > 0:
        outcome["confirmed"] = confirm_waiting_resizes(now - timedelta(seconds=conf.RESIZE_CONFIRM_WINDOW))
    deadline = now - timedelta(seconds=conf.TASK_STATE_DEADLINE)
    # Each stuck instance comes with its node and unfinished resize (the
    # three read once for all of them, not per instance).
    stuck = Instance.objects.filter(deleted=False, task_state__isnull=False, updated_at__lt=deadline).select_related(
        "node").prefetch_related(Prefetch("migrations", to_attr="unfinished_migrations", queryset=Migration.objects
                                          .filter(status__in=Migration.Status.BEFORE_FINISH)))
    for instance in stuck:
        if reconcile_stuck(instance):
            outcome["stuck"] += 1
    # A down node's builds cannot go on: end them now rather than at the deadline.
    down_hosts = list(ComputeNode.objects.exclude(heartbeat_at__gte=alive_since()).values_list("host", flat=True))
    for instance in Instance.objects.filter(deleted=False, vm_state=VmState.BUILDING, host__in=down_hosts,
                                            task_state__in=BOOT_TASK_STATES):
        if end_build(instance, "The compute node stopped answering during the build.",
                     expected_task_state=instance.task_state,
                     details=f"Compute node {instance.host} stopped answering during the build."):
            outcome["node_down"] += 1
    return outcome


def confirm_waiting_resizes(finished_before):
    """Confirms the resizes left waiting since `finished_before`."""
    confirmed = 0
    for migration in Migration.objects.filter(status=Migration.Status.FINISHED, updated_at__lt=finished_before,
                                              instance__deleted=False).select_related("instance"):
        try:
            confirm(migration.instance, migration)
        except UnexpectedState:
            continue  # being reverted or deleted meanwhile
        confirmed += 1
    return confirmed


def reconcile_stuck(instance):
    """Moves on an instance stuck in its task_state (read by reconcile,
    with its node and `unfinished_migrations`)."""
    seconds = conf.TASK_STATE_DEADLINE
    state = instance.task_state
    if state == TaskState.DELETING:
        node_up = instance.node is not None and instance.node.is_up
        if instance.host is None or not node_up:
            # Nobody is left to delete it on a node: delete it here (Nova's local delete).
            with transaction.atomic():
                instance.mark_deleted()
            return True
        message = f"Delete did not finish within {seconds} seconds."
        try:
            instance.update_state(expected_task_state=state, vm_state=VmState.ERROR, task_state=None)
        except UnexpectedState:
            return False
        set_fault(instance, message)
        return True
    if state in BOOT_TASK_STATES and instance.vm_state == VmState.BUILDING:
        return end_build(instance, f"Build did not finish within {seconds} seconds (stuck in {state}).",
                         expected_task_state=state)
    if state in TaskState.SNAPSHOTTING:
        return end_snapshot(instance, f"Snapshot did not finish within {seconds} seconds (stuck in {state}).")
    migration = next(iter(instance.unfinished_migrations), None) if state in TaskState.RESIZING else None
    if migration is not None:
        return undo_resize(instance, migration, f"Resize did not finish within {seconds} seconds "
                                                f"(stuck in {state}).") != "moved on"
    try:
        instance.update_state(expected_task_state=state, vm_state=VmState.ERROR, task_state=None)
    except UnexpectedState:
        return False
    set_fault(instance, f"Task {state} did not finish within {seconds} seconds.")
    return True


def end_snapshot(instance, message):
    """A snapshot nobody finishes (its message or node lost): the images
    it was to fill are deleted and the server is idle again, in the
    vm_state it had, with `message` as its fault."""
    from compute.node.snapshot import finish_actions
    from images import from_server

    try:
        instance.update_state(expected_task_state=TaskState.SNAPSHOTTING, task_state=None)
    except UnexpectedState:
        return False
    unfinished = from_server.unfinished_snapshots(instance.pk)
    for image_id, _image_type in unfinished:
        from_server.discard(image_id)
    set_fault(instance, message)
    finish_actions(instance, [image_type for _image_id, image_type in unfinished])
    return True


def offload_shelved(shelved_before):
    """Offloads the instances shelved (and idle) since `shelved_before`."""
    offloaded = 0
    for instance in Instance.objects.filter(deleted=False, vm_state=VmState.SHELVED, task_state__isnull=True,
                                            updated_at__lt=shelved_before, host__isnull=False):
        with transaction.atomic():
            try:
                instance.begin("shelve_offload")
            except UnexpectedState:
                continue  # unshelved or deleted meanwhile
            start_action(instance, "shelveOffload", "", instance.user_id, instance.project_id)
            pipelines.shelve_offload(instance.pk, instance.host)
        offloaded += 1
    return offloaded
