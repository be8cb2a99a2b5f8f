"""Images: the record (Glance's image), where its data lives (one location
per store), its tags and the projects it is shared with."""
import uuid

from django.db import models
from django.utils import timezone

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
MEMBER_STATUSES = ("pending", "accepted", "rejected")

QUEUED, SAVING, UPLOADING, IMPORTING, ACTIVE, KILLED, DELETED, DEACTIVATED = (
    "queued", "saving", "uploading", "importing", "active", "killed", "deleted", "deactivated")

# Which status may follow which. `saving` falls back to `queued` when an
# upload fails, so the owner can simply try again. The interoperable import:
# `uploading` while data is (or sits) in the staging area, `importing` while
# a worker moves it (or a download) into the stores; a failure ends queued.
TRANSITIONS = {
    QUEUED: {SAVING, UPLOADING, IMPORTING, DELETED},
    SAVING: {ACTIVE, QUEUED, KILLED, DELETED},
    UPLOADING: {IMPORTING, QUEUED, DELETED},
    IMPORTING: {ACTIVE, QUEUED, DELETED},
    ACTIVE: {DEACTIVATED, DELETED},
    DEACTIVATED: {ACTIVE, DELETED},
    KILLED: {DELETED},
    DELETED: set(),
}


def new_image_id():
    return str(uuid.uuid4())


def _choices(values):
    return [(value, value) for value in values]


class InvalidTransition(Exception):
    def __init__(self, image, new_status):
        super().__init__(f"Image status transition from {image.status} to {new_status} is not allowed.")


class ImageQuerySet(models.QuerySet):
    @staticmethod
    def shared_with_q(project_id, statuses=MEMBER_STATUSES):
        """Condition: visibility `shared` and the project is a member, by
        its membership status."""
        return models.Q(visibility="shared", id__in=ImageMember.objects.filter(
            member=project_id, status__in=statuses).values("image_id"))

    def visible_to(self, project_id):
        """What a project may see and use (show, download, boot): its own
        images, public and community ones, and those shared with it
        whatever it answered. None: every image (an administrator)."""
        if project_id is None:
            return self
        return self.filter(models.Q(owner=project_id) | models.Q(visibility__in=("public", "community"))
                           | self.shared_with_q(project_id))


class Image(models.Model):
    id = models.CharField(max_length=36, primary_key=True, default=new_image_id)
    name = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=_choices(TRANSITIONS), default=QUEUED, db_index=True)
    disk_format = models.CharField(max_length=16, choices=_choices(DISK_FORMATS), null=True, blank=True)
    container_format = models.CharField(max_length=16, choices=_choices(CONTAINER_FORMATS), null=True, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    # While an upload runs (status saving), the bytes it holds against the
    # owner's image quota; the size replaces it once the data is stored.
    upload_reserved = models.BigIntegerField(null=True, blank=True)
    # When a running upload last showed it is alive (data kept coming); an
    # upload silent for settings.IMAGE_UPLOAD_STALE_AFTER died with its
    # API process, and the reaper (images.data.reap_stalled_uploads) undoes it.
    upload_seen_at = models.DateTimeField(null=True, blank=True)
    virtual_size = models.BigIntegerField(null=True, blank=True)
    checksum = models.CharField(max_length=32, null=True, blank=True)
    os_hash_algo = models.CharField(max_length=64, null=True, blank=True)
    os_hash_value = models.CharField(max_length=128, null=True, blank=True)
    visibility = models.CharField(max_length=16, choices=_choices(VISIBILITIES), default="shared", db_index=True)
    protected = models.BooleanField(default=False)
    os_hidden = models.BooleanField(default=False)
    min_disk = models.PositiveIntegerField(default=0)
    min_ram = models.PositiveIntegerField(default=0)
    owner = models.CharField(max_length=64, null=True, blank=True, db_index=True)  # project id
    # Custom properties (os_distro, hw_disk_bus...): string values, as Glance keeps them.
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self):
        return f"{self.name or '(no name)'} ({self.id})"

    def set_status(self, new_status, **fields):
        """Moves the image to `new_status` if it is still in the status this
        object holds (compare-and-swap). False when another request changed
        it first; InvalidTransition when the move is not allowed at all."""
        if new_status not in TRANSITIONS[self.status]:
            raise InvalidTransition(self, new_status)
        now = timezone.now()
        changed = Image.objects.filter(pk=self.pk, status=self.status).update(
            status=new_status, updated_at=now, **fields)
        if changed:
            self.status, self.updated_at = new_status, now
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(changed)


class ImageTag(models.Model):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="tags")
    value = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "value"], name="image_tag_unique")]
        indexes = [models.Index(fields=["value"])]

    def __str__(self):
        return self.value


class ImageLocation(models.Model):
    """Where a store keeps the image's data: `url` is the store's own
    address of it (file:///..., rbd://...)."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="locations")
    store = models.CharField(max_length=64)
    url = models.CharField(max_length=2048)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "store"], name="image_location_store_unique")]

    def __str__(self):
        return self.url


class ImageMember(models.Model):
    """A project an image (visibility `shared`) is shared with; the member
    project accepts or rejects it."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="members")
    member = models.CharField(max_length=64, db_index=True)  # project id
    status = models.CharField(max_length=16, choices=_choices(MEMBER_STATUSES), default="pending")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "member"], name="image_member_unique")]

    def __str__(self):
        return f"{self.member} ({self.status})"


class ImageQuotaLock(models.Model):
    """One row per project that an upload locks (SELECT ... FOR UPDATE)
    while it counts the project's image data and reserves its own bytes, so
    concurrent uploads of one project are counted one after the other.
    Usage itself is counted from the images, never stored twice."""

    project_id = models.CharField(max_length=64, primary_key=True)


TASK_STATUSES = PENDING, PROCESSING, SUCCESS, FAILURE = ("pending", "processing", "success", "failure")


class ImageTask(models.Model):
    """An import of an image (Glance's task of type `api_image_import`):
    what was asked (`input`), how far it got and how it ended. It outlives
    the image, as Glance's tasks do, until `expires_at`."""

    id = models.CharField(max_length=36, primary_key=True, default=new_image_id)
    type = models.CharField(max_length=32, default="api_image_import")
    status = models.CharField(max_length=16, choices=_choices(TASK_STATUSES), default=PENDING)
    image_id = models.CharField(max_length=36, db_index=True)
    owner = models.CharField(max_length=64, null=True, blank=True, db_index=True)  # project id
    user_id = models.CharField(max_length=64, null=True, blank=True)
    request_id = models.CharField(max_length=64, null=True, blank=True)
    input = models.JSONField(default=dict)
    result = models.JSONField(null=True, blank=True)
    message = models.TextField(default="", blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self):
        return f"{self.type} {self.id} ({self.status})"


# Metadata definitions (Glance's metadefs): a catalog of the properties,
# groups of properties (objects) and tags that images, volumes, flavors...
# may carry, in namespaces owned by a project, public or private.
METADEF_VISIBILITIES = ("public", "private")
METADEF_NAME_LENGTH = 80
# Glance's standard resource types: what namespaces are associated with.
STANDARD_RESOURCE_TYPES = ("OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor",
                           "OS::Nova::Aggregate", "OS::Nova::Server", "OS::Trove::Instance")


class MetadefNamespaceQuerySet(models.QuerySet):
    def visible_to(self, project_id):
        """Public namespaces and the project's own private ones; None:
        every namespace (an administrator)."""
        if project_id is None:
            return self
        return self.filter(models.Q(visibility="public") | models.Q(owner=project_id))


class MetadefNamespace(models.Model):
    namespace = models.CharField(max_length=METADEF_NAME_LENGTH, unique=True)
    display_name = models.CharField(max_length=METADEF_NAME_LENGTH, null=True, blank=True)
    description = models.CharField(max_length=500, null=True, blank=True)
    visibility = models.CharField(max_length=16, choices=_choices(METADEF_VISIBILITIES), default="private")
    protected = models.BooleanField(default=False)
    owner = models.CharField(max_length=255, db_index=True)  # project id
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = MetadefNamespaceQuerySet.as_manager()

    def __str__(self):
        return self.namespace


class MetadefResourceType(models.Model):
    name = models.CharField(max_length=METADEF_NAME_LENGTH, unique=True)
    protected = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.name


class MetadefResourceTypeAssociation(models.Model):
    """A namespace applies to a resource type; `prefix` is put before its
    property names on that resource (hw_ on an image), `properties_target`
    says where on the resource they go (a volume's image metadata...)."""

    namespace = models.ForeignKey(MetadefNamespace, on_delete=models.CASCADE, related_name="resource_types")
    resource_type = models.ForeignKey(MetadefResourceType, on_delete=models.PROTECT, related_name="associations")
    prefix = models.CharField(max_length=METADEF_NAME_LENGTH, null=True, blank=True)
    properties_target = models.CharField(max_length=METADEF_NAME_LENGTH, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "resource_type"],
                                               name="metadef_association_unique")]


class MetadefObject(models.Model):
    """A named group of property definitions (`properties`, in the shape of
    MetadefProperty.schema, keyed by name), some of them `required`."""

    namespace = models.ForeignKey(MetadefNamespace, on_delete=models.CASCADE, related_name="metadef_objects")
    name = models.CharField(max_length=METADEF_NAME_LENGTH)
    description = models.TextField(null=True, blank=True)
    required = models.JSONField(null=True, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="metadef_object_unique")]


class MetadefProperty(models.Model):
    """A property definition: `schema` holds its JSON-schema-like attributes
    (title, type, enum, minimum...) as the client gave them, without name."""

    namespace = models.ForeignKey(MetadefNamespace, on_delete=models.CASCADE, related_name="metadef_properties")
    name = models.CharField(max_length=METADEF_NAME_LENGTH)
    schema = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="metadef_property_unique")]


class MetadefTag(models.Model):
    namespace = models.ForeignKey(MetadefNamespace, on_delete=models.CASCADE, related_name="metadef_tags")
    name = models.CharField(max_length=METADEF_NAME_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="metadef_tag_unique")]
