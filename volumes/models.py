"""Cinder's resources as rows. A volume lives on one back end (Backend, one
per volume worker, its capacity reported by heartbeat); the space it takes
there is claimed by `claim_capacity`, a conditional UPDATE that refuses to
pass capacity, and given back once by `release_capacity`. Status changes
go through `set_status`, a compare-and-swap on the expected statuses."""
import uuid
from datetime import timedelta

from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

from volumes import conf


def new_id():
    return uuid.uuid4()


class InvalidStatus(Exception):
    """The row was not in a status the change starts from."""


class Backend(models.Model):
    """A volume back end, served by one worker consuming `volume.<host>`.
    `host` is Cinder's `host@backend`; its one pool is `host@backend#pool`."""

    host = models.CharField(max_length=255, unique=True)
    backend_name = models.CharField(max_length=255)  # volume_backend_name a type's extra specs match
    driver = models.CharField(max_length=32)         # "file", "rbd"
    availability_zone = models.CharField(max_length=255, default="nova")
    total_capacity_gb = models.IntegerField(default=0)
    allocated_capacity_gb = models.IntegerField(default=0)  # owned by claims
    max_over_subscription_ratio = models.FloatField(default=1.0)
    thin_provisioning = models.BooleanField(default=True)
    disabled = models.BooleanField(default=False)
    disabled_reason = models.CharField(max_length=255, null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["host"]

    def __str__(self):
        return self.host

    @property
    def pool_name(self):
        return f"{self.host}#{self.backend_name}"

    @property
    def is_up(self):
        return self.heartbeat_at is not None and self.heartbeat_at >= alive_since()

    @property
    def free_capacity_gb(self):
        return max(int(self.total_capacity_gb * self.max_over_subscription_ratio) - self.allocated_capacity_gb, 0)


def by_key(rows):
    """The one row a unique key picks out of `rows`, or None: `first()`
    without the ORDER BY it would add (composing that was most of such a
    read's CPU on the hot paths)."""
    return next(iter(rows.order_by()[:1]), None)


def alive_since():
    return timezone.now() - timedelta(seconds=conf.SERVICE_DOWN_TIME)


def claim_capacity(backend_id, size_gb):
    """Adds `size_gb` to the back end's allocation if it stays within its
    capacity (times the over-subscription ratio), in one conditional UPDATE:
    concurrent claims serialize on the row and none passes capacity.
    Returns whether the claim was made."""
    return bool(Backend.objects.filter(
        Q(pk=backend_id, disabled=False)
        & Q(allocated_capacity_gb__lte=F("total_capacity_gb") * F("max_over_subscription_ratio") - size_gb)
    ).update(allocated_capacity_gb=F("allocated_capacity_gb") + size_gb))


def release_capacity(backend_id, size_gb):
    Backend.objects.filter(pk=backend_id).update(allocated_capacity_gb=F("allocated_capacity_gb") - size_gb)


class QosSpecs(models.Model):
    """Cinder's QoS specs: named key/value limits for a consumer (the
    front end, QEMU's I/O throttling, or the back end), associated with
    volume types."""

    class Consumer(models.TextChoices):
        FRONT_END = "front-end"
        BACK_END = "back-end"
        BOTH = "both"

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    name = models.CharField(max_length=255, unique=True)
    consumer = models.CharField(max_length=16, choices=Consumer.choices, default=Consumer.BACK_END)
    specs = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)


class VolumeType(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    name = models.CharField(max_length=255, unique=True)
    description = models.CharField(max_length=255, null=True, blank=True)
    is_public = models.BooleanField(default=True)
    extra_specs = models.JSONField(default=dict, blank=True)
    qos_specs = models.ForeignKey(QosSpecs, on_delete=models.PROTECT, null=True, blank=True, related_name="types")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def backend_name(self):
        return self.extra_specs.get("volume_backend_name")


class VolumeTypeAccess(models.Model):
    volume_type = models.ForeignKey(VolumeType, on_delete=models.CASCADE, related_name="access")
    project_id = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["volume_type", "project_id"], name="volumetype_access_unique")]


class StatusMixin:
    """`set_status(new, expected=...)`: a compare-and-swap of the status
    (and of any other fields given), raising InvalidStatus when the row is
    no longer in one of `expected`."""

    def set_status(self, status, expected=None, **fields):
        rows = type(self).objects.filter(pk=self.pk)
        if expected is not None:
            rows = rows.filter(status__in=[expected] if isinstance(expected, str) else list(expected))
        fields["status"] = status
        if not rows.update(updated_at=timezone.now(), **fields):
            raise InvalidStatus(f"{type(self).__name__} {self.pk} is not {expected} any more.")
        for name, value in fields.items():
            setattr(self, name, value)


class Volume(StatusMixin, models.Model):
    class Status(models.TextChoices):
        CREATING = "creating"
        AVAILABLE = "available"
        RESERVED = "reserved"
        ATTACHING = "attaching"
        IN_USE = "in-use"
        DETACHING = "detaching"
        EXTENDING = "extending"
        DELETING = "deleting"
        ERROR = "error"
        ERROR_DELETING = "error_deleting"
        ERROR_EXTENDING = "error_extending"
        MAINTENANCE = "maintenance"
        DOWNLOADING = "downloading"
        UPLOADING = "uploading"
        RETYPING = "retyping"
        AWAITING_TRANSFER = "awaiting-transfer"
        BACKING_UP = "backing-up"
        RESTORING_BACKUP = "restoring-backup"
        ERROR_RESTORING = "error_restoring"

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    project_id = models.CharField(max_length=64, db_index=True)
    user_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255, null=True, blank=True)
    description = models.CharField(max_length=255, null=True, blank=True)
    size = models.PositiveIntegerField()
    # The size an extend in progress grows it to (claimed on its back end already).
    extend_size = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.CREATING, db_index=True)
    attach_status = models.CharField(max_length=16, default="detached")
    volume_type = models.ForeignKey(VolumeType, on_delete=models.PROTECT, related_name="volumes")
    availability_zone = models.CharField(max_length=255)
    bootable = models.BooleanField(default=False)
    # None until os-update_readonly_flag sets it: Cinder shows the flag in
    # the metadata only once it was set, as "True" or "False".
    readonly = models.BooleanField(null=True, blank=True, default=None)
    multiattach = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    # Set when the scheduler claimed space for it; None again once that
    # space is given back (a failed create, a delete).
    backend = models.ForeignKey(Backend, on_delete=models.PROTECT, null=True, blank=True, related_name="volumes")
    snapshot = models.ForeignKey("Snapshot", on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="volumes_made")
    source_volume = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True)
    image_id = models.CharField(max_length=64, null=True, blank=True)
    # A retype moving its data: the back end (its space claimed) and the
    # type it goes to; None otherwise.
    migration_backend = models.ForeignKey(Backend, on_delete=models.PROTECT, null=True, blank=True,
                                          related_name="volumes_arriving")
    migration_type = models.ForeignKey(VolumeType, on_delete=models.PROTECT, null=True, blank=True,
                                       related_name="+")
    # What a node needs to attach it, from its back end once created.
    connection_info = models.JSONField(null=True, blank=True)
    volume_image_metadata = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    launched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"volume {self.pk}"

    # Statuses that hold space, or will once created: what quota counts.
    @classmethod
    def counted(cls):
        return cls.objects.exclude(status=cls.Status.ERROR, backend__isnull=True)


class Snapshot(StatusMixin, models.Model):
    class Status(models.TextChoices):
        CREATING = "creating"
        AVAILABLE = "available"
        DELETING = "deleting"
        ERROR = "error"
        ERROR_DELETING = "error_deleting"

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    project_id = models.CharField(max_length=64, db_index=True)
    user_id = models.CharField(max_length=64)
    volume = models.ForeignKey(Volume, on_delete=models.PROTECT, related_name="snapshots")
    name = models.CharField(max_length=255, null=True, blank=True)
    description = models.CharField(max_length=255, null=True, blank=True)
    size = models.PositiveIntegerField()
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.CREATING, db_index=True)
    progress = models.CharField(max_length=8, default="0%")
    metadata = models.JSONField(default=dict, blank=True)
    # The back end whose space the snapshot holds (its volume's); None once given back.
    backend = models.ForeignKey(Backend, on_delete=models.PROTECT, null=True, blank=True, related_name="snapshots")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @classmethod
    def counted(cls):
        return cls.objects.exclude(status=cls.Status.ERROR, backend__isnull=True)


class Backup(StatusMixin, models.Model):
    """A copy of a volume's data (or of one of its snapshots) kept in the
    object store, in a container of the backup's project: a full copy, or
    an incremental one holding only the chunks changed since its parent.
    It outlives its volume."""

    class Status(models.TextChoices):
        CREATING = "creating"
        AVAILABLE = "available"
        DELETING = "deleting"
        RESTORING = "restoring"
        ERROR = "error"
        ERROR_DELETING = "error_deleting"

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    project_id = models.CharField(max_length=64, db_index=True)
    user_id = models.CharField(max_length=64)
    volume_id = models.UUIDField(db_index=True)
    snapshot_id = models.UUIDField(null=True, blank=True)
    name = models.CharField(max_length=255, null=True, blank=True)
    description = models.CharField(max_length=255, null=True, blank=True)
    container = models.CharField(max_length=255)
    # Where its objects are in the container: its chunks and its manifest
    # (`<prefix>metadata`). A backup imported from an exported record
    # names the objects of the backup it was exported from.
    object_prefix = models.CharField(max_length=512)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.CREATING, db_index=True)
    fail_reason = models.TextField(null=True, blank=True)
    size = models.PositiveIntegerField()
    object_count = models.PositiveIntegerField(default=0)
    availability_zone = models.CharField(max_length=255, null=True, blank=True)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    metadata = models.JSONField(default=dict, blank=True)
    # The back end whose worker reads the volume for the create; the
    # volume's status before it became backing-up, given back after.
    host = models.CharField(max_length=255, default="", blank=True)
    volume_previous_status = models.CharField(max_length=32, default="", blank=True)
    # The volume a restore in progress writes into.
    restore_volume_id = models.UUIDField(null=True, blank=True)
    data_timestamp = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def is_incremental(self):
        return self.parent_id is not None


    def save(self, *args, **kwargs):
        if not self.object_prefix:
            self.object_prefix = f"volume_{self.volume_id}/backup_{self.pk}/"
        super().save(*args, **kwargs)

    @classmethod
    def counted(cls):
        """What the backups quotas count: every backup but a failed one."""
        return cls.objects.exclude(status=cls.Status.ERROR)


class Attachment(models.Model):
    class Status(models.TextChoices):
        RESERVED = "reserved"
        ATTACHING = "attaching"
        ATTACHED = "attached"
        DETACHED = "detached"
        ERROR_ATTACHING = "error_attaching"

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    volume = models.ForeignKey(Volume, on_delete=models.CASCADE, related_name="attachments")
    instance_uuid = models.CharField(max_length=64, null=True, blank=True)
    attached_host = models.CharField(max_length=255, null=True, blank=True)
    mountpoint = models.CharField(max_length=255, null=True, blank=True)
    attach_mode = models.CharField(max_length=4, default="rw")
    # Nova's flag, kept here so a page of servers shows it in one query:
    # the server's delete deletes the volume too.
    delete_on_termination = models.BooleanField(default=False)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.RESERVED)
    connector = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    attach_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]


class Message(models.Model):
    """A user message (Cinder's messages API): why a request on a resource
    failed, in words the project's users may read."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    project_id = models.CharField(max_length=64, db_index=True)
    request_id = models.CharField(max_length=64, default="")
    resource_type = models.CharField(max_length=32)   # VOLUME, VOLUME_SNAPSHOT
    resource_uuid = models.CharField(max_length=64, db_index=True)
    event_id = models.CharField(max_length=32)        # VOLUME_VOLUME_001_002 and so on
    message_level = models.CharField(max_length=16, default="ERROR")
    user_message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


def record_message(resource, user_message, event_id, resource_type="VOLUME", request_id=""):
    """Leaves a user message on a volume or snapshot that failed."""
    now = timezone.now()
    return Message.objects.create(project_id=resource.project_id, resource_type=resource_type,
                                  resource_uuid=str(resource.pk), event_id=event_id, user_message=user_message,
                                  request_id=request_id, created_at=now,
                                  expires_at=now + timedelta(days=conf.MESSAGE_TTL_DAYS))


class Quota(models.Model):
    """A project's limit on one resource where it differs from the default."""

    project_id = models.CharField(max_length=64)
    resource = models.CharField(max_length=300)
    hard_limit = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project_id", "resource"], name="volumes_quota_unique")]


class QuotaClass(models.Model):
    """A limit of a quota class where it differs from volumes.conf; the
    `default` class's are every project's defaults (Cinder's
    os-quota-class-sets)."""

    class_name = models.CharField(max_length=255)
    resource = models.CharField(max_length=300)
    hard_limit = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["class_name", "resource"], name="volumes_quotaclass_unique")]


class Transfer(models.Model):
    """A volume offered to another project: whoever shows the auth key
    (kept only as a salted hash) takes it over with its snapshots."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    volume = models.OneToOneField(Volume, on_delete=models.CASCADE, related_name="transfer")
    name = models.CharField(max_length=255, null=True, blank=True)
    salt = models.CharField(max_length=32)
    key_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)


class QuotaLock(models.Model):
    """One row per project that a create locks (SELECT ... FOR UPDATE)
    while it counts the project's usage."""

    project_id = models.CharField(max_length=64, primary_key=True)


def fail(resource, message, event_id, status="error", expected=None, request_id=""):
    """Ends a volume or snapshot in `status` (error by default), gives back
    the space it claimed if it held nothing yet, and records why. Returns
    False if the row was not in `expected` any more (someone else moved it)."""
    with transaction.atomic():
        row = type(resource).objects.select_for_update().filter(pk=resource.pk).first()
        if row is None:
            return False
        if expected is not None and row.status not in ([expected] if isinstance(expected, str) else expected):
            return False
        fields = {}
        if status == "error" and row.backend_id is not None and row.status == "creating":
            release_capacity(row.backend_id, row.size)
            fields["backend"] = None
        row.set_status(status, **fields)
        kind = "VOLUME_SNAPSHOT" if isinstance(row, Snapshot) else "VOLUME"
        record_message(row, message, event_id, resource_type=kind, request_id=request_id)
    return True
