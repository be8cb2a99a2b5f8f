"""Image data in and out.

An upload streams from the request into a store chunk by chunk, never whole
in memory; size, md5 `checksum` and sha512 `os_hash_value` are computed on
the way and the project's quota is checked with every chunk; the format
inspector reads it on the way too (images.inspection). Only when the store
holds all of it, the inspector and then `qemu-img` agree it is the declared
disk format and it refers to no file outside itself, does the image become
active; any failure leaves the image `queued` and nothing in the store."""
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce

from cloud.errors import ApiError, BadRequest, Conflict, OverLimit
from images import inspection, stores
from images.models import (
    ACTIVE, DEACTIVATED, IMPORTING, QUEUED, SAVING, UPLOADING, Image, ImageLocation, ImageQuotaLock, InvalidTransition)

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
# What an upload of unknown length (chunked) reserves against the quota at a time.
RESERVE_STEP = 64 * CHUNK_SIZE
HASH_ALGO = "sha512"
# disk_format -> qemu-img's name for it; other formats are kept as given.
QEMU_FORMATS = {"qcow2": "qcow2", "raw": "raw", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx"}


class StorageFull(ApiError):
    status = 413


def request_chunks(request, chunk_size=CHUNK_SIZE):
    """The request body as chunks. With Content-Length the body must be
    complete; with chunked transfer encoding the server de-chunks it and
    signals the end (Django would see no body at all without a length)."""
    meta = request.META
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() or not meta.get("CONTENT_LENGTH")
    stream = meta["wsgi.input"] if chunked else request
    expected = None if chunked else int(meta["CONTENT_LENGTH"])
    received = 0
    while True:
        try:
            chunk = stream.read(chunk_size)
        except Exception as error:  # the client went away mid-body
            raise BadRequest(f"The image data upload was interrupted: {error or type(error).__name__}.")
        if not chunk:
            break
        received += len(chunk)
        yield chunk
    if expected is not None and received != expected:
        raise BadRequest(f"The image data upload was interrupted after {received} of {expected} bytes.")


def content_length(request):
    value = request.META.get("CONTENT_LENGTH")
    if not value or "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"Invalid Content-Length header: {value!r}.")


class Measured:
    """Passes chunks through, counting and hashing them, and has
    `reservation` cover every byte before it goes on (which stops the
    stream once it would pass the quota).

    md5 and sha512 are the slow part of an upload (each slower than the
    disk), so each runs in its own thread (hashlib lets go of the GIL) while
    the store writes the same chunk; a chunk's hashing finishes before the
    next chunk's starts, which keeps each hash in order and at most two
    chunks in memory."""

    def __init__(self, chunks, reservation):
        self.chunks, self.reservation = chunks, reservation
        self.size = 0
        self.format_check = inspection.FormatCheck()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.os_hash = hashlib.new(HASH_ALGO)

    def __iter__(self):
        pending = ()
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="image-hash") as hashers:
            for chunk in self.chunks:
                self.size += len(chunk)
                self.reservation.cover(self.size)
                for hashing in pending:
                    hashing.result()
                pending = (hashers.submit(self.md5.update, chunk), hashers.submit(self.os_hash.update, chunk))
                self.format_check.feed(chunk)
                yield chunk
            for hashing in pending:
                hashing.result()


def quota_exceeded(remaining):
    return OverLimit(f"Denying attempt to upload image because it exceeds the quota: the project may store "
                     f"{settings.IMAGE_QUOTA_BYTES} bytes of image data and has {max(remaining, 0)} bytes left.")


def quota_remaining(image):
    """Bytes the image's project may still store besides this image: the
    quota less its other images' data and the bytes their uploads hold.
    Only exact under the project's lock (lock_project)."""
    used = (Image.objects.filter(owner=image.owner, status__in=(SAVING, UPLOADING, IMPORTING, ACTIVE, DEACTIVATED))
            .exclude(pk=image.pk).aggregate(total=Sum(Coalesce("size", "upload_reserved", 0)))["total"] or 0)
    return settings.IMAGE_QUOTA_BYTES - used


def lock_project(project_id):
    """Takes the project's image quota lock until the transaction ends."""
    key = project_id or ""
    ImageQuotaLock.objects.bulk_create([ImageQuotaLock(project_id=key)], ignore_conflicts=True)
    ImageQuotaLock.objects.select_for_update().filter(project_id=key).first()


class Reservation:
    """The bytes an upload holds against its project's quota, taken under
    the project's lock so that concurrent uploads never hold more than the
    quota together: all of Content-Length when the length is known, else
    RESERVE_STEP more at a time as the data comes. It ends with the upload
    (the image's size counts instead, or nothing when it failed).

    `working` is the image's status while the data moves: saving for an
    upload, uploading while it is staged, importing while an import stores
    it (an image already in that status just renews its reservation)."""

    def __init__(self, image, working=SAVING):
        self.image, self.working = image, working
        self.reserved = 0
        self.alive_shown = time.monotonic()

    def start(self, length):
        """Moves the image to its working status holding its first bytes;
        413 when they do not fit, 409 when the image cannot take data now."""
        with transaction.atomic():
            lock_project(self.image.owner)
            remaining = quota_remaining(self.image)
            if length is not None and length > remaining:
                raise quota_exceeded(remaining)
            wanted = length if length is not None else min(RESERVE_STEP, max(remaining, 0))
            fields = {"upload_reserved": wanted, "upload_seen_at": timezone.now()}
            if self.image.status == self.working:
                started = Image.objects.filter(pk=self.image.pk, status=self.working).update(**fields)
            else:
                try:
                    started = self.image.set_status(self.working, **fields)
                except InvalidTransition as error:
                    raise Conflict(str(error))
            if not started:
                now = Image.objects.filter(pk=self.image.pk).values_list("status", flat=True).first()
                raise Conflict(f"Image {self.image.id} changed status while the upload started; it is now "
                               f"{now or 'deleted'}.")
        self.reserved = wanted

    def cover(self, size):
        """Makes sure `size` bytes are held; 413 when the quota has no room.
        Every few seconds it also shows the reaper the upload is alive."""
        if time.monotonic() - self.alive_shown > upload_heartbeat():
            self.alive_shown = time.monotonic()
            if not Image.objects.filter(pk=self.image.pk, status=self.working).update(upload_seen_at=timezone.now()):
                raise Conflict(f"Image {self.image.id} was deleted or changed while its data was uploaded.")
        if size <= self.reserved:
            return
        with transaction.atomic():
            lock_project(self.image.owner)
            remaining = quota_remaining(self.image)
            if size > remaining:
                raise quota_exceeded(remaining)
            wanted = min(max(size, self.reserved + RESERVE_STEP), remaining)
            if not Image.objects.filter(pk=self.image.pk, status=self.working).update(upload_reserved=wanted):
                raise Conflict(f"Image {self.image.id} was deleted or changed while its data was uploaded.")
        self.reserved = wanted


def qemu_info(path, qemu_format):
    """qemu-img's facts about the data read as `qemu_format`, or None when
    it is not in that format; 503 when qemu-img cannot read it at all."""
    returncode, info, _ = inspection.qemu_img_info(path, qemu_format)
    if returncode == 0:
        return info
    readable, _, error = inspection.qemu_img_info(path, "raw")
    if readable != 0:
        raise ApiError(f"The image data cannot be inspected: {error}", status=503)
    return None


def virtual_size(store, url, disk_format, size, check):
    """The disk's size as a guest sees it. Data that is not what its
    disk_format says, or that refers to anything outside itself (a backing
    file, external data file or VMDK extent could read the host's files),
    is refused: by the format inspector that read it on the way in (`check`),
    and then by qemu-img, which reads it as no other format."""
    try:
        check.verdict(disk_format, size)
    except inspection.UnsafeImage as error:
        raise BadRequest(f"Invalid input for field 'disk_format': {error}")
    qemu_format = QEMU_FORMATS.get(disk_format)
    if disk_format in ("raw", "iso"):
        return size
    if qemu_format is None:
        return None
    info = qemu_info(store.qemu_path(url), qemu_format)
    if info is None:
        raise BadRequest(f"Invalid input for field 'disk_format': the image data is not in the {disk_format} format.")
    data_file = info.get("format-specific", {}).get("data", {}).get("data-file")
    if info.get("backing-filename") or data_file:
        raise BadRequest(f"Invalid input for field 'disk_format': a {disk_format} image with a backing or "
                         "external data file is not allowed.")
    if info.get("virtual-size", 0) > settings.IMAGE_MAX_VIRTUAL_SIZE:
        raise BadRequest(f"Invalid input for field 'disk_format': the image's virtual size of "
                         f"{info['virtual-size']} bytes is larger than the {settings.IMAGE_MAX_VIRTUAL_SIZE} "
                         "bytes allowed.")
    return info.get("virtual-size")


def upload(image, chunks, store, length=None):
    """Streams `chunks` into `store` as the image's data; the image ends
    active, or back in queued with nothing stored."""
    if not image.disk_format or not image.container_format:
        raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
    reservation = Reservation(image)
    reservation.start(length)
    url = None
    try:
        measured = Measured(chunks, reservation)
        url = store_chunks(store, image.id, measured)
        fields = checked_fields(store, url, image.disk_format, measured)
        with transaction.atomic():
            current = Image.objects.select_for_update().filter(pk=image.pk).first()
            if current is None or current.status != SAVING:
                raise Conflict(f"Image {image.id} was deleted or changed while its data was uploaded.")
            ImageLocation.objects.update_or_create(image=current, store=store.id, defaults={"url": url})
            current.set_status(ACTIVE, **fields)
        image.refresh_from_db()
    except BaseException:
        if url is not None:
            store.delete(url)
        image.set_status(QUEUED, upload_reserved=None, upload_seen_at=None)
        raise


def store_chunks(store, image_id, chunks):
    """store.add, its failures as the API's errors (413 full, 503 else)."""
    try:
        return store.add(image_id, chunks)
    except stores.StoreFull as error:
        raise StorageFull(str(error))
    except stores.StoreError as error:
        raise ApiError(str(error), status=503)


def checked_fields(store, url, disk_format, measured):
    """The image fields of data `measured` on its way to `url`: size,
    hashes and virtual size, once the data passed the format checks."""
    return {
        "size": measured.size, "checksum": measured.md5.hexdigest(),
        "os_hash_algo": HASH_ALGO, "os_hash_value": measured.os_hash.hexdigest(),
        "virtual_size": virtual_size(store, url, disk_format, measured.size, measured.format_check),
        "upload_reserved": None, "upload_seen_at": None,
    }


def upload_heartbeat():
    """Seconds between an upload's signs of life: several per stale period."""
    return min(30, settings.IMAGE_UPLOAD_STALE_AFTER / 4)


def reap_stalled_uploads(stale_after=None):
    """Periodic (workers/schedule.py): an upload silent for `stale_after`
    seconds (default settings.IMAGE_UPLOAD_STALE_AFTER) died with its API
    process; its image goes back to queued, holding no quota, and its
    partial data is removed from the stores, so the owner can upload again.
    Returns the ids of the images reaped."""
    stale_after = settings.IMAGE_UPLOAD_STALE_AFTER if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    reaped = []
    # Uploads from before uploads showed life have only their start time.
    silent = Q(upload_seen_at__lt=cutoff) | Q(upload_seen_at__isnull=True, updated_at__lt=cutoff)
    for image in Image.objects.filter(silent, status=SAVING):
        # Compare-and-swap: an upload that showed life meanwhile is not reaped.
        last_seen = Q(upload_seen_at=image.upload_seen_at) if image.upload_seen_at else Q(upload_seen_at__isnull=True)
        back = Image.objects.filter(last_seen, pk=image.pk, status=SAVING, updated_at=image.updated_at).update(
            status=QUEUED, upload_reserved=None, upload_seen_at=None, updated_at=timezone.now())
        if not back:
            continue
        for store in stores.enabled().values():
            try:
                store.discard_partial(image.id, cutoff)
            except stores.StoreError:
                log.exception("Could not remove the partial data of image %s from store %s", image.id, store.id)
        log.warning("Image %s: its upload stopped sending data before %s; it is queued again", image.id, cutoff)
        reaped.append(image.id)
    return reaped


def open_data(image):
    """A file object over an active image's data, from the default store
    when it has a copy there."""
    locations = {location.store: location for location in image.locations.all()}
    for store_id, store in stores.enabled().items():
        if store_id in locations:
            try:
                return store.open(locations[store_id].url)
            except stores.StoreError as error:
                raise ApiError(f"The data of image {image.id} is unavailable: {error}", status=503)
    raise ApiError(f"The data of image {image.id} is in no enabled store.", status=503)


def data_in_use(locations):
    """Whether a store says something outside the image service still
    depends on the data of these [(store id, url)] (a volume cloned from
    it), so the image cannot be deleted."""
    for store_id, url in locations:
        store = stores.get(store_id)
        if store is not None:
            try:
                if store.in_use(url):
                    return True
            except stores.StoreError as error:
                raise ApiError(f"Cannot tell whether the image's data is in use: {error}", status=503)
    return False


def delete_data(locations):
    """Removes stored data of deleted images; [(store id, url)]."""
    for store_id, url in locations:
        store = stores.get(store_id)
        try:
            if store is not None:
                store.delete(url)
        except Exception:  # after the commit: nothing may reach the client as a 500
            # The image is gone either way; the data is only an orphan now.
            log.exception("Could not remove image data at %s", url)
