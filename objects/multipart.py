"""Multipart uploads (S3's): parts are stored as data of their own, each
with a row; completing an upload streams the parts, in the order the client
lists them, into one new piece of data for the object, and frees the parts.
An aborted upload, or one left unfinished past `STALE_UPLOAD_SECONDS`,
frees its parts' data too."""
import hashlib
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction

from objects import data
from objects.models import MultipartUpload, UploadPart

MIN_PART_SIZE = 5 * 2**20  # every part but the last
MAX_PART_NUMBER = 10000
STALE_UPLOAD_SECONDS = 7 * 24 * 3600
MAX_OBJECT_SIZE = 5 * 2**40  # S3's largest object, made of parts


class NoSuchUpload(Exception):
    pass


def start(container, name, content_type, metadata, headers):
    return MultipartUpload.objects.create(id=uuid.uuid4().hex, container=container, name=name,
                                          content_type=content_type, metadata=metadata, headers=headers,
                                          initiated_at=data.current_time())


def find(container, name, upload_id):
    upload = MultipartUpload.objects.filter(id=upload_id, container=container, name=name).first()
    if upload is None:
        raise NoSuchUpload()
    return upload


def put_part(upload, number, key, size, etag):
    """Records a stored part, replacing the part of that number (whose
    data is then freed); NoSuchUpload when the upload went meanwhile."""
    with transaction.atomic():
        if MultipartUpload.objects.select_for_update().filter(pk=upload.pk).first() is None:
            data.discard_data(key)
            raise NoSuchUpload()
        previous = UploadPart.objects.filter(upload=upload, number=number).first()
        fields = {"size": size, "etag": etag, "data_key": key, "last_modified": data.current_time()}
        if previous is not None:
            old_key = previous.data_key
            UploadPart.objects.filter(pk=previous.pk).update(**fields)
            transaction.on_commit(lambda: data.discard_data(old_key))
        else:
            try:
                with transaction.atomic():
                    UploadPart.objects.create(upload=upload, number=number, **fields)
            except IntegrityError:  # the same number uploaded concurrently: the last one wins
                old_key = UploadPart.objects.get(upload=upload, number=number).data_key
                UploadPart.objects.filter(upload=upload, number=number).update(**fields)
                transaction.on_commit(lambda: data.discard_data(old_key))
    return fields


def multipart_etag(etags):
    """S3's ETag of a multipart object: the MD5 of the parts' binary MD5s, "-N"."""
    digest = hashlib.md5(b"".join(bytes.fromhex(etag) for etag in etags), usedforsecurity=False)
    return f"{digest.hexdigest()}-{len(etags)}"


def remove(upload_id):
    """Drops the upload and frees its parts' data: False when it was gone."""
    with transaction.atomic():
        upload = MultipartUpload.objects.select_for_update().filter(pk=upload_id).first()
        if upload is None:
            return False
        keys = list(UploadPart.objects.filter(upload=upload).values_list("data_key", flat=True))
        upload.delete()
        transaction.on_commit(lambda: data.discard_data(*keys))
    return True


def reap_stale(older_than_seconds=STALE_UPLOAD_SECONDS, batch=1000):
    """Aborts uploads started longer ago than that (the periodic task
    objects.tasks.reap_stale_uploads); returns how many."""
    cutoff = data.current_time() - timedelta(seconds=older_than_seconds)
    ids = list(MultipartUpload.objects.filter(initiated_at__lt=cutoff).order_by("initiated_at")
               .values_list("id", flat=True)[:batch])
    return sum(1 for upload_id in ids if remove(upload_id))


def complete(upload, container, name, fields):
    """Writes the object from the parts' data already joined into
    `fields["data_key"]` and drops the upload, in one transaction (so two
    completions cannot both win); the parts' data is then freed."""
    with transaction.atomic():
        if MultipartUpload.objects.select_for_update().filter(pk=upload.pk).first() is None:
            raise NoSuchUpload()
        row = data.commit_object(container, name, fields)
        keys = list(UploadPart.objects.filter(upload=upload).values_list("data_key", flat=True))
        MultipartUpload.objects.filter(pk=upload.pk).delete()
        transaction.on_commit(lambda: data.discard_data(*keys))
    return row
