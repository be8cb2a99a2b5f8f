"""Image data in and out.

An upload streams from the request into a store chunk by chunk, never whole
in memory; size, md5 `checksum` and sha512 `os_hash_value` are computed on
the way and the project's quota is checked with every chunk; the format
inspector reads it on the way too (images.inspection). Only when the store
holds all of it, the inspector and then `qemu-img` agree it is the declared
disk format and it refers to no file outside itself, does the image become
active; any failure leaves the image `queued` and nothing in the store."""
import hashlib
import io
import logging
import mmap
import queue
import socket
import threading
import time
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


class RequestBody:
    """The request body as a reader: readinto(buffer) fills it from the
    body (0 at its end). With Content-Length the body must be complete (a
    short one is a 400); with chunked transfer encoding the server de-chunks
    it and signals the end (Django would see no body at all without a
    length).

    Under gunicorn the body is read into the caller's buffer from the socket
    itself (a body of known length) or from gunicorn's de-chunker: its
    reader copies every piece through a BytesIO several times, which cost a
    third of an upload's CPU. Between two reads gunicorn's own reader is
    left knowing what is still unread, so that it drains the rest of a body
    the upload refused before the connection's next request."""

    def __init__(self, request):
        meta = request.META
        chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() or not meta.get("CONTENT_LENGTH")
        self.expected = None if chunked else int(meta["CONTENT_LENGTH"])
        self.received = 0
        self.stream = meta["wsgi.input"] if chunked else request
        self.gunicorn = _gunicorn_reader(meta["wsgi.input"], self.expected)

    def readinto(self, buffer):
        """Bytes put at the start of `buffer` (a writable memoryview): as
        many as fit, short only at the end of the body."""
        try:
            if self.gunicorn is None:
                filled = self._read_stream(buffer)
            elif self.expected is None:
                filled = self._read_chunks(buffer)
            else:
                filled = self._read_socket(buffer)
        except Exception as error:  # the client went away mid-body
            raise BadRequest(f"The image data upload was interrupted: {error or type(error).__name__}.")
        self.received += filled
        if not filled and self.expected is not None and self.received != self.expected:
            raise BadRequest(f"The image data upload was interrupted after {self.received} of "
                             f"{self.expected} bytes.")
        return filled

    def _read_stream(self, buffer):
        filled = 0
        while filled < len(buffer):
            wanted = len(buffer) - filled
            if self.expected is not None:
                wanted = min(wanted, self.expected - self.received - filled)
            piece = self.stream.read(min(wanted, CHUNK_SIZE)) if wanted > 0 else b""
            if not piece:
                break
            buffer[filled:filled + len(piece)] = piece
            filled += len(piece)
        return filled

    def _read_socket(self, buffer):
        reader = self.gunicorn
        wanted = min(len(buffer), reader.length)
        filled = 0
        ahead = reader.unreader.take_buffered()  # what gunicorn read after the headers
        if ahead:
            filled = min(len(ahead), wanted)
            buffer[:filled] = memoryview(ahead)[:filled]
            if filled < len(ahead):
                reader.unreader.unread(ahead[filled:])
        while filled < wanted:
            # MSG_WAITALL: one wakeup per buffer, not one per TCP segment.
            count = reader.unreader.sock.recv_into(buffer[filled:wanted], wanted - filled, socket.MSG_WAITALL)
            if not count:
                break
            filled += count
        reader.length -= filled
        return filled

    def _read_chunks(self, buffer):
        reader = self.gunicorn
        filled = 0
        pending = reader.buf.getvalue()  # left by the previous read (or by gunicorn)
        reader.buf = io.BytesIO()
        while filled < len(buffer):
            if not pending:
                if reader.parser is None:
                    break
                try:
                    pending = next(reader.parser)
                except StopIteration:
                    reader.parser = None
                    break
            count = min(len(pending), len(buffer) - filled)
            buffer[filled:filled + count] = memoryview(pending)[:count]
            pending = memoryview(pending)[count:]
            filled += count
        if pending:
            reader.buf.write(pending)
        return filled


def _gunicorn_reader(wsgi_input, length):
    """gunicorn's reader of the request body (its length or its chunks),
    which RequestBody reads from itself; None under any other server."""
    try:
        from gunicorn.http.body import Body, ChunkedReader, LengthReader
        from gunicorn.http.unreader import SocketUnreader
    except ImportError:
        return None
    reader = getattr(wsgi_input, "reader", None)
    if not isinstance(wsgi_input, Body) or wsgi_input.buf.tell():
        return None
    if length is None and isinstance(reader, ChunkedReader) and not reader.buf.tell():
        return reader
    if isinstance(reader, LengthReader) and isinstance(reader.unreader, SocketUnreader) and reader.length == length:
        return reader
    return None


def request_chunks(request, chunk_size=CHUNK_SIZE):
    """The request body as chunks (bytearrays) of `chunk_size`."""
    body = RequestBody(request)
    while True:
        buffer = bytearray(chunk_size)
        count = body.readinto(memoryview(buffer))
        if not count:
            return
        del buffer[count:]
        yield buffer


def content_length(request):
    value = request.META.get("CONTENT_LENGTH")
    if not value or "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"Invalid Content-Length header: {value!r}.")


class _Hasher(threading.Thread):
    """Updates one hash with every chunk queued to it, in order, handing
    each back on `done` (hashlib lets go of the GIL on large buffers, so
    both hashes, the read and the store's write run at once)."""

    def __init__(self, hash_object, done):
        super().__init__(name=f"image-hash-{hash_object.name}", daemon=True)
        self.hash, self.done = hash_object, done
        self.queue = queue.SimpleQueue()
        self.error = None

    def run(self):
        while (chunk := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.hash.update(chunk)
                except BaseException as error:  # noqa: BLE001  (raised in the request's thread)
                    self.error = error
            self.done.put(chunk)


class _Filler(threading.Thread):
    """Reads a reader into a few free buffers ahead of the store, handing
    each filled one to the hashers and on `ready`; a buffer is free again
    once the hashers and the store each gave it back on `done`."""

    def __init__(self, source, hashers, done, buffer_size, buffers):
        super().__init__(name="image-read", daemon=True)
        self.source, self.hashers, self.done = source, hashers, done
        self.buffer_size, self.buffers = buffer_size, buffers
        self.ready = queue.SimpleQueue()
        self.stopping = False

    def run(self):
        # mmap: page-aligned, and its memory goes back to the system after.
        free = [memoryview(mmap.mmap(-1, self.buffer_size)) for _ in range(self.buffers)]
        holders = {}  # id of a buffer -> how many have not given it back yet
        try:
            while not self.stopping:
                while not free and not self.stopping:
                    chunk = self.done.get()
                    if chunk is not None:  # None: stop() while every buffer was out
                        holders[id(chunk.obj)] -= 1
                        if not holders[id(chunk.obj)]:
                            free.append(memoryview(chunk.obj))
                if self.stopping:
                    break
                buffer = free.pop()
                count = self.source.readinto(buffer)
                if not count:
                    break
                holders[id(buffer.obj)] = len(self.hashers) + 1
                chunk = buffer[:count]
                for hasher in self.hashers:
                    hasher.queue.put(chunk)
                self.ready.put(chunk)
        except BaseException as error:  # noqa: BLE001  (raised in the request's thread)
            self.ready.put(error)
        self.ready.put(None)

    def stop(self):
        self.stopping = True
        self.done.put(None)
        self.join()


class Measured:
    """Passes the data on in chunks, counting and hashing them, and has
    `reservation` cover every byte before it goes on (which stops the
    stream once it would pass the quota); `progress(size)`, when given, is
    told the size so far with every chunk.

    md5 and sha512 are the slow part of an upload, each slower than the
    socket and the disk, so each runs in a thread of its own. `source` is a
    reader (readinto(), as RequestBody and files have) or an iterable of
    bytes. A reader is read in a thread of its own too, into a few large
    buffers handed as they are, without a copy, to both hashes and the
    store (a chunk passed on is only valid until the next is asked for):
    reading, hashing and writing all overlap."""

    # 1 MiB: a buffer just received is still in the CPU's cache while both
    # hashes and the write read it (4 MiB ones measured slower here); 16 of
    # them let a hash that fell behind catch up without stopping the socket.
    BUFFER_SIZE = CHUNK_SIZE
    BUFFERS = 16

    def __init__(self, source, reservation, progress=None):
        self.source, self.reservation, self.progress = source, reservation, progress
        self.size = 0
        self.format_check = inspection.FormatCheck()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.os_hash = hashlib.new(HASH_ALGO)

    def __iter__(self):
        done = queue.SimpleQueue()
        hashers = [_Hasher(self.md5, done), _Hasher(self.os_hash, done)]
        for hasher in hashers:
            hasher.start()
        filler = None
        try:
            if hasattr(self.source, "readinto"):
                filler = _Filler(self.source, hashers, done, self.BUFFER_SIZE, self.BUFFERS)
                filler.start()
                chunks = iter(filler.ready.get, None)
            else:
                chunks = self._held(self.source, done)
            for chunk in chunks:
                if isinstance(chunk, BaseException):
                    raise chunk
                self.size += len(chunk)
                self.reservation.cover(self.size)
                if self.progress is not None:
                    self.progress(self.size)
                if filler is None:
                    for hasher in hashers:
                        hasher.queue.put(chunk)
                self.format_check.feed(chunk)
                yield chunk
                if filler is not None:
                    done.put(chunk)
        finally:
            if filler is not None:
                filler.stop()
            for hasher in hashers:
                hasher.queue.put(None)
            for hasher in hashers:
                hasher.join()
        for hasher in hashers:
            if hasher.error is not None:
                raise hasher.error

    def _held(self, chunks, done):
        """`chunks`, holding back while the hashers lag BUFFERS chunks."""
        pending = 0
        for chunk in chunks:
            while pending >= 2 * self.BUFFERS:
                done.get()
                pending -= 1
            pending += 2
            yield chunk


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


def upload(image, source, store, length=None):
    """Streams `source` (a reader or chunks, see Measured) into `store` as
    the image's data; the image ends active, or back in queued with nothing
    stored."""
    if not image.disk_format or not image.container_format:
        raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
    reservation = Reservation(image)
    reservation.start(length)
    url = None
    try:
        measured = Measured(source, reservation)
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
