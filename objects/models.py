"""Swift's accounts, containers and objects. Object data lives in a store
back end (objects.stores); these rows are what listings read.

Names are ordered by the database's collation, which must order by code
point (C / C.UTF-8, what `make up` creates) so that listings come in the
byte order of UTF-8, as Swift lists them."""
from django.db import models


class Account(models.Model):
    """One per project (`AUTH_<project id>`), made on its first write.
    The counts are kept by the same transactions that change containers
    and objects (atomic `F()` updates), so they never drift."""

    project_id = models.CharField(max_length=256, primary_key=True)  # Swift allows 256 bytes
    container_count = models.BigIntegerField(default=0)
    object_count = models.BigIntegerField(default=0)
    bytes_used = models.BigIntegerField(default=0)
    metadata = models.JSONField(default=dict)  # lower-case name -> value (X-Account-Meta-<name>)
    created_at = models.DateTimeField(auto_now_add=True)


class Container(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="containers")
    name = models.CharField(max_length=256)
    object_count = models.BigIntegerField(default=0)
    bytes_used = models.BigIntegerField(default=0)
    metadata = models.JSONField(default=dict)  # lower-case name -> value (X-Container-Meta-<name>)
    read_acl = models.TextField(default="", blank=True)
    write_acl = models.TextField(default="", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="objects_container_name")]


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
