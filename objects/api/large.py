"""An object's content, and large objects (Swift's slo and dlo middleware).

A static large object (SLO) is a manifest listing its segments (other
objects of the account) by path, ETag and size, checked when the manifest
is PUT (`?multipart-manifest=put`); its ETag is the MD5 of its segments'
ETags. A dynamic large object (DLO) is an object with X-Object-Manifest:
`<container>/<prefix>`; its content is every object under the prefix, in
name order, as they are when it is read."""
import hashlib
import json
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote

from django.http import FileResponse, HttpResponse

from objects import data, stores
from objects.api import headers as swift_headers
from objects.api.access import READ
from objects.api.errors import SwiftError, bad_request
from objects.models import Container, Object

READ_CHUNK = 1 << 20
DLO_MAX_SEGMENTS = 10000


@dataclass
class Body:
    size: int
    etag: str  # unquoted
    etag_header: str
    chunks: Callable  # (start, end inclusive) -> iterable of bytes
    data_key: str = ""  # the one stored piece of data holding all of it, if any


def read_data(key, start, end):
    """Bytes start..end (inclusive) of stored data, in chunks."""
    try:
        handle = stores.default().open(key)
    except stores.StoreError:
        raise SwiftError(503)
    def chunks():
        with handle:
            handle.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = handle.read(min(READ_CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk
    return chunks()


def whole_data_response(key):
    """A response of all of the stored data `key` (StoreError when it cannot
    be opened): the server sends a file with a descriptor by sendfile()
    (the filesystem store), any other READ_CHUNK at a time (FileResponse's
    own 4 KiB made a send per 4 KiB of a RADOS object)."""
    response = FileResponse(stores.default().open(key))
    response.block_size = READ_CHUNK
    if "Content-Disposition" in response:
        del response["Content-Disposition"]  # FileResponse names the store's file
    return response


def segmented(segments, start, end):
    """Bytes start..end of the concatenation of [(data key, size)]."""
    offset = 0
    for key, size in segments:
        first, last = offset, offset + size - 1
        offset += size
        if last < start or size == 0:
            continue
        if first > end:
            return
        yield from read_data(key, max(start, first) - first, min(end, last) - first)


def joined_etag(etags):
    return hashlib.md5("".join(etags).encode(), usedforsecurity=False).hexdigest()


def content_of(controller, container, row):
    """The object's content as a Body: its own data, or its segments'."""
    if row.slo_segments is not None:
        return slo_content(container, row)
    if row.dlo_manifest:
        return dlo_content(controller, row)
    key = row.data_key
    return Body(row.size, row.etag, row.etag, lambda start, end: read_data(key, start, end), key)


def _segment_rows(project_id, references):
    """{(container, name): row} of the account's objects named."""
    names = {}
    for container_name, name in references:
        names.setdefault(container_name, set()).add(name)
    found = {}
    containers = Container.objects.filter(account_id=project_id, name__in=list(names))
    for container in containers:
        for row in Object.objects.filter(container=container, name__in=list(names[container.name])):
            found[(container.name, row.name)] = row
    return found


def slo_content(container, row):
    segments = row.slo_segments
    rows = _segment_rows(container.account_id, [(s["container"], s["name"]) for s in segments])
    keys = []
    for segment in segments:
        found = rows.get((segment["container"], segment["name"]))
        if found is None or found.etag != segment["etag"] or not found.data_key or data.is_expired(found):
            # A segment deleted or changed since the manifest was written.
            raise SwiftError(409, f"Segment {segment['container']}/{segment['name']} of this large object is "
                                  f"missing or changed.")
        keys.append((found.data_key, found.size))
    return Body(row.size, row.etag, f'"{row.etag}"', lambda start, end: segmented(keys, start, end))


def dlo_content(controller, row):
    container_name, _, prefix = row.dlo_manifest.partition("/")
    container = Container.objects.filter(account_id=controller.project_id, name=container_name).first()
    if container is None:
        return Body(0, joined_etag([]), f'"{joined_etag([])}"', lambda start, end: iter(()))
    if not controller.via_tempurl:
        controller.authorize(READ, container)
    rows = data.keyset_listing(Object.objects.filter(container=container, data_key__gt=""), DLO_MAX_SEGMENTS,
                               prefix=prefix)
    rows = [found for found in rows if not data.is_expired(found)]
    keys = [(found.data_key, found.size) for found in rows]
    etag = joined_etag(found.etag for found in rows)
    return Body(sum(size for _, size in keys), etag, f'"{etag}"', lambda start, end: segmented(keys, start, end))


def manifest_response(controller, row):
    listing = [{"name": f"/{s['container']}/{s['name']}", "hash": s["etag"], "bytes": s["size"],
                "content_type": s.get("content_type", "application/octet-stream"),
                "last_modified": s.get("last_modified", "")} for s in row.slo_segments]
    body = json.dumps(listing).encode()
    response = HttpResponse(b"" if controller.request.method == "HEAD" else body,
                            content_type="application/json; charset=utf-8")
    response["Content-Length"] = str(len(body))
    response["X-Static-Large-Object"] = "True"
    response["ETag"] = hashlib.md5(body, usedforsecurity=False).hexdigest()
    return response


def _manifest_items(request):
    length = request.META.get("CONTENT_LENGTH")
    try:
        if length and int(length) > data.SLO_MAX_MANIFEST_SIZE:
            raise SwiftError(413, f"Manifest File > {data.SLO_MAX_MANIFEST_SIZE} bytes")
    except ValueError:
        raise bad_request("Invalid Content-Length")
    stream = request if length else request.META["wsgi.input"]
    raw = stream.read(data.SLO_MAX_MANIFEST_SIZE + 1)
    if len(raw) > data.SLO_MAX_MANIFEST_SIZE:
        raise SwiftError(413, f"Manifest File > {data.SLO_MAX_MANIFEST_SIZE} bytes")
    try:
        items = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Manifest must be valid JSON.\n")
    if not isinstance(items, list) or not items:
        raise bad_request("Manifest must be a list.\n" if not isinstance(items, list) else
                          "Manifest must have at least one segment.\n")
    if len(items) > data.SLO_MAX_MANIFEST_SEGMENTS:
        raise bad_request(f"Too many segments (max {data.SLO_MAX_MANIFEST_SEGMENTS}).\n")
    return items


def put_manifest(controller, container):
    """PUT ?multipart-manifest=put: checks every segment exists as the
    manifest says (a 400 listing each problem otherwise) and stores the
    manifest as the object."""
    from objects.api.views import check_object_name, commit, empty

    request = controller.request
    metadata = controller.new_metadata()
    delete_at = controller.expiry()
    items = _manifest_items(request)
    references, problems = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise bad_request(f"Index {index}: \"path\" must be a string of the form /container/object.\n")
        path = unquote(item["path"]).lstrip("/")
        container_name, _, name = path.partition("/")
        if not container_name or not name:
            raise bad_request(f"Index {index}: \"path\" must be of the form /container/object.\n")
        etag, size = item.get("etag"), item.get("size_bytes")
        if etag is not None and not isinstance(etag, str):
            raise bad_request(f"Index {index}: \"etag\" must be a string or null.\n")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise bad_request(f"Index {index}: \"size_bytes\" must be an integer or null.\n")
        check_object_name(name)
        references.append((container_name, name, etag.strip('"') if etag else None, size))
    rows = _segment_rows(controller.project_id, [(c, n) for c, n, _, _ in references])
    segment_containers = {c.name: c for c in Container.objects.filter(
        account_id=controller.project_id, name__in=list({c for c, _, _, _ in references}))}
    segments = []
    for container_name, name, etag, size in references:
        controller.authorize(READ, segment_containers.get(container_name))
        found = rows.get((container_name, name))
        where = f"/{container_name}/{name}"
        if found is None or data.is_expired(found):
            problems.append((where, "404 Not Found"))
            continue
        if not found.data_key:
            problems.append((where, "Nested large objects are not supported"))
            continue
        if etag is not None and etag != found.etag:
            problems.append((where, "Etag Mismatch"))
        if size is not None and size != found.size:
            problems.append((where, "Size Mismatch"))
        if found.size < data.SLO_MIN_SEGMENT_SIZE:
            problems.append((where, f"Too small; each segment must be at least {data.SLO_MIN_SEGMENT_SIZE} bytes."))
        segments.append({"container": container_name, "name": name, "etag": found.etag, "size": found.size,
                         "content_type": found.content_type, "last_modified": found.last_modified.isoformat()})
    if problems:
        raise bad_request("Errors:\n" + "\n".join(f"{where}, {why}" for where, why in problems))
    etag = joined_etag(segment["etag"] for segment in segments)
    expected = request.headers.get("ETag", "").strip('"').lower()
    if expected and expected != etag:
        raise SwiftError(422)
    fields = controller.fields("", sum(segment["size"] for segment in segments), etag, metadata, delete_at)
    fields["slo_segments"] = segments
    row = commit(container, controller.name, fields, "")
    return empty(201, {"ETag": f'"{row.etag}"', "Last-Modified": swift_headers.last_modified_header(row.last_modified)})


def delete_with_segments(controller, container, row):
    """DELETE ?multipart-manifest=delete: the manifest and its segments,
    answered as a bulk delete is."""
    from objects.api.bulk import delete_paths

    paths = [f"/{s['container']}/{s['name']}" for s in row.slo_segments] + [f"/{container.name}/{row.name}"]
    return delete_paths(controller, paths)
