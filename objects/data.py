"""The object store's data path, shared by every wire API.

Object data streams from the request into the back end in bounded chunks
with its MD5 computed on the way; only once the back end holds all of it is
the object's row written, in one transaction with its container's and
account's counts, so a reader sees the old object or the new one, and the
counts (objects.usage) are exact under any number of concurrent writers."""
import hashlib
import logging
import queue
import threading
import time
from datetime import datetime, timezone as dt_timezone

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from objects import rows, stores, usage
from objects.models import Account, Container, Object, UploadPart

log = logging.getLogger(__name__)

# Bodies are read 1 MiB at a time: each read is a pass through the WSGI
# server's buffers, and at 64 KiB those passes cost more than the MD5.
CHUNK_SIZE = 1 << 20
# Swift's constraints (swift/common/constraints.py), also shown by /info.
MAX_FILE_SIZE = 5 * 2**30 + 2
MAX_META_NAME_LENGTH = 128
MAX_META_VALUE_LENGTH = 256
MAX_META_COUNT = 90
MAX_META_OVERALL_SIZE = 4096
MAX_HEADER_SIZE = 8192
MAX_OBJECT_NAME_LENGTH = 1024
MAX_CONTAINER_NAME_LENGTH = 256
MAX_ACCOUNT_NAME_LENGTH = 256
CONTAINER_LISTING_LIMIT = 10000
ACCOUNT_LISTING_LIMIT = 10000
EXTRA_HEADER_COUNT = 0
# Static large objects.
SLO_MAX_MANIFEST_SEGMENTS = 1000
SLO_MAX_MANIFEST_SIZE = 8 * 2**20
SLO_MIN_SEGMENT_SIZE = 1
# Bulk delete.
BULK_MAX_DELETES_PER_REQUEST = 10000


class QuotaExceeded(Exception):
    """A write would take a container or an account past its quota."""


class ContainerGone(Exception):
    """The container was deleted while the object was written."""


class SizeMismatch(Exception):
    """The body was not as long as its Content-Length said."""

    def __init__(self, received, expected):
        super().__init__(f"{received} of {expected} bytes")
        self.received, self.expected = received, expected


class Measured:
    """Passes chunks through, counting them and computing their MD5, and
    stops the stream at `limit` bytes (the largest object allowed). A body
    of more than one chunk is hashed by a thread of its own (DigestThread)
    while its chunks are received and written."""

    def __init__(self, chunks, limit=MAX_FILE_SIZE):
        self.chunks, self.limit = chunks, limit
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)

    def __iter__(self):
        digest = None
        try:
            for chunk in self.chunks:
                self.size += len(chunk)
                if self.size > self.limit:
                    raise QuotaExceeded("Your request is too large.")
                if digest is None and self.size > len(chunk):
                    digest = DigestThread(self.md5)
                if digest is None:
                    self.md5.update(chunk)
                else:
                    digest.update(chunk)
                yield chunk
        finally:
            if digest is not None:
                digest.finish()

    @property
    def etag(self):
        return self.md5.hexdigest()


class DigestThread:
    """Feeds chunks to a hash in another thread (hashlib lets go of the GIL
    for large buffers, so on a second core the MD5 runs beside the socket
    reads and file writes instead of after each); at most DEPTH chunks wait,
    so memory stays bounded whatever the body's size."""
    DEPTH = 4

    def __init__(self, digest):
        self.digest = digest
        self.queue = queue.Queue(self.DEPTH)
        self.thread = threading.Thread(target=self._run, name="object-md5", daemon=True)
        self.thread.start()

    def _run(self):
        while (chunk := self.queue.get()) is not None:
            self.digest.update(chunk)

    def update(self, chunk):
        self.queue.put(chunk)

    def finish(self):
        """Waits for every chunk given to be hashed."""
        self.queue.put(None)
        self.thread.join()


def store_data(chunks, limit=MAX_FILE_SIZE):
    """Streams chunks into the back end: (key, size, md5 hex)."""
    measured = Measured(chunks, limit)
    stream = iter(measured)
    try:
        key = stores.default().write(stream)
    finally:
        stream.close()  # a write that failed stops the hashing thread too
    return key, measured.size, measured.etag


def discard_data(*keys):
    for key in keys:
        if key:
            try:
                stores.default().delete(key)
            except stores.StoreError:
                log.exception("Could not remove object data %s", key)


def account(project_id, create=False):
    """The project's account row; made when `create` (Swift makes an
    account on its first write)."""
    if create:
        return Account.objects.get_or_create(project_id=project_id)[0]
    return Account.objects.filter(project_id=project_id).first()


def create_container(project_id, name, metadata, read_acl=None, write_acl=None):
    """Makes the container, or updates the metadata of the one there:
    True when it was made."""
    account(project_id, create=True)
    with transaction.atomic():
        existing = Container.objects.select_for_update().filter(account_id=project_id, name=name).first()
        if existing is not None:
            update_container(existing, metadata, read_acl, write_acl)
            return False
        try:
            with transaction.atomic():
                Container.objects.create(account_id=project_id, name=name, metadata=metadata,
                                         read_acl=read_acl or "", write_acl=write_acl or "")
        except IntegrityError:  # made by a concurrent request just now
            existing = Container.objects.select_for_update().get(account_id=project_id, name=name)
            update_container(existing, metadata, read_acl, write_acl)
            return False
        usage.add(None, project_id, containers=1)
    return True


def update_container(container, metadata, read_acl=None, write_acl=None):
    """Merges metadata (a value of None removes the name) and sets the ACLs
    given."""
    merged = {**container.metadata, **metadata}
    container.metadata = {name: value for name, value in merged.items() if value is not None}
    if read_acl is not None:
        container.read_acl = read_acl
    if write_acl is not None:
        container.write_acl = write_acl
    container.save(update_fields=["metadata", "read_acl", "write_acl"])


def delete_container(container):
    """Removes an empty container: False when it holds objects."""
    with transaction.atomic():
        # FOR UPDATE: an object being inserted (its foreign key check holds a key-share
        # lock) is waited for and then seen; one inserted after fails its check.
        locked = Container.objects.select_for_update().filter(pk=container.pk).first()
        if locked is None:
            return True
        if Object.objects.filter(container=locked).exists():
            return False
        # Unfinished S3 multipart uploads go with the container: their parts' data too.
        part_keys = list(UploadPart.objects.filter(upload__container=locked).values_list("data_key", flat=True))
        locked.delete()
        transaction.on_commit(lambda: discard_data(*part_keys))
        usage.add(None, locked.account_id, containers=-1)
    return True


def _limit(metadata, name):
    try:
        return int(metadata[name])
    except (KeyError, TypeError, ValueError):
        return None


def _quotas(container, account_row):
    """The quotas on a write into the container, each a limit or None:
    (container bytes, container count, account bytes, account count)."""
    account_bytes = account_row.quota_bytes
    if account_bytes is None:
        account_bytes = _limit(account_row.metadata, "quota-bytes")
    return (_limit(container.metadata, "quota-bytes"), _limit(container.metadata, "quota-count"),
            account_bytes, account_row.quota_count)


def _quota_check(container, account_row, added_bytes, added_objects):
    """Swift's container quotas (X-Container-Meta-Quota-Bytes/-Count) and
    account quotas (X-Account-Quota-Bytes/-Count, X-Account-Meta-Quota-Bytes):
    QuotaExceeded when the write takes a total past one."""
    container_bytes, container_count, account_bytes, account_count = _quotas(container, account_row)
    if container_bytes is not None or container_count is not None:
        objects, used = usage.container_totals(container.pk)
        if (container_bytes is not None and added_bytes > 0 and used + added_bytes > container_bytes) or (
                container_count is not None and added_objects > 0 and objects + added_objects > container_count):
            raise QuotaExceeded("Upload exceeds quota.")
    if account_bytes is not None or account_count is not None:
        _, objects, used = usage.account_totals(account_row.pk)
        if (account_bytes is not None and added_bytes > 0 and used + added_bytes > account_bytes) or (
                account_count is not None and added_objects > 0 and objects + added_objects > account_count):
            raise QuotaExceeded("Upload exceeds quota.")


def check_quota(container, name, length):
    """QuotaExceeded when an object `name` of `length` bytes (None: data
    that is not an object yet, a multipart upload's part) could not fit in
    the container and its account as the request read them (no lock: the
    commit's check is the exact one; no query without a quota)."""
    if any(quota is not None for quota in _quotas(container, container.account)):
        previous = None if name is None else \
            Object.objects.filter(container=container, name=name).values_list("size", flat=True).first()
        added_objects = 0 if name is None or previous is not None else 1
        _quota_check(container, container.account, length - (previous or 0), added_objects)


def commit_object(container, name, fields, if_none_match=False):
    """Writes the object's row, replacing the one of that name, and the
    counts of its container and account, in one transaction; the data the
    row named before is removed once the transaction commits. Returns the
    row, or None when `if_none_match` and the object exists.

    Writers of different names wait on nothing but their own share of the
    counts (objects.usage); writers of one name wait on its row. On
    PostgreSQL a new name is written by one statement (no lock to take
    first: its insert either makes the row or finds one), and a name
    that exists by one more (its row locked, replaced and counted). Where a
    quota binds, writers take the container's and account's rows (FOR NO
    KEY UPDATE, which inserts' foreign key checks do not wait on) so that
    the totals they check cannot change under them."""
    quota_binds = any(quota is not None for quota in _quotas(container, container.account))
    try:
        if not quota_binds and connection.vendor == "postgresql":
            # A new name, the usual write: the row and its counts in one statement.
            row_id = rows.insert_counted_object(container, name, fields)
            if row_id is not None:
                return Object(id=row_id, container=container, name=name, **fields)
            if if_none_match:
                return None
            # The name exists: its row replaced and the counts changed in one statement too.
            replaced = rows.replace_counted_object(container, name, fields)
            if replaced is not None:
                row_id, old_key = replaced
                if old_key and old_key != fields.get("data_key"):
                    transaction.on_commit(lambda: discard_data(old_key))
                return Object(id=row_id, container=container, name=name, **fields)
            # Deleted since: the locked path below makes it again.
        with transaction.atomic():
            if quota_binds:
                locked = Container.objects.select_for_update(no_key=True).select_related("account") \
                    .filter(pk=container.pk).first()
                if locked is None:
                    raise ContainerGone()
                container = locked
            while True:
                previous = rows.object_named(container, name, for_update=True)
                if previous is not None and if_none_match:
                    return None
                added_bytes = fields["size"] - (previous.size if previous else 0)
                added_objects = 0 if previous else 1
                _quota_check(container, container.account, added_bytes, added_objects)
                if previous is not None:
                    old_key = previous.data_key
                    rows.update_object(previous.pk, fields)
                    for field, value in fields.items():
                        setattr(previous, field, value)
                    row = previous
                    break
                old_key = ""
                row_id = rows.insert_object(container, name, fields)
                if row_id is not None:
                    row = Object(id=row_id, container=container, name=name, **fields)
                    break
                # Made by a concurrent writer since: replace that one.
            usage.add(container.pk, container.account_id, added_objects, added_bytes)
            if old_key and old_key != fields.get("data_key"):
                transaction.on_commit(lambda: discard_data(old_key))
    except IntegrityError:  # the insert's foreign key: the container was deleted meanwhile
        raise ContainerGone()
    return row


def delete_object(container, name):
    """Removes the object's row (and then its data): False when none."""
    with transaction.atomic():
        row = rows.object_named(container, name, for_update=True)
        if row is None:
            return False
        rows.delete_object(row.pk)
        usage.add(container.pk, container.account_id, -1, -row.size)
        key = row.data_key
        transaction.on_commit(lambda: discard_data(key))
    return True


def now_timestamp():
    return time.time()


def is_expired(row, now=None):
    return row.delete_at is not None and row.delete_at <= (now or now_timestamp())


def reap_expired(batch=1000):
    """Deletes the objects whose X-Delete-At has passed (the periodic task
    objects.tasks.reap_expired_objects); returns how many."""
    reaped = 0
    now = int(now_timestamp())
    expired = Object.objects.filter(delete_at__lte=now).select_related("container").order_by("delete_at")[:batch]
    for row in expired:
        if delete_object(row.container, row.name):
            reaped += 1
    return reaped


def discard_stale_temporary(older_than_seconds=3600):
    """Temporary files of writes that died with their process."""
    store = stores.default()
    if hasattr(store, "discard_temporary"):
        return store.discard_temporary(now_timestamp() - older_than_seconds)
    return 0


def successor(text):
    """The least string greater than every string starting with `text`
    (in code point order), or None when there is none."""
    while text:
        last = ord(text[-1])
        if last < 0x10FFFF:
            bumped = last + 1
            if 0xD800 <= bumped <= 0xDFFF:  # surrogates cannot be stored
                bumped = 0xE000
            return text[:-1] + chr(bumped)
        text = text[:-1]
    return None


def keyset_listing(queryset, limit, prefix="", delimiter="", marker="", end_marker="", reverse=False):
    """Rows of `queryset` (a model with `name`) in name order after
    `marker`, before `end_marker`, starting with `prefix`; with a
    delimiter, names with it past the prefix roll up into one subdir
    (a str) each. Every query walks the name index from where the previous
    one stopped (keyset), so a page costs the same however many names come
    before it; with a delimiter, one more query per subdir on the page."""
    base = queryset
    if prefix:
        base = base.filter(name__gte=prefix)
        upper = successor(prefix)
        if upper is not None:
            base = base.filter(name__lt=upper)
    if end_marker:
        base = base.filter(name__gt=end_marker) if reverse else base.filter(name__lt=end_marker)
    order = "-name" if reverse else "name"
    results = []
    position = marker
    while len(results) < limit:
        page = base
        if position:
            page = page.filter(name__lt=position) if reverse else page.filter(name__gt=position)
        wanted = limit - len(results)
        rows = list(page.order_by(order)[:wanted])
        if not rows:
            break
        rolled_up = False
        for row in rows:
            rest = row.name[len(prefix):]
            at = rest.find(delimiter) if delimiter else -1
            if at < 0:
                results.append(row)
                position = row.name
                continue
            subdir = prefix + rest[:at + len(delimiter)]
            if subdir != marker:
                results.append(subdir)
            # Next: the first name past every name under this subdir.
            if reverse:
                position = subdir
            else:
                after = successor(subdir)
                if after is None:
                    return results
                base, position = base.filter(name__gte=after), ""
            rolled_up = True
            break
        if not rolled_up and len(rows) < wanted:
            break
    return results


def utc_datetime(timestamp):
    return datetime.fromtimestamp(timestamp, tz=dt_timezone.utc)


def current_time():
    return timezone.now()
