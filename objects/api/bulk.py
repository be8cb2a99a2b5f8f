"""Swift's bulk middleware.

- Bulk delete: POST (or DELETE) /v1/AUTH_x?bulk-delete with one URL-encoded
  `/container/object` or `/container` per line.
- Archive extraction: PUT /v1/AUTH_x[/container]?extract-archive=tar|tar.gz|tar.bz2
  with a tar archive as the body; each regular file in it becomes an object
  (at the account, the first part of its path names the container, made
  when missing). The archive is read as a stream, one member at a time.

Either answers 200 (in the Accept format) counting what was done and
listing what was not, with the status each item got."""
import json
import mimetypes
import tarfile
from zlib import error as ZlibError
from urllib.parse import quote, unquote

from django.http import HttpResponse

from objects import data, stores
from objects.api.access import OWNER, WRITE
from objects.api.errors import SwiftError
from objects.models import Container, Object

ARCHIVE_MODES = {"tar": "r|", "tar.gz": "r|gz", "tar.bz2": "r|bz2"}
MAX_CONTAINERS_PER_EXTRACTION = 10000
MAX_FAILED_EXTRACTIONS = 1000


def bulk_delete(controller):
    request = controller.request
    if controller.credentials is None:
        raise SwiftError(401)
    raw = request.read(data.BULK_MAX_DELETES_PER_REQUEST * (data.MAX_OBJECT_NAME_LENGTH * 3 + 800))
    try:
        lines = raw.decode().splitlines()
    except UnicodeDecodeError:
        raise SwiftError(400, "Invalid UTF-8 in the list of names")
    paths = [line.strip() for line in lines if line.strip()]
    if len(paths) > data.BULK_MAX_DELETES_PER_REQUEST:
        raise SwiftError(413, f"Maximum Bulk Deletes: {data.BULK_MAX_DELETES_PER_REQUEST} per request")
    return delete_paths(controller, [unquote(path) for path in paths])


def delete_paths(controller, paths):
    deleted, not_found, errors = 0, 0, []
    for path in paths:
        container_name, _, name = path.lstrip("/").partition("/")
        container = Container.objects.filter(account_id=controller.project_id, name=container_name).first()
        try:
            controller.authorize(WRITE if name else OWNER, container)
        except SwiftError as error:
            errors.append([path, "401 Unauthorized" if error.status == 401 else "403 Forbidden"])
            continue
        if container is None:
            not_found += 1
        elif name:
            row = Object.objects.filter(container=container, name=name).first()
            if row is not None and data.delete_object(container, name):
                deleted += 1
            else:
                not_found += 1
        elif data.delete_container(container):
            deleted += 1
        else:
            errors.append([path, "409 Conflict"])
    status = "400 Bad Request" if errors else "200 OK"
    return answer(controller, {"Number Deleted": deleted, "Number Not Found": not_found, "Response Status": status,
                               "Response Body": "", "Errors": errors})


def answer(controller, result):
    """The summary in JSON when the client accepts it, else as lines of text."""
    if "json" in controller.request.headers.get("Accept", ""):
        body, content_type = json.dumps(result), "application/json; charset=utf-8"
    else:
        lines = [f"{key}: {value}" for key, value in result.items() if key != "Errors"]
        lines.append("Errors:")
        lines += [f"{path}, {why}" for path, why in result["Errors"]]
        body, content_type = "\n".join(lines) + "\n", "text/plain; charset=utf-8"
    return HttpResponse(body, content_type=content_type)


class _Body:
    """The request body as the file tarfile reads a stream from."""

    def __init__(self, request):
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        self.stream = request.META["wsgi.input"] if chunked else request

    def read(self, size=-1):
        try:
            return self.stream.read(size)
        except (OSError, ValueError):
            return b""


def _member_chunks(handle):
    while chunk := handle.read(data.CHUNK_SIZE):
        yield chunk


def extract_archive(controller, container_name=""):
    """Every regular file of the archive in the body becomes an object of
    `container_name` (or, at the account, of the container its path starts
    with)."""
    request = controller.request
    if controller.credentials is None:
        raise SwiftError(401)
    mode = ARCHIVE_MODES.get(request.GET.get("extract-archive", ""))
    if mode is None:
        raise SwiftError(400, "Unsupported archive format")
    created, errors, containers = 0, [], {}
    try:
        with tarfile.open(mode=mode, fileobj=_Body(request)) as archive:
            for member in archive:
                if not member.isfile():
                    continue
                path = member.name[2:] if member.name.startswith("./") else member.name
                path = path.lstrip("/")
                if not path:
                    continue
                status = _extract_one(controller, archive, member, container_name, path, containers)
                if status is None:
                    created += 1
                    continue
                errors.append([quote(path), status])
                if len(errors) >= MAX_FAILED_EXTRACTIONS:
                    break
    except (tarfile.TarError, EOFError, OSError, ValueError, ZlibError) as error:
        return answer(controller, {"Number Files Created": created, "Response Status": "400 Bad Request",
                                   "Response Body": f"Invalid Tar File: {error}", "Errors": errors})
    return answer(controller, {"Number Files Created": created,
                               "Response Status": "400 Bad Request" if errors else "201 Created",
                               "Response Body": "", "Errors": errors})


def _container_for(controller, name, containers):
    """The container (made at the account's level when missing), or the
    status that stops a file going there."""
    if name in containers:
        return containers[name]
    row = Container.objects.filter(account_id=controller.project_id, name=name).select_related("account").first()
    try:
        if row is None:
            if len(containers) >= MAX_CONTAINERS_PER_EXTRACTION:
                return "400 Bad Request"
            controller.authorize(OWNER)
            data.create_container(controller.project_id, name, {})
            row = Container.objects.select_related("account").get(account_id=controller.project_id, name=name)
        else:
            controller.authorize(WRITE, row)
    except SwiftError as error:
        containers[name] = "401 Unauthorized" if error.status == 401 else "403 Forbidden"
        return containers[name]
    containers[name] = row
    return row


def _extract_one(controller, archive, member, container_name, path, containers):
    """Stores one file of the archive: None, or the status it failed with."""
    if container_name:
        name = path
    else:
        container_name, _, name = path.partition("/")
        if not name:
            return "400 Bad Request"  # a file at the top of an account's archive: no container
        if len(container_name.encode()) > data.MAX_CONTAINER_NAME_LENGTH:
            return "400 Bad Request"
    if len(name.encode()) > data.MAX_OBJECT_NAME_LENGTH:
        return "400 Bad Request"
    if member.size > data.MAX_FILE_SIZE:
        return "413 Request Entity Too Large"
    container = _container_for(controller, container_name, containers)
    if isinstance(container, str):
        return container
    try:
        data.check_quota(container, name, member.size)
        key, size, etag = data.store_data(_member_chunks(archive.extractfile(member)))
    except data.QuotaExceeded:
        return "413 Request Entity Too Large"
    except stores.StoreFull:
        return "507 Insufficient Storage"
    except stores.StoreError:
        return "503 Service Unavailable"
    fields = {"size": size, "etag": etag,
              "content_type": mimetypes.guess_type(name)[0] or "application/octet-stream", "metadata": {},
              "headers": {}, "data_key": key, "last_modified": data.current_time(), "delete_at": None,
              "slo_segments": None, "dlo_manifest": ""}
    try:
        data.commit_object(container, name, fields)
    except data.QuotaExceeded:
        data.discard_data(key)
        return "413 Request Entity Too Large"
    except data.ContainerGone:
        data.discard_data(key)
        return "404 Not Found"
    except BaseException:
        data.discard_data(key)
        raise
    return None
