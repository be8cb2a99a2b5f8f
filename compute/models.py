"""Compute: flavors, keypairs, instances and their history, the nodes that
run them, and the one place where an instance's state changes.

State lives in two columns, as in Nova: `vm_state` (what the instance is:
building, active, stopped...) and `task_state` (what is being done to it
right now: scheduling, spawning, powering-off... or None when idle). Every
write of either goes through `Instance.update_state` (a compare-and-swap
UPDATE) or `Instance.begin` (an API action looked up in ACTIONS), so two
writers never both win.

Usage of a node (`*_used`) is owned by claims: `claim_resources` adds to it
with a conditional UPDATE that refuses to go over capacity, `release_claim`
takes it back once. Node heartbeats write capacity and liveness only."""
import contextlib
import traceback as traceback_module
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, models, transaction
from django.db.models import F, Q, Subquery
from django.utils import timezone

from cloud.updates import update_returning
from compute import conf


# vm_state: what the instance is.
class VmState:
    BUILDING = "building"
    ACTIVE = "active"
    STOPPED = "stopped"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    ERROR = "error"
    DELETED = "deleted"
    # Resized, waiting for the user to confirm or revert (VERIFY_RESIZE).
    RESIZED = "resized"
    # Shelved: stopped, its disk kept as an image; offloaded, it is on no
    # host any more and unshelving places it again.
    SHELVED = "shelved"
    SHELVED_OFFLOADED = "shelved_offloaded"
    # Rescued: running from a rescue image, its own disk attached second.
    RESCUED = "rescued"

    CHOICES = [(value, value) for value in
               (BUILDING, ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR, DELETED, RESIZED, SHELVED, SHELVED_OFFLOADED,
                RESCUED)]


# task_state: what is being done to it (None: nothing).
class TaskState:
    SCHEDULING = "scheduling"
    BLOCK_DEVICE_MAPPING = "block_device_mapping"
    NETWORKING = "networking"
    SPAWNING = "spawning"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    REBOOTING = "rebooting"
    REBOOTING_HARD = "rebooting_hard"
    PAUSING = "pausing"
    UNPAUSING = "unpausing"
    SUSPENDING = "suspending"
    RESUMING = "resuming"
    DELETING = "deleting"

    # Every task state is transitional: the reconciler errors an instance
    # that stays in one past conf.TASK_STATE_DEADLINE.
    REBUILDING = "rebuilding"
    REBUILD_SPAWNING = "rebuild_spawning"
    # A resize, in order: placed by the scheduler, the domain stopped and
    # its files set aside on the source, then the new domain made on the
    # destination. Reverting undoes it.
    RESIZE_PREP = "resize_prep"
    RESIZE_MIGRATING = "resize_migrating"
    RESIZE_MIGRATED = "resize_migrated"
    RESIZE_FINISH = "resize_finish"
    RESIZE_REVERTING = "resize_reverting"
    # A snapshot (createImage), in order: asked for, the disk being copied
    # on the node, the copy waiting for its upload, the upload.
    IMAGE_SNAPSHOT_PENDING = "image_snapshot_pending"
    IMAGE_SNAPSHOT = "image_snapshot"
    IMAGE_PENDING_UPLOAD = "image_pending_upload"
    IMAGE_UPLOADING = "image_uploading"
    # Shelve: the domain stopped, its disk stored as an image, then
    # (offloading) the domain and files removed from the host; unshelve.
    SHELVING = "shelving"
    SHELVING_IMAGE_PENDING_UPLOAD = "shelving_image_pending_upload"
    SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
    SHELVING_OFFLOADING = "shelving_offloading"
    UNSHELVING = "unshelving"
    RESCUING = "rescuing"
    UNRESCUING = "unrescuing"

    RESIZING = (RESIZE_PREP, RESIZE_MIGRATING, RESIZE_MIGRATED, RESIZE_FINISH)
    SNAPSHOTTING = (IMAGE_SNAPSHOT_PENDING, IMAGE_SNAPSHOT, IMAGE_PENDING_UPLOAD, IMAGE_UPLOADING)
    SHELVE_STEPS = (SHELVING, SHELVING_IMAGE_PENDING_UPLOAD, SHELVING_IMAGE_UPLOADING)
    ALL = (SCHEDULING, BLOCK_DEVICE_MAPPING, NETWORKING, SPAWNING, POWERING_OFF, POWERING_ON,
           REBOOTING, REBOOTING_HARD, PAUSING, UNPAUSING, SUSPENDING, RESUMING, DELETING,
           REBUILDING, REBUILD_SPAWNING) + RESIZING + (RESIZE_REVERTING,) + SNAPSHOTTING + SHELVE_STEPS + (
               SHELVING_OFFLOADING, UNSHELVING, RESCUING, UNRESCUING)


# power_state: what the hypervisor last said (Nova's numbers, on the wire as
# OS-EXT-STS:power_state).
class PowerState:
    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


ANY = object()


class UnexpectedState(Exception):
    """The instance was not in the state a writer expected: someone else
    changed it first (or it is gone)."""

    def __init__(self, instance_id, expected, actual):
        self.instance_id = instance_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"Instance {instance_id} is {actual}, expected {expected}")


def cannot_message(instance, action):
    """Nova's words for an action refused in the instance's state."""
    state = f"vm_state {instance.vm_state}" + (f", task_state {instance.task_state}" if instance.task_state else "")
    return f"Cannot '{action}' instance {instance.id} while it is in {state}"


class InvalidState(UnexpectedState):
    """An API action asked of an instance in a state that does not allow it
    (the API answers 409)."""

    def __init__(self, instance, action):
        self.action = action
        self.instance = instance
        super().__init__(instance.id, ACTIONS[action].vm_states,
                         {"vm_state": instance.vm_state, "task_state": instance.task_state})
        self.args = (cannot_message(instance, action),)


# Who locked an instance (Instance.locked_by, Nova's values).
LOCKED_BY_OWNER = "owner"
LOCKED_BY_ADMIN = "admin"


class LockedByAdmin(Exception):
    """The owner asked to unlock an instance an administrator locked."""


@dataclass(frozen=True)
class Transition:
    """One API action: from which vm_states it may start (task_state must be
    None unless `from_task_states` says otherwise), the task_state it sets
    at once, and the state the node leaves the instance in when it is done."""

    vm_states: tuple
    task_state: str
    done_vm_state: str | None = None
    done_power_state: int | None = None
    from_task_states: tuple = (None,)
    event: str = ""


# The transition table: every API action on an instance.
ACTIONS = {
    "start": Transition((VmState.STOPPED,), TaskState.POWERING_ON, VmState.ACTIVE, PowerState.RUNNING),
    "stop": Transition((VmState.ACTIVE, VmState.ERROR), TaskState.POWERING_OFF,
                       VmState.STOPPED, PowerState.SHUTDOWN),
    "reboot_soft": Transition((VmState.ACTIVE,), TaskState.REBOOTING, VmState.ACTIVE, PowerState.RUNNING),
    "reboot_hard": Transition((VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED, VmState.ERROR),
                              TaskState.REBOOTING_HARD, VmState.ACTIVE, PowerState.RUNNING,
                              from_task_states=(None, TaskState.REBOOTING)),
    "pause": Transition((VmState.ACTIVE,), TaskState.PAUSING, VmState.PAUSED, PowerState.PAUSED),
    "unpause": Transition((VmState.PAUSED,), TaskState.UNPAUSING, VmState.ACTIVE, PowerState.RUNNING),
    "suspend": Transition((VmState.ACTIVE,), TaskState.SUSPENDING, VmState.SUSPENDED, PowerState.SUSPENDED),
    "resume": Transition((VmState.SUSPENDED,), TaskState.RESUMING, VmState.ACTIVE, PowerState.RUNNING),
    # The node moves rebuilding -> rebuild_spawning itself, and leaves a
    # stopped server stopped (compute.node.agent.rebuild).
    "rebuild": Transition((VmState.ACTIVE, VmState.STOPPED, VmState.ERROR), TaskState.REBUILDING,
                          VmState.ACTIVE, PowerState.RUNNING),
    # The nodes end a resize in RESIZED and a revert in the state the
    # resize started from (compute.node.resize).
    "resize": Transition((VmState.ACTIVE, VmState.STOPPED), TaskState.RESIZE_PREP),
    "revert_resize": Transition((VmState.RESIZED,), TaskState.RESIZE_REVERTING),
    # The node takes a snapshot through its own task states and leaves the
    # vm_state as it was (compute.node.snapshot).
    "snapshot": Transition((VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED),
                           TaskState.IMAGE_SNAPSHOT_PENDING),
    # The node ends a shelve in SHELVED (or, offloading at once, in
    # SHELVED_OFFLOADED) and an unshelve in ACTIVE (compute.node.shelve).
    "shelve": Transition((VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED), TaskState.SHELVING),
    "shelve_offload": Transition((VmState.SHELVED,), TaskState.SHELVING_OFFLOADING),
    "unshelve": Transition((VmState.SHELVED, VmState.SHELVED_OFFLOADED), TaskState.UNSHELVING),
    # The node boots a rescue domain (its disk from Instance.rescue_image_id)
    # and, unrescuing, the instance's own domain again.
    "rescue": Transition((VmState.ACTIVE, VmState.STOPPED, VmState.ERROR), TaskState.RESCUING, VmState.RESCUED,
                         PowerState.RUNNING),
    "unrescue": Transition((VmState.RESCUED,), TaskState.UNRESCUING, VmState.ACTIVE, PowerState.RUNNING),
    # Delete is allowed from anything but another delete, even mid-build.
    "delete": Transition((VmState.BUILDING, VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED,
                          VmState.SUSPENDED, VmState.ERROR, VmState.RESIZED, VmState.SHELVED,
                          VmState.SHELVED_OFFLOADED, VmState.RESCUED), TaskState.DELETING, VmState.DELETED,
                         PowerState.NOSTATE, from_task_states=(None,) + tuple(
                             state for state in TaskState.ALL if state != TaskState.DELETING)),
}

# A resize's progress (percent) as it enters each of its task states
# (Instance.update_state sets it); a finished resize is at 100. The
# `openstack` CLI prints it while it waits (`server resize --wait`). Boots
# and rebuilds stay at 0, as in Nova: the CLI would print their progress
# into the server it then outputs (`server create --wait -f json`).
TASK_PROGRESS = {
    TaskState.REBUILDING: 0,
    TaskState.RESIZE_PREP: 0, TaskState.RESIZE_MIGRATING: 20, TaskState.RESIZE_MIGRATED: 50,
    TaskState.RESIZE_FINISH: 60,
}

# The boot pipeline's steps in order: the task_state each sets and the
# instance-action event (of action "create") it records.
@dataclass(frozen=True)
class BootStep:
    name: str
    task_state: str
    event: str


BOOT_STEPS = (
    BootStep("schedule", TaskState.SCHEDULING, "conductor_schedule"),
    BootStep("prepare_disk", TaskState.BLOCK_DEVICE_MAPPING, "compute_prepare_disk"),
    BootStep("network", TaskState.NETWORKING, "network_plumb"),
    BootStep("volumes", TaskState.BLOCK_DEVICE_MAPPING, "volume_attach"),
    BootStep("spawn", TaskState.SPAWNING, "compute_spawn"),
)
BOOT_STEP = {step.name: step for step in BOOT_STEPS}
BOOT_TASK_STATES = tuple(dict.fromkeys(step.task_state for step in BOOT_STEPS))


# The zone of a host in no aggregate that names one (Nova's default).
DEFAULT_AVAILABILITY_ZONE = "nova"


def new_uuid():
    return uuid.uuid4()


class Flavor(models.Model):
    # Nova flavor ids are strings chosen by the operator ("1", "m1.tiny") or UUIDs.
    id = models.CharField(max_length=255, primary_key=True)
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(null=True, blank=True)
    vcpus = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    root_gb = models.PositiveIntegerField(default=0)
    ephemeral_gb = models.PositiveIntegerField(default=0)
    swap = models.PositiveIntegerField(default=0)
    rxtx_factor = models.FloatField(default=1.0)
    is_public = models.BooleanField(default=True)
    disabled = models.BooleanField(default=False)
    extra_specs = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["memory_mb", "id"]

    def __str__(self):
        return self.name


class FlavorAccess(models.Model):
    """A project allowed to use a private flavor."""

    flavor = models.ForeignKey(Flavor, on_delete=models.CASCADE, related_name="access")
    project_id = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flavor", "project_id"], name="flavor_access_unique")]


class KeyPair(models.Model):
    """An SSH public key (or x509 certificate) of a user, by name."""

    user_id = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=16, default="ssh")
    public_key = models.TextField()
    fingerprint = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user_id", "name"], name="keypair_name_unique_per_user")]

    def __str__(self):
        return self.name


class ComputeNode(models.Model):
    """A hypervisor. Capacity and liveness come from the node's heartbeat;
    usage (`*_used`) only from claims."""

    id = models.UUIDField(primary_key=True, default=new_uuid)
    host = models.CharField(max_length=255, unique=True)
    hypervisor_type = models.CharField(max_length=64, default="QEMU")
    hypervisor_version = models.BigIntegerField(default=0)
    hypervisor_uri = models.CharField(max_length=255)
    hypervisor_hostname = models.CharField(max_length=255)
    host_ip = models.CharField(max_length=64, default="127.0.0.1")
    cpu_info = models.JSONField(default=dict, blank=True)
    vcpus = models.PositiveIntegerField(default=0)
    memory_mb = models.PositiveIntegerField(default=0)
    local_gb = models.PositiveIntegerField(default=0)
    vcpus_used = models.IntegerField(default=0)
    memory_mb_used = models.IntegerField(default=0)
    local_gb_used = models.IntegerField(default=0)
    cpu_allocation_ratio = models.FloatField(default=conf.CPU_ALLOCATION_RATIO)
    ram_allocation_ratio = models.FloatField(default=conf.RAM_ALLOCATION_RATIO)
    disk_allocation_ratio = models.FloatField(default=conf.DISK_ALLOCATION_RATIO)
    running_vms = models.IntegerField(default=0)
    availability_zone = models.CharField(max_length=255, default=DEFAULT_AVAILABILITY_ZONE)
    disabled = models.BooleanField(default=False)
    disabled_reason = models.CharField(max_length=255, null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the host booted, as its agent reports on each heartbeat (the
    # API renders the hypervisor's uptime from it; null until reported).
    booted_at = models.DateTimeField(null=True, blank=True)
    # The host's 1, 5 and 15 minute load averages ("0.12, 0.30, 0.25"),
    # reported with booted_at for the same uptime text.
    load_average = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["host"]

    def __str__(self):
        return self.host

    @property
    def is_up(self):
        return self.heartbeat_at is not None and self.heartbeat_at >= alive_since()

    @property
    def vcpus_capacity(self):
        return int(self.vcpus * self.cpu_allocation_ratio)

    @property
    def memory_mb_capacity(self):
        return int(self.memory_mb * self.ram_allocation_ratio)

    @property
    def local_gb_capacity(self):
        return int(self.local_gb * self.disk_allocation_ratio)

    @property
    def free_ram_mb(self):
        return self.memory_mb_capacity - self.memory_mb_used


def alive_since():
    return timezone.now() - timedelta(seconds=conf.SERVICE_DOWN_TIME)


class Service(models.Model):
    """A Stratus process on a host (stratus-compute on each node,
    stratus-scheduler for the control worker), as os-services shows it."""

    COMPUTE_BINARY = "stratus-compute"

    id = models.UUIDField(primary_key=True, default=new_uuid)
    binary = models.CharField(max_length=64)
    host = models.CharField(max_length=255)
    topic = models.CharField(max_length=255, blank=True, default="")
    availability_zone = models.CharField(max_length=255, default=DEFAULT_AVAILABILITY_ZONE)
    disabled = models.BooleanField(default=False)
    disabled_reason = models.CharField(max_length=255, null=True, blank=True)
    forced_down = models.BooleanField(default=False)
    last_seen_up = models.DateTimeField(null=True, blank=True)
    report_count = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["binary", "host"]
        constraints = [models.UniqueConstraint(fields=["host", "binary"], name="service_unique_per_host")]

    def __str__(self):
        return f"{self.binary}@{self.host}"

    @property
    def is_up(self):
        return not self.forced_down and self.last_seen_up is not None and self.last_seen_up >= alive_since()


class ServerGroup(models.Model):
    POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")

    id = models.UUIDField(primary_key=True, default=new_uuid)
    name = models.CharField(max_length=255)
    project_id = models.CharField(max_length=64, db_index=True)
    user_id = models.CharField(max_length=64)
    policy = models.CharField(max_length=32, choices=[(p, p) for p in POLICIES])
    rules = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return self.name


class Instance(models.Model):
    id = models.UUIDField(primary_key=True, default=new_uuid)
    name = models.CharField(max_length=255)
    description = models.TextField(null=True, blank=True)
    hostname = models.CharField(max_length=255, blank=True, default="")
    project_id = models.CharField(max_length=64)
    user_id = models.CharField(max_length=64)
    # The flavor as it was at boot: the flavor row may change or go.
    flavor = models.ForeignKey(Flavor, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    flavor_id_at_boot = models.CharField(max_length=255)
    flavor_name = models.CharField(max_length=255)
    vcpus = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    root_gb = models.PositiveIntegerField()
    ephemeral_gb = models.PositiveIntegerField(default=0)
    swap = models.PositiveIntegerField(default=0)
    flavor_extra_specs = models.JSONField(default=dict, blank=True)
    image_id = models.CharField(max_length=64, blank=True, default="")
    # While shelved: the image its disk was stored as (Nova's
    # shelved_image_id); unshelving boots from it, then deletes it.
    shelved_image_id = models.CharField(max_length=64, blank=True, default="")
    # The image a rescue boots from (the instance's own unless one was named).
    rescue_image_id = models.CharField(max_length=64, blank=True, default="")
    # What the guest posted to the metadata service's password file (its
    # password, encrypted with the keypair's public key): Nova's
    # os-server-password, which the owner reads and clears.
    guest_password = models.TextField(blank=True, default="")
    # The admin password set by changePassword, which the guest reads as
    # `admin_pass` in the metadata service's meta_data.json (as Nova puts
    # it on a config drive); kept as given, since the guest needs it so.
    admin_password = models.TextField(blank=True, default="")
    # Nova's OS-DCF:diskConfig as asked (AUTO: the guest grows its root
    # filesystem to the disk, which the node always sizes to the flavor).
    auto_disk_config = models.BooleanField(default=False)
    key_name = models.CharField(max_length=255, null=True, blank=True)
    key_data = models.TextField(null=True, blank=True)
    user_data = models.TextField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    config_drive = models.BooleanField(default=False)
    access_ipv4 = models.CharField(max_length=64, blank=True, default="")
    access_ipv6 = models.CharField(max_length=64, blank=True, default="")
    # The zone asked for (blank: any); `node.availability_zone` is where it landed.
    availability_zone = models.CharField(max_length=255, blank=True, default="")
    # What the scheduler needs: hints, group, image limits, requested networks.
    request_spec = models.JSONField(default=dict, blank=True)
    server_group = models.ForeignKey(ServerGroup, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="members")
    reservation_id = models.CharField(max_length=64, blank=True, default="")
    launch_index = models.IntegerField(default=0)
    host = models.CharField(max_length=255, null=True, blank=True)
    node = models.ForeignKey(ComputeNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="instances")
    # Hosts already tried for this boot (a reschedule skips them) and the
    # scheduler's alternates.
    attempts = models.PositiveIntegerField(default=0)
    tried_hosts = models.JSONField(default=list, blank=True)
    vm_state = models.CharField(max_length=32, choices=VmState.CHOICES, default=VmState.BUILDING)
    task_state = models.CharField(max_length=32, null=True, blank=True)
    power_state = models.IntegerField(default=PowerState.NOSTATE)
    progress = models.IntegerField(default=0)
    locked = models.BooleanField(default=False)
    locked_by = models.CharField(max_length=16, null=True, blank=True)  # LOCKED_BY_OWNER or LOCKED_BY_ADMIN
    locked_reason = models.CharField(max_length=255, null=True, blank=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set on every state write: changes-since and the reconciler's deadline.
    updated_at = models.DateTimeField(default=timezone.now)

    # Server lists load a thousand rows with a few big columns deferred;
    # Django then matches every column name against the loaded ones per row.
    # The layout of a row depends only on which columns were loaded: work it
    # out once per set of columns.
    _row_layouts = {}

    @classmethod
    def from_db(cls, db, field_names, values):
        fields = cls._meta.concrete_fields
        if len(values) != len(fields):
            key = tuple(field_names)
            layout = cls._row_layouts.get(key)
            if layout is None:
                loaded = set(field_names)
                layout = cls._row_layouts[key] = [field.attname in loaded for field in fields]
            values_iter = iter(values)
            values = [next(values_iter) if present else models.DEFERRED for present in layout]
        instance = cls(*values)
        instance._state.adding = False
        instance._state.db = db
        return instance

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            models.Index(fields=["project_id", "deleted", "created_at"], name="instance_project_idx"),
            models.Index(fields=["host", "deleted"], name="instance_host_idx"),
            models.Index(fields=["updated_at"], name="instance_updated_idx"),
            models.Index(fields=["task_state", "updated_at"], name="instance_task_state_idx"),
        ]

    def __str__(self):
        return f"{self.name} ({self.id})"

    def update_state(self, expected_task_state=ANY, expected_vm_state=ANY, **fields):
        """Compare-and-swap: writes `fields` only if the row's task_state
        (and vm_state) are still among the expected ones, then updates this
        object. Raises UnexpectedState if another writer got there first or
        the instance is deleted. Entering a task state of TASK_PROGRESS sets
        its progress."""
        fields.setdefault("updated_at", timezone.now())
        if fields.get("task_state") in TASK_PROGRESS:
            fields.setdefault("progress", TASK_PROGRESS[fields["task_state"]])
        condition = Q(pk=self.pk, deleted=False)
        if expected_task_state is not ANY:
            condition &= _state_in("task_state", expected_task_state)
        if expected_vm_state is not ANY:
            condition &= _state_in("vm_state", expected_vm_state)
        if not Instance.objects.filter(condition).update(**fields):
            actual = Instance.objects.filter(pk=self.pk).values("vm_state", "task_state", "deleted").first()
            raise UnexpectedState(self.pk, {"task_state": expected_task_state, "vm_state": expected_vm_state},
                                  actual or "gone")
        for name, value in fields.items():
            setattr(self, name, value)
        return self

    def begin(self, action, keep_vm_state=False):
        """Starts API action `action` (a key of ACTIONS): sets its task_state
        if the instance's state allows it, else raises InvalidState. With
        `keep_vm_state`, only from the vm_state this object was read in
        (for a caller that records it, as a resize records the state to
        return to)."""
        transition = ACTIONS[action]
        vm_states = transition.vm_states
        if keep_vm_state:
            vm_states = (self.vm_state,) if self.vm_state in vm_states else ()
        try:
            return self.update_state(expected_task_state=transition.from_task_states,
                                     expected_vm_state=vm_states, task_state=transition.task_state)
        except UnexpectedState:
            self.refresh_from_db(fields=["vm_state", "task_state"])
            raise InvalidState(self, action) from None

    def complete(self, action, **fields):
        """The node finished `action`: the instance takes the action's final
        state (task_state None). Raises UnexpectedState if the instance left
        the action's task_state meanwhile (deleted, reset by an operator)."""
        transition = ACTIONS[action]
        return self.update_state(expected_task_state=transition.task_state, vm_state=transition.done_vm_state,
                                 power_state=transition.done_power_state, task_state=None, **fields)

    @classmethod
    def enter_boot_step(cls, instance_id, step_name, host):
        """The boot pipeline reached `step_name` (a BOOT_STEPS name) on
        `host`: sets its task_state if the instance is still building there,
        in an earlier step's (or, on a redelivered task, this step's)
        task_state. Returns the instance as that one statement left it (a
        step's read and its write are one query), or None if it matched
        nothing: deleted, moved on, or another host's."""
        index = [step.name for step in BOOT_STEPS].index(step_name)
        # A chain leaves out the node steps a boot has nothing for, so a
        # node step follows any earlier one; scheduling precedes the first.
        allowed = {step.task_state for step in BOOT_STEPS[1:index + 1]} | {BOOT_STEPS[index].task_state}
        if index:
            allowed.add(BOOT_STEPS[index - 1].task_state)
        condition = Q(pk=instance_id, deleted=False, host=host, vm_state=VmState.BUILDING) & \
            _state_in("task_state", tuple(allowed))
        rows = update_returning(cls.objects.filter(condition), task_state=BOOT_STEPS[index].task_state,
                                updated_at=timezone.now())
        return rows[0] if rows else None

    def reset_state(self, vm_state):
        """An operator's reset (Nova's reset-state): the instance is what
        they say, and the task under way is forgotten."""
        if vm_state not in (VmState.ACTIVE, VmState.ERROR):
            raise ValueError(f"An instance can be reset to active or error, not {vm_state!r}.")
        return self.update_state(vm_state=vm_state, task_state=None)

    def lock(self, locked_by, reason=None):
        """Locks the instance (`locked_by`: LOCKED_BY_OWNER or
        LOCKED_BY_ADMIN). An owner's lock leaves a lock already set as it
        is, as in Nova: re-locking must not turn an admin's lock into one
        the owner may lift."""
        condition = Q(pk=self.pk)
        if locked_by != LOCKED_BY_ADMIN:
            condition &= Q(locked=False)
        Instance.objects.filter(condition).update(locked=True, locked_by=locked_by, locked_reason=reason)
        self.refresh_from_db(fields=["locked", "locked_by", "locked_reason"])

    def unlock(self, unlocked_by):
        """Lifts the lock; only an admin lifts an admin's lock (Nova's
        unlock_override), else LockedByAdmin. One conditional UPDATE, so a
        lock an admin sets meanwhile is never lifted by the owner."""
        condition = Q(pk=self.pk)
        if unlocked_by != LOCKED_BY_ADMIN:
            condition &= ~Q(locked_by=LOCKED_BY_ADMIN)
        if not Instance.objects.filter(condition).update(locked=False, locked_by=None, locked_reason=None):
            raise LockedByAdmin(f"Instance {self.pk} was locked by an administrator and only an administrator "
                                f"can unlock it.")
        self.locked, self.locked_by, self.locked_reason = False, None, None

    def mark_deleted(self):
        """The instance is gone from its node: the row stays (for usage and
        actions history) but leaves every list. Releases its claim, its
        ports (those made for it deleted, the user's own given back) and its
        volumes (detached, available again, or deleted when mapped at boot
        with delete_on_termination)."""
        from compute import block_devices
        from compute.networking import release_ports

        now = timezone.now()
        with transaction.atomic():
            if self.shelved_image_id:
                # The image of its shelved disk goes with it, as in Nova.
                from images import from_server

                image_id = self.shelved_image_id
                transaction.on_commit(lambda: from_server.discard(image_id))
            release_ports(self.pk)
            block_devices.release(self, deleting=True)
            Instance.objects.filter(pk=self.pk).update(
                deleted=True, deleted_at=now, terminated_at=now, vm_state=VmState.DELETED, task_state=None,
                power_state=PowerState.NOSTATE, updated_at=now)
            release_claim(self)
        self.deleted, self.deleted_at, self.terminated_at = True, now, now
        self.vm_state, self.task_state, self.power_state = VmState.DELETED, None, PowerState.NOSTATE


def _state_in(column, expected):
    if isinstance(expected, (tuple, list, set, frozenset)):
        values = list(expected)
    else:
        values = [expected]
    condition = Q(**{f"{column}__in": [value for value in values if value is not None]})
    if None in values:
        condition |= Q(**{f"{column}__isnull": True})
    return condition


class Migration(models.Model):
    """A move of an instance between flavors (and maybe hosts): a resize,
    as os-migrations lists it. It holds the flavor the instance had, to go
    back to on revert, and the claim on the destination until the user
    confirms or reverts."""

    class Status:
        PRE_MIGRATING = "pre-migrating"  # asked for; the scheduler places it
        MIGRATING = "migrating"  # placed; the source stops the domain
        POST_MIGRATING = "post-migrating"  # the destination makes the new domain
        FINISHED = "finished"  # resized: waiting for confirm or revert
        CONFIRMED = "confirmed"
        REVERTING = "reverting"
        REVERTED = "reverted"
        ERROR = "error"
        # An evacuation's (Nova's words): asked for, placed, over.
        ACCEPTED = "accepted"
        DONE = "done"
        FAILED = "failed"

        # Still holding two claims and, before FINISHED, the growth of the
        # flavor that quota counts on top of the instance's current one.
        IN_PROGRESS = (PRE_MIGRATING, MIGRATING, POST_MIGRATING, FINISHED, REVERTING)
        BEFORE_FINISH = (PRE_MIGRATING, MIGRATING, POST_MIGRATING)

    uuid = models.UUIDField(unique=True, default=new_uuid)
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="migrations")
    project_id = models.CharField(max_length=64)
    user_id = models.CharField(max_length=64)
    migration_type = models.CharField(max_length=32, default="resize")
    status = models.CharField(max_length=32, default=Status.PRE_MIGRATING)
    source_compute = models.CharField(max_length=255)
    source_node = models.CharField(max_length=255)
    dest_compute = models.CharField(max_length=255, null=True, blank=True)
    dest_node = models.CharField(max_length=255, null=True, blank=True)
    dest_host = models.CharField(max_length=64, null=True, blank=True)
    # flavor_snapshot() of the flavor before and after.
    old_flavor = models.JSONField()
    new_flavor = models.JSONField()
    # What the instance was (active or stopped) and returns to.
    old_vm_state = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project_id", "status"], name="migration_project_status_idx")]

    def __str__(self):
        return f"{self.migration_type} of {self.instance_id} ({self.status})"

    # migration_type: a resize changes the flavor (and maybe the host); a
    # cold migration (an admin's `migrate`) keeps the flavor and changes
    # the host.
    RESIZE, COLD_MIGRATION = "resize", "migration"
    # An admin's `evacuate`: the instance made again on another host, its
    # own being down (statuses accepted, pre-migrating, done or failed, as Nova's).
    EVACUATION = "evacuation"

    @property
    def action(self):
        """The instance action its steps are recorded under."""
        return {self.COLD_MIGRATION: "migrate", self.EVACUATION: "evacuate"}.get(self.migration_type, "resize")

    def set_status(self, status, **fields):
        fields.update(status=status, updated_at=timezone.now())
        Migration.objects.filter(pk=self.pk).update(**fields)
        for name, value in fields.items():
            setattr(self, name, value)


# An instance's flavor, as a resize keeps it (Migration.old_flavor/new_flavor).
FLAVOR_SIZES = ("vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap")


def flavor_snapshot(source):
    """The flavor of an Instance (what it runs with) or of a Flavor row."""
    if isinstance(source, Instance):
        snapshot = {"id": source.flavor_id_at_boot, "name": source.flavor_name,
                    "extra_specs": source.flavor_extra_specs}
    else:
        snapshot = {"id": source.id, "name": source.name, "extra_specs": source.extra_specs}
    snapshot.update({size: getattr(source, size) for size in FLAVOR_SIZES})
    return snapshot


def instance_flavor_fields(snapshot):
    """The Instance columns that make it run with flavor `snapshot`."""
    fields = {size: snapshot[size] for size in FLAVOR_SIZES}
    fields.update(flavor_id=snapshot["id"] if Flavor.objects.filter(pk=snapshot["id"]).exists() else None,
                  flavor_id_at_boot=snapshot["id"], flavor_name=snapshot["name"],
                  flavor_extra_specs=snapshot["extra_specs"])
    return fields


def disk_gb_of(sizes):
    """The local disk a flavor (or instance) takes: root, ephemeral and swap (MiB, rounded up)."""
    return sizes["root_gb"] + sizes["ephemeral_gb"] + (sizes["swap"] + 1023) // 1024


class Claim(models.Model):
    """Resources an instance holds on a node. An instance holds one, its
    own (migration None); while a resize is under way it also holds the
    new flavor's on the destination (migration set) until the resize is
    confirmed (the old one is released and the new one becomes its own)
    or reverted (the new one is released). Releasing is deleting the row,
    so releasing twice is safe."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="claims")
    migration = models.ForeignKey(Migration, null=True, blank=True, on_delete=models.CASCADE, related_name="claims")
    node = models.ForeignKey(ComputeNode, on_delete=models.CASCADE, related_name="claims")
    vcpus = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    local_gb = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance"], condition=Q(migration__isnull=True),
                                    name="claim_one_own_per_instance"),
            models.UniqueConstraint(fields=["migration"], condition=Q(migration__isnull=False),
                                    name="claim_one_per_migration"),
        ]


def claim_resources(instance, node, migration=None):
    """Claims `instance`'s flavor on `node` (with `migration`: the
    migration's new flavor), atomically: one conditional UPDATE that adds
    to the node's usage only if it stays within capacity times the
    allocation ratios, then the Claim row in the same transaction.
    Returns the Claim, or None if the node is full (or gone, or disabled).
    Concurrent claims serialize on the node's row, so none oversubscribes."""
    sizes = migration.new_flavor if migration is not None else flavor_snapshot(instance)
    vcpus, memory_mb, disk = sizes["vcpus"], sizes["memory_mb"], disk_gb_of(sizes)
    # No savepoint inside a caller's transaction: a failure here fails the
    # caller's whole transaction, which is what a scheduler wants anyway.
    with transaction.atomic(savepoint=False):
        updated = ComputeNode.objects.filter(
            Q(pk=node.pk, disabled=False)
            & Q(vcpus_used__lte=F("vcpus") * F("cpu_allocation_ratio") - vcpus)
            & Q(memory_mb_used__lte=F("memory_mb") * F("ram_allocation_ratio") - memory_mb)
            & Q(local_gb_used__lte=F("local_gb") * F("disk_allocation_ratio") - disk)
        ).update(vcpus_used=F("vcpus_used") + vcpus,
                 memory_mb_used=F("memory_mb_used") + memory_mb,
                 local_gb_used=F("local_gb_used") + disk)
        if not updated:
            return None
        return Claim.objects.create(instance=instance, migration=migration, node=node, vcpus=vcpus,
                                    memory_mb=memory_mb, local_gb=disk)


OWN = None


def release_claim(instance, migration=ANY):
    """Gives resources the instance claimed back to their nodes: all its
    claims, or only its own (migration=OWN) or a migration's. Idempotent:
    only the caller that deletes a Claim row subtracts it."""
    claims = Claim.objects.select_for_update().filter(instance_id=instance.pk)
    if migration is not ANY:
        claims = claims.filter(migration=migration)
    released = False
    with transaction.atomic():
        for claim in claims:
            claim.delete()
            ComputeNode.objects.filter(pk=claim.node_id).update(
                vcpus_used=F("vcpus_used") - claim.vcpus,
                memory_mb_used=F("memory_mb_used") - claim.memory_mb,
                local_gb_used=F("local_gb_used") - claim.local_gb)
            released = True
    return released


def confirm_claims(instance, migration):
    """A confirmed resize: the instance's old claim is released and the
    migration's becomes its own."""
    with transaction.atomic():
        release_claim(instance, OWN)
        Claim.objects.filter(instance_id=instance.pk, migration=migration).update(migration=None)


class InstanceAction(models.Model):
    """A request on an instance (create, stop, delete...), as
    os-instance-actions lists it."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="actions")
    action = models.CharField(max_length=64)
    request_id = models.CharField(max_length=64, db_index=True)
    user_id = models.CharField(max_length=64)
    project_id = models.CharField(max_length=64)
    start_time = models.DateTimeField(default=timezone.now)
    finish_time = models.DateTimeField(null=True, blank=True)
    message = models.CharField(max_length=255, null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-start_time", "-id"]


class InstanceActionEvent(models.Model):
    """One step of an action (schedule, prepare_disk, spawn...)."""

    action = models.ForeignKey(InstanceAction, on_delete=models.CASCADE, related_name="events")
    event = models.CharField(max_length=64)
    host = models.CharField(max_length=255, null=True, blank=True)
    start_time = models.DateTimeField(default=timezone.now)
    finish_time = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=32, null=True, blank=True)  # "Success" or "Error"
    traceback = models.TextField(null=True, blank=True)
    details = models.TextField(null=True, blank=True)

    class Meta:
        ordering = ["start_time", "id"]


class InstanceTag(models.Model):
    """A server's tag (Nova's server tags, 2.26+): a plain string, at most
    MAX_PER_INSTANCE per server."""

    MAX_PER_INSTANCE = 50
    MAX_LENGTH = 60

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="tags")
    tag = models.CharField(max_length=MAX_LENGTH)

    class Meta:
        ordering = ["tag"]
        constraints = [models.UniqueConstraint(fields=["instance", "tag"], name="instance_tag_unique")]


class InstanceFault(models.Model):
    """Why an instance is in ERROR (or why a step failed), shown by `server show`."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="faults")
    code = models.IntegerField(default=500)
    message = models.CharField(max_length=255)
    details = models.TextField(blank=True, default="")
    host = models.CharField(max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]


class Quota(models.Model):
    """A project's limit for one resource, overriding the `default` quota
    class's (QuotaClass) and conf.DEFAULT_QUOTAS."""

    project_id = models.CharField(max_length=64)
    resource = models.CharField(max_length=64)
    hard_limit = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project_id", "resource"], name="quota_unique_resource")]


class QuotaClass(models.Model):
    """A quota class's limit for one resource, where it differs from
    conf.DEFAULT_QUOTAS (Nova's os-quota-class-sets): the `default`
    class's limits are those of every project without its own."""

    class_name = models.CharField(max_length=255)
    resource = models.CharField(max_length=64)
    hard_limit = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["class_name", "resource"], name="quotaclass_unique_resource")]


class QuotaLock(models.Model):
    """One row per project that a boot locks (SELECT ... FOR UPDATE) while it
    counts the project's usage and inserts its instances, so two concurrent
    boots of one project are counted one after the other. Usage itself is
    counted from the instances, never stored twice. Keypairs, counted per
    user, lock the row "user:<user id>" (compute.quotas.reserve_key_pair)."""

    project_id = models.CharField(max_length=64, primary_key=True)


def start_action(instance, action, request_id, user_id, project_id):
    return InstanceAction.objects.create(instance=instance, action=action, request_id=request_id or "",
                                         user_id=user_id or "", project_id=project_id or instance.project_id)


def _action_row(instance, action):
    if isinstance(action, InstanceAction):
        return action
    row = InstanceAction.objects.filter(instance_id=instance.pk, action=action).order_by("-start_time", "-id").first()
    if row is None:
        row = InstanceAction.objects.create(instance_id=instance.pk, action=action, request_id="",
                                            user_id=instance.user_id, project_id=instance.project_id)
    return row


def _start_event(instance, action, event_name, host, **fields):
    """The event row, with `fields` (a finished one's times and result). By
    action name, the action is found inside the INSERT (one query per step
    of every boot instead of two)."""
    if isinstance(action, InstanceAction):
        return InstanceActionEvent.objects.create(action=action, event=event_name, host=host, **fields)
    if not transaction.get_connection().in_atomic_block:
        latest = InstanceAction.objects.filter(instance_id=instance.pk, action=action).order_by(
            "-start_time", "-id").values("id")[:1]
        event = InstanceActionEvent(action_id=Subquery(latest), event=event_name, host=host, **fields)
        try:
            event.save(force_insert=True)
        except IntegrityError:
            pass  # no such action yet: made below
        else:
            del event.__dict__["action_id"]  # deferred: read from the row if anyone asks
            return event
    return InstanceActionEvent.objects.create(action=_action_row(instance, action), event=event_name, host=host,
                                              **fields)


def _failure(error):
    return {"result": "Error", "details": str(error)[:2000],
            "traceback": "".join(traceback_module.format_exception(error))[-10000:]}


@contextlib.contextmanager
def record_event(instance, action, event_name, host=None, quick=False):
    """Records one step of `action` (an InstanceAction or its name, the
    instance's latest of that name) as an event: start time now, then
    finish time and result when the block ends. An exception is recorded
    with its traceback and re-raised. A `quick` step (one nobody needs to
    see under way: it takes milliseconds, or has nothing to do) is written
    once it ended, start and finish in one row: one query instead of two."""
    host = host or instance.host
    if quick:
        started = timezone.now()
        try:
            yield None
        except BaseException as error:
            event = _start_event(instance, action, event_name, host, start_time=started,
                                 finish_time=timezone.now(), **_failure(error))
            InstanceAction.objects.filter(events=event.pk).update(message="Error", updated_at=event.finish_time)
            raise
        _start_event(instance, action, event_name, host, start_time=started, finish_time=timezone.now(),
                     result="Success")
        return
    event = _start_event(instance, action, event_name, host)
    try:
        yield event
    except BaseException as error:
        now = timezone.now()
        InstanceActionEvent.objects.filter(pk=event.pk).update(finish_time=now, **_failure(error))
        InstanceAction.objects.filter(events=event.pk).update(message="Error", updated_at=now)
        raise
    # The action's updated_at moves on failure and when it finishes
    # (finish_action), not per successful step: one query less per step.
    InstanceActionEvent.objects.filter(pk=event.pk).update(finish_time=timezone.now(), result="Success")


def finish_action(instance, action):
    now = timezone.now()
    if isinstance(action, InstanceAction):
        InstanceAction.objects.filter(pk=action.pk).update(finish_time=now, updated_at=now)
        return
    latest = InstanceAction.objects.filter(instance_id=instance.pk, action=action).order_by(
        "-start_time", "-id").values("id")[:1]
    if not InstanceAction.objects.filter(pk=Subquery(latest)).update(finish_time=now, updated_at=now):
        row = _action_row(instance, action)  # none was recorded: made now
        InstanceAction.objects.filter(pk=row.pk).update(finish_time=now, updated_at=now)


def set_fault(instance, message, code=500, details="", host=None):
    """Records why the instance failed; the latest fault is what `server
    show` displays. `message` is shown to everyone who sees the server, so
    it names no host, node, path or scheduler figure (Nova's short text);
    what operators need goes into `details`, which only admins see."""
    return InstanceFault.objects.create(instance_id=instance.pk, code=code, message=str(message)[:255],
                                        details=details or "", host=host or instance.host)


class Aggregate(models.Model):
    """A host aggregate (os-aggregates): a named group of compute hosts with
    metadata. Its `availability_zone` metadata key, when set, is the zone of
    every host in it (ComputeNode.availability_zone and the compute
    Service's are kept in step by compute.api.aggregates)."""

    ZONE_KEY = "availability_zone"

    id = models.AutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255, unique=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name

    @property
    def availability_zone(self):
        return (self.metadata or {}).get(self.ZONE_KEY)


def host_zones(hosts):
    """{host: the zones of the aggregates it is in} (a set: empty when it
    is in the default zone; more than one only in a change being refused)."""
    zones = {host: set() for host in hosts}
    for host, metadata in AggregateHost.objects.filter(host__in=hosts).values_list("host", "aggregate__metadata"):
        zone = (metadata or {}).get(Aggregate.ZONE_KEY)
        if zone:
            zones[host].add(zone)
    return zones


def zone_of(zones):
    """The zone of a host whose aggregates have `zones` (from host_zones)."""
    return next(iter(sorted(zones)), DEFAULT_AVAILABILITY_ZONE)


def zone_of_host(host):
    """The availability zone of `host`: its aggregate's, else the default."""
    return zone_of(host_zones([host])[host])


class AggregateHost(models.Model):
    """A compute host (ComputeNode.host) in an aggregate."""

    aggregate = models.ForeignKey(Aggregate, on_delete=models.CASCADE, related_name="hosts")
    host = models.CharField(max_length=255, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["aggregate", "host"], name="aggregate_host_unique")]

    def __str__(self):
        return self.host
