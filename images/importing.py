"""Glance's interoperable image import.

    PUT  /v2/images/{id}/stage     queued -> uploading: the data waits in the
                                   staging area (stores.staging())
    POST /v2/images/{id}/import    -> importing, and a task (ImageTask) that a
                                   control worker runs (run_import)

`glance-direct` imports the staged data; `web-download` has the worker
download a URL into the staging area first, and only a URL under one of
settings.IMAGE_IMPORT_ALLOWED_URLS (checked again at every redirect). Either
way the data then goes into each store through the checks an upload passes
(quota, hashes, format inspection, qemu-img; images.data), and the image
ends active, or queued again with the failure in `os_glance_failed_import`
and the task's message. The image's `os_glance_import_task` names the task
while it runs, which is also the lock against a second import.

Glance's tasks API makes the same kind of import: `POST /v2/tasks` of type
`import` creates an image from `image_properties` and has a worker
web-download `import_from` into it (start_task), under the same rules."""
import logging
import posixpath
import time
from datetime import timedelta
from urllib.parse import unquote, urljoin, urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from cloud.errors import ApiError, BadRequest, Conflict
from images import data, stores
from images.models import (
    ACTIVE, FAILURE, IMPORTING, PENDING, PROCESSING, QUEUED, SUCCESS, UPLOADING, Image, ImageLocation,
    ImageTask)

log = logging.getLogger(__name__)

GLANCE_DIRECT, WEB_DOWNLOAD = "glance-direct", "web-download"
# Glance's import methods; those not listed by enabled_methods() are refused.
KNOWN_METHODS = (GLANCE_DIRECT, WEB_DOWNLOAD, "glance-download", "copy-image")
IMPORT_TASK, IMPORTING_TO, FAILED_IMPORT = ("os_glance_import_task", "os_glance_importing_to_stores",
                                            "os_glance_failed_import")
RUN_IMPORT = "images.tasks.run_import"
# Task types: an import's own (/import) and one made by POST /v2/tasks.
API_IMAGE_IMPORT, TASK_IMPORT = "api_image_import", "import"
TASK_TYPES = (TASK_IMPORT, API_IMAGE_IMPORT)
TASK_INPUT = ("import_from", "import_from_format", "image_properties")
MAX_REDIRECTS = 5
# Glance keeps a finished task for 48 hours.
TASK_TIME_TO_LIVE = timedelta(hours=48)
# Seconds between progress notes in the task's message.
PROGRESS_EVERY = 2


class ImportFailed(Exception):
    """The import cannot finish; the message says why (for the task)."""


def enabled_methods():
    """The import methods this cloud offers: web-download only when the
    operator allows some URLs."""
    return [GLANCE_DIRECT] + ([WEB_DOWNLOAD] if settings.IMAGE_IMPORT_ALLOWED_URLS else [])


def _port(parts):
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def _under(path, prefix):
    """Whether URL path `path` is `prefix` or below it."""
    prefix = prefix or "/"
    if prefix.endswith("/"):
        return path.startswith(prefix) or path + "/" == prefix
    return path == prefix or path.startswith(prefix + "/")


def url_refusal(url):
    """Why `url` may not be downloaded (None: it may): only http(s) under
    one of the operator's allowed URL prefixes, same scheme, host and port."""
    try:
        parts = urlsplit(url)
        port = _port(parts)
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return f"the scheme {parts.scheme or '(none)'!r} is not allowed, only http and https"
    if not parts.hostname:
        return "it names no host"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed"
    path = unquote(parts.path) or "/"
    # No dot segments or doubled slashes a server could resolve out of the prefix.
    if path != "/" and posixpath.normpath(path) != path.rstrip("/"):
        return "its path is not in normal form"
    for allowed in settings.IMAGE_IMPORT_ALLOWED_URLS:
        rule = urlsplit(allowed)
        if (parts.scheme, parts.hostname, port) == (rule.scheme, rule.hostname, _port(rule)) \
                and _under(path, unquote(rule.path)):
            return None
    return "it is not under a URL the operator allows"


def staged_url(image_id):
    return (stores.staging().directory / image_id).as_uri()


def discard_staged(image_id):
    try:
        stores.staging().delete(staged_url(image_id))
    except OSError:  # after a commit: logged, never a 500
        log.exception("Could not remove the staged data of image %s", image_id)


class Progress:
    """Told the size so far (as Measured's `progress`): notes it in the
    task's message every PROGRESS_EVERY seconds."""

    def __init__(self, task, what):
        self.task, self.what = task, what
        self.noted = time.monotonic()

    def __call__(self, size):
        if time.monotonic() - self.noted > PROGRESS_EVERY:
            self.noted = time.monotonic()
            note(self.task, f"{self.what} {size} bytes.")


class Counted:
    """Chunks passed on while `reservation` covers them (the quota bounds
    them), noting progress in the task's message now and then."""

    def __init__(self, chunks, reservation, task=None, what="Received"):
        self.chunks, self.reservation = chunks, reservation
        self.progress = Progress(task, what) if task is not None else None
        self.size = 0

    def __iter__(self):
        for chunk in self.chunks:
            self.size += len(chunk)
            self.reservation.cover(self.size)
            if self.progress is not None:
                self.progress(self.size)
            yield chunk


def note(task, message, **fields):
    ImageTask.objects.filter(pk=task.pk).update(message=message, updated_at=timezone.now(), **fields)


# --- staging (the request thread, like an upload) -------------------------

def stage(image, chunks, length=None):
    """Streams the request's data into the staging area: the image goes
    uploading and holds the bytes against its quota; any failure leaves it
    queued with nothing staged."""
    if image.status != QUEUED:
        raise Conflict(f"Image {image.id} is {image.status}: only a queued image can have data staged.")
    staging = stores.staging()
    reservation = data.Reservation(image, working=UPLOADING)
    reservation.start(length)
    url = None
    try:
        counted = Counted(chunks, reservation)
        url = data.store_chunks(staging, image.id, counted)
        if not Image.objects.filter(pk=image.pk, status=UPLOADING).update(
                upload_reserved=counted.size, upload_seen_at=None, updated_at=timezone.now()):
            raise Conflict(f"Image {image.id} was deleted or changed while its data was staged.")
    except BaseException:
        if url is not None:
            staging.delete(url)
        image.set_status(QUEUED, upload_reserved=None, upload_seen_at=None)
        raise


# --- the import request ---------------------------------------------------

def _stores_of(body, header_store):
    """The ids of the stores to import into, checked."""
    enabled = list(stores.enabled())
    wanted = body.get("stores")
    all_stores = body.get("all_stores", False)
    if not isinstance(all_stores, bool):
        raise BadRequest(f"Invalid input for field 'all_stores': {all_stores!r} is not a boolean.")
    if all_stores and wanted:
        raise BadRequest("Invalid input for field 'stores': 'stores' and 'all_stores' cannot be given together.")
    if all_stores:
        return enabled
    if wanted is None:
        wanted = [header_store] if header_store else [stores.default().id]
    if not isinstance(wanted, list) or not wanted or not all(isinstance(store, str) for store in wanted):
        raise BadRequest("Invalid input for field 'stores': a non-empty list of store ids.")
    unknown = [store for store in wanted if store not in enabled]
    if unknown:
        raise BadRequest(f"Invalid input for field 'stores': unknown store {unknown[0]!r} "
                         f"(stores: {', '.join(enabled)}).")
    return list(dict.fromkeys(wanted))


def parse_request(body, header_store=None):
    """(method, uri or None, store ids, all_stores_must_succeed) of an
    import request body; 400 naming the field when it is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("method"), dict):
        raise BadRequest("Invalid input for field 'method': the body must be "
                         "{\"method\": {\"name\": \"<import method>\"}}.")
    name = body["method"].get("name")
    if name not in KNOWN_METHODS:
        raise BadRequest(f"Invalid input for field 'method/name': {name!r} is not one of "
                         f"{', '.join(KNOWN_METHODS)}.")
    if name not in enabled_methods():
        raise BadRequest(f"Import method {name} is not enabled (enabled: {', '.join(enabled_methods())}).")
    uri = None
    if name == WEB_DOWNLOAD:
        uri = body["method"].get("uri")
        if not isinstance(uri, str) or not uri:
            raise BadRequest("Invalid input for field 'method/uri': the URL to download is required.")
        reason = url_refusal(uri)
        if reason:
            raise BadRequest(f"URI for web-download does not pass filtering: {uri} ({reason}).")
    must_succeed = body.get("all_stores_must_succeed", True)
    if not isinstance(must_succeed, bool):
        raise BadRequest(f"Invalid input for field 'all_stores_must_succeed': {must_succeed!r} is not a boolean.")
    return name, uri, _stores_of(body, header_store), must_succeed


def start(image, body, credentials, request_id, header_store=None):
    """Starts importing a locked image row (in a transaction): the image
    goes importing, a task records the request, and a control worker is
    asked to run it once the transaction commits. Returns the task."""
    method, uri, targets, must_succeed = parse_request(body, header_store)
    if not image.disk_format or not image.container_format:
        raise Conflict("'disk_format' and 'container_format' need to be set before import.")
    if image.properties.get(IMPORT_TASK):
        raise Conflict(f"Image {image.id} has active task {image.properties[IMPORT_TASK]}.")
    if method == GLANCE_DIRECT and image.status != UPLOADING:
        raise Conflict("Image needs to be staged before 'glance-direct' method can be used.")
    if method == WEB_DOWNLOAD and image.status != QUEUED:
        raise Conflict("Image needs to be in 'queued' state to use 'web-download' method.")
    task = ImageTask.objects.create(
        image_id=image.id, owner=image.owner, user_id=credentials.user_id, request_id=request_id,
        input={"image_id": image.id, "import_req": body, "backend": targets,
               "all_stores_must_succeed": must_succeed})
    properties = {**image.properties, IMPORT_TASK: task.id, IMPORTING_TO: ",".join(targets), FAILED_IMPORT: ""}
    image.set_status(IMPORTING, properties=properties, upload_seen_at=timezone.now())
    transaction.on_commit(lambda: send(task.id))
    return task


def parse_task(body):
    """The `input` of a POST /v2/tasks body, checked: a task of type
    `import` from a URL web-download may fetch; 400 naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input: the request body must be a JSON object with 'type' and 'input'.")
    for name in ("type", "input"):
        if name not in body:
            raise BadRequest(f"Invalid input for field '{name}': Task '{name}' is required.")
    unknown = sorted(set(body) - {"type", "input"})
    if unknown:
        raise BadRequest(f"Invalid input for field '{unknown[0]}': a task is created with 'type' and 'input' only.")
    if body["type"] != TASK_IMPORT:
        raise BadRequest(f"Invalid input for field 'type': {body['type']!r} is not a task type that can be "
                         f"created (only {TASK_IMPORT!r}).")
    task_input = body["input"]
    if not isinstance(task_input, dict):
        raise BadRequest("Invalid input for field 'input': a JSON object with "
                         f"{', '.join(TASK_INPUT)}.")
    for name in TASK_INPUT:
        if name not in task_input:
            raise BadRequest(f"Invalid input for field 'input/{name}': Input does not contain '{name}' field.")
    uri, source_format = task_input["import_from"], task_input["import_from_format"]
    if not isinstance(uri, str) or not uri:
        raise BadRequest("Invalid input for field 'input/import_from': the URL to import from is required.")
    reason = url_refusal(uri)
    if reason:
        raise BadRequest(f"Invalid input for field 'input/import_from': URI for web-download does not pass "
                         f"filtering: {uri} ({reason}).")
    if not isinstance(task_input["image_properties"], dict):
        raise BadRequest("Invalid input for field 'input/image_properties': a JSON object of image attributes.")
    disk_format = task_input["image_properties"].get("disk_format")
    if not task_input["image_properties"].get("container_format") or not disk_format:
        raise BadRequest("Invalid input for field 'input/image_properties': 'disk_format' and "
                         "'container_format' are required.")
    if source_format != disk_format:
        raise BadRequest(f"Invalid input for field 'input/import_from_format': {source_format!r} is not the "
                         f"image's disk_format {disk_format!r} (images are not converted on import).")
    return task_input


def start_task(image, task_input, credentials, request_id):
    """Starts the task of a POST /v2/tasks (parse_task) on the image it
    just created (queued, in the same transaction); returns the task."""
    target = stores.default().id
    task = ImageTask.objects.create(
        type=TASK_IMPORT, image_id=image.id, owner=image.owner, user_id=credentials.user_id,
        request_id=request_id, input=task_input)
    properties = {**image.properties, IMPORT_TASK: task.id, IMPORTING_TO: target, FAILED_IMPORT: ""}
    image.set_status(IMPORTING, properties=properties, upload_seen_at=timezone.now())
    transaction.on_commit(lambda: send(task.id))
    return task


def _plan(task):
    """(import method, URL or None, store ids, whether all must succeed)."""
    if task.type == TASK_IMPORT:
        return WEB_DOWNLOAD, task.input["import_from"], [stores.default().id], True
    method = task.input["import_req"]["method"]
    return method["name"], method.get("uri"), task.input["backend"], task.input.get("all_stores_must_succeed", True)


def send(task_id):
    """Hands the task to a control worker. A broker that cannot take it
    now is logged: the reaper fails the import once it stays silent."""
    from workers import queues
    from workers.celery import app

    try:
        app.send_task(RUN_IMPORT, args=[task_id], queue=queues.CONTROL, routing_key=queues.CONTROL,
                      ignore_result=True)
    except OperationalError as error:
        log.warning("could not send the import task %s now: %s", task_id, error)


# --- the worker -----------------------------------------------------------

def download(uri, task, reservation):
    """Downloads `uri` into the staging area, following redirects only to
    allowed URLs, the quota bounding the size. Returns the bytes staged."""
    session = requests.Session()
    # The allow-list is checked against the URL fetched, so no proxy from
    # the environment comes between.
    session.trust_env = False
    url = uri
    with session:
        for _ in range(MAX_REDIRECTS + 1):
            reason = url_refusal(url)
            if reason:
                raise ImportFailed(f"URI for web-download does not pass filtering: {url} ({reason}).")
            try:
                response = session.get(url, stream=True, allow_redirects=False, timeout=(10, 60))
            except requests.RequestException as error:
                raise ImportFailed(f"The download of {url} failed: {error}.")
            if not response.is_redirect:
                break
            url = urljoin(url, response.headers["Location"])
            response.close()
        else:
            raise ImportFailed(f"The download of {uri} was redirected more than {MAX_REDIRECTS} times.")
        with response:
            if response.status_code != 200:
                raise ImportFailed(f"The download of {url} failed: HTTP {response.status_code}.")
            length = response.headers.get("Content-Length")
            reservation.start(int(length) if length and length.isdigit() else None)
            counted = Counted(response.iter_content(data.CHUNK_SIZE), reservation, task, "Downloaded")
            try:
                data.store_chunks(stores.staging(), task.image_id, counted)
            except requests.RequestException as error:
                raise ImportFailed(f"The download of {url} failed after {counted.size} bytes: {error}.")
    return counted.size


def _into_store(image, store, reservation, task):
    """Copies the staged data into `store`: (url, checked image fields)."""
    try:
        handle = stores.staging().open(staged_url(image.id))
    except stores.StoreError:
        raise ImportFailed(f"Image {image.id} has no staged data to import.")
    measured = data.Measured(handle, reservation, Progress(task, f"Stored in {store.id}:"))
    with handle:
        url = data.store_chunks(store, image.id, measured)
    try:
        return url, data.checked_fields(store, url, image.disk_format, measured)
    except BaseException:
        store.delete(url)
        raise


def run_import(task_id):
    """A control worker's part: runs an import task to its end. A repeat
    (the broker redelivered it) of a finished task does nothing."""
    task = ImageTask.objects.filter(pk=task_id).first()
    if task is None or task.status in (SUCCESS, FAILURE):
        return
    image = Image.objects.filter(pk=task.image_id).first()
    if image is None or image.status != IMPORTING or image.properties.get(IMPORT_TASK) != task.id:
        finish_task(task, FAILURE, "The image was deleted or changed before its import ran.")
        return
    note(task, "Started.", status=PROCESSING)
    method, uri, targets, must_succeed = _plan(task)
    stored, failed, fields = [], [], None
    try:
        reservation = data.Reservation(image, working=IMPORTING)
        if method == WEB_DOWNLOAD:
            download(uri, task, reservation)
        else:
            staged = stores.staging().directory / image.id
            if not staged.exists():
                raise ImportFailed(f"Image {image.id} has no staged data to import.")
            reservation.start(staged.stat().st_size)
        for index, store_id in enumerate(targets):
            store = stores.get(store_id)
            try:
                if store is None:
                    raise ImportFailed(f"The store {store_id} is not enabled.")
                url, fields = _into_store(image, store, reservation, task)
                stored.append((store_id, url))
            except (ApiError, ImportFailed, stores.StoreError) as error:
                # The data's own faults fail the whole import; a later store's may not.
                if index == 0 or must_succeed:
                    raise
                log.warning("Image %s: import into store %s failed: %s", image.id, store_id, error)
                failed.append(store_id)
        _activate(image, task, stored, failed, fields)
    except (ApiError, ImportFailed, stores.StoreError) as error:
        _undo(stored)
        fail(image.id, task, str(error), targets)
    except BaseException as error:
        _undo(stored)
        log.exception("Image %s: the import task %s failed", image.id, task.id)
        fail(image.id, task, f"The import failed: {error or type(error).__name__}.", targets)
        raise
    finally:
        discard_staged(image.id)


def _undo(stored):
    for store_id, url in stored:
        stores.get(store_id).delete(url)


def _activate(image, task, stored, failed, fields):
    with transaction.atomic():
        current = Image.objects.select_for_update().filter(pk=image.pk).first()
        if current is None or current.status != IMPORTING or current.properties.get(IMPORT_TASK) != task.id:
            raise ImportFailed(f"Image {image.id} was deleted or changed while it was imported.")
        for store_id, url in stored:
            ImageLocation.objects.update_or_create(image=current, store=store_id, defaults={"url": url})
        properties = {name: value for name, value in current.properties.items() if name != IMPORT_TASK}
        properties.update({IMPORTING_TO: "", FAILED_IMPORT: ",".join(failed)})
        current.set_status(ACTIVE, properties=properties, **fields)
        finish_task(task, SUCCESS, "Imported." if not failed else f"Imported; failed stores: {','.join(failed)}.",
                    result={"image_id": image.id, "stores": [store_id for store_id, _ in stored]})


def finish_task(task, status, message, result=None):
    note(task, message, status=status, result=result, expires_at=timezone.now() + TASK_TIME_TO_LIVE)


def fail(image_id, task, message, targets):
    """The import ends failed: the image, when this task still holds it,
    goes queued again with the stores in os_glance_failed_import."""
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is not None and image.status == IMPORTING and image.properties.get(IMPORT_TASK) == task.id:
            properties = {name: value for name, value in image.properties.items() if name != IMPORT_TASK}
            properties.update({IMPORTING_TO: "", FAILED_IMPORT: ",".join(targets)})
            image.set_status(QUEUED, properties=properties, upload_reserved=None, upload_seen_at=None)
        finish_task(task, FAILURE, message)
    log.warning("Image %s: import task %s failed: %s", image_id, task.id, message)


def reap_stalled(stale_after=None):
    """Periodic, with the upload reaper: an import whose worker showed no
    life for `stale_after` seconds (it died, or no worker took the task)
    fails visibly, and a staging upload that died with its API process
    leaves the image queued again; finished tasks past their expires_at
    are deleted. Returns the ids of the images reaped."""
    stale_after = settings.IMAGE_UPLOAD_STALE_AFTER if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    reaped = []
    silent = Q(upload_seen_at__lt=cutoff) | Q(upload_seen_at__isnull=True, updated_at__lt=cutoff)
    for image in Image.objects.filter(silent, status=IMPORTING):
        task = ImageTask.objects.filter(pk=image.properties.get(IMPORT_TASK)).first()
        if task is None:
            task = ImageTask.objects.create(image_id=image.id, owner=image.owner, status=PENDING)
        fail(image.id, task, f"The import stopped: no worker ran it for {stale_after} seconds.",
             [store for store in image.properties.get(IMPORTING_TO, "").split(",") if store])
        reaped.append(image.id)
    # A finished staging has no upload_seen_at: it waits for its import.
    for image in Image.objects.filter(status=UPLOADING, upload_seen_at__lt=cutoff):
        if Image.objects.filter(pk=image.pk, status=UPLOADING, upload_seen_at=image.upload_seen_at).update(
                status=QUEUED, upload_reserved=None, upload_seen_at=None, updated_at=timezone.now()):
            stores.staging().discard_partial(image.id, cutoff)
            reaped.append(image.id)
    ImageTask.objects.filter(expires_at__lt=timezone.now()).delete()
    return reaped
