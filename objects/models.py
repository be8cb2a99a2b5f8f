"""Swift's accounts, containers and objects. Object data lives in a store
back end (objects.stores); these rows are what listings read.

Names are ordered by the database's collation, which must order by code
point (C / C.UTF-8, what `make up` creates) so that listings come in the
byte order of UTF-8, as Swift lists them."""
from django.db import models


class Account(models.Model):
    """One per project (`AUTH_<project id>`), made on its first write.
    Its counts are the sum of its AccountUsage rows."""

    project_id = models.CharField(max_length=256, primary_key=True)  # Swift allows 256 bytes
    metadata = models.JSONField(default=dict)  # lower-case name -> value (X-Account-Meta-<name>)
    # Swift's account quotas set by a reseller admin (X-Account-Quota-Bytes / -Count); the
    # older X-Account-Meta-Quota-Bytes is metadata, used when quota_bytes is not set.
    quota_bytes = models.BigIntegerField(null=True, blank=True)
    quota_count = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


class Container(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="containers")
    name = models.CharField(max_length=256)
    metadata = models.JSONField(default=dict)  # lower-case name -> value (X-Container-Meta-<name>)
    read_acl = models.TextField(default="", blank=True)
    write_acl = models.TextField(default="", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="objects_container_name")]


class ContainerUsage(models.Model):
    """A share of a container's counts. Each writer adds its changes to the
    share row of its own process and thread (objects.usage), in the
    transaction that changes the object, so concurrent writers do not wait
    on one row and the sum of the shares is always exact."""

    container = models.ForeignKey(Container, on_delete=models.CASCADE, related_name="usage")
    shard = models.SmallIntegerField()
    object_count = models.BigIntegerField(default=0)
    bytes_used = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["container", "shard"], name="objects_container_usage_shard")]


class AccountUsage(models.Model):
    """A share of an account's counts, kept as ContainerUsage is."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="usage")
    shard = models.SmallIntegerField()
    container_count = models.BigIntegerField(default=0)
    object_count = models.BigIntegerField(default=0)
    bytes_used = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "shard"], name="objects_account_usage_shard")]


class Object(models.Model):
    """An object's facts. `data_key` names its data in the store (a new key
    for every write, so a reader of the old version never sees the new
    one half-written); a large-object manifest has none."""

    container = models.ForeignKey(Container, on_delete=models.CASCADE, related_name="contents")
    name = models.CharField(max_length=1024)
    size = models.BigIntegerField()
    etag = models.CharField(max_length=64)
    content_type = models.TextField()  # as long as a header may be
    # X-Object-Meta-* (lower-case name -> value) and the other headers an
    # object keeps: Content-Disposition, Content-Encoding.
    metadata = models.JSONField(default=dict)
    headers = models.JSONField(default=dict)
    data_key = models.CharField(max_length=64, blank=True, default="")
    last_modified = models.DateTimeField()
    delete_at = models.BigIntegerField(null=True, blank=True, db_index=True)  # unix time (X-Delete-At)
    # Static large object: its segments [{"container", "name", "etag", "size"}].
    slo_segments = models.JSONField(null=True, blank=True)
    # Dynamic large object: "container/prefix" of its segments (X-Object-Manifest).
    dlo_manifest = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["container", "name"], name="objects_object_name")]


class MultipartUpload(models.Model):
    """An S3 multipart upload in progress: what the completed object will
    be named and carry. Its parts' data is freed when it is completed,
    aborted, or left unfinished past the reaper's age."""

    id = models.CharField(max_length=32, primary_key=True)
    container = models.ForeignKey(Container, on_delete=models.CASCADE, related_name="uploads")
    name = models.CharField(max_length=1024)
    content_type = models.TextField()
    metadata = models.JSONField(default=dict)
    headers = models.JSONField(default=dict)
    initiated_at = models.DateTimeField(db_index=True)


class UploadPart(models.Model):
    upload = models.ForeignKey(MultipartUpload, on_delete=models.CASCADE, related_name="parts")
    number = models.IntegerField()
    size = models.BigIntegerField()
    etag = models.CharField(max_length=32)
    data_key = models.CharField(max_length=64)
    last_modified = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["upload", "number"], name="objects_upload_part_number")]
