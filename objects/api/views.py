"""Swift's Object Storage v1 API: `/object-store/v1/AUTH_<project>[/<container>[/<object>]]`.

One controller per level (account, container, object), as Swift's proxy
has; large objects, temp URLs and bulk delete are in modules of their own.
Every answer carries X-Trans-Id (cloud.middleware); every error is Swift's
status and body."""
import json
import math
import mimetypes
import time
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape, quoteattr

from django.db import connection
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.http import parse_http_date_safe
from django.views.decorators.csrf import csrf_exempt

from cloud.errors import swift_error_response
from objects import data, rows, stores, usage
from objects.api import access, bulk, headers as swift_headers, large, tempurl
from objects.api.access import LIST, OWNER, READ, WRITE
from objects.api.errors import SwiftError, bad_request
from objects.models import Container, Object

SWIFT_VERSION = "2.35.0"
# Swift keeps expiry times to ten digits (the year 2286).
MAX_DELETE_AT = 9999999999
FORMATS = {"json": "application/json", "xml": "application/xml", "plain": "text/plain"}
ACCEPTED_TYPES = {"application/json": "json", "application/xml": "xml", "text/xml": "xml", "text/plain": "plain"}


@csrf_exempt
def swift(request, project_id, rest=None):
    try:
        response = route(request, project_id, rest)
    except SwiftError as error:
        response = swift_error_response(error.status, error.message, error.headers, request.method)
    return response


def route(request, project_id, rest):
    if len(project_id.encode()) > data.MAX_ACCOUNT_NAME_LENGTH:
        raise bad_request(f"Account name length of {len(project_id.encode())} longer than "
                          f"{data.MAX_ACCOUNT_NAME_LENGTH}")
    container_name, _, object_name = (rest or "").partition("/")
    if not container_name:
        if object_name:
            raise SwiftError(404)  # an empty container name before an object's
        return AccountController(request, project_id).handle()
    if not object_name:
        return ContainerController(request, project_id, container_name).handle()
    return ObjectController(request, project_id, container_name, object_name).handle()


class Controller:
    methods = ()

    def __init__(self, request, project_id):
        self.request, self.project_id = request, project_id
        self._credentials = None
        self._authenticated = False

    @property
    def credentials(self):
        if not self._authenticated:
            self._credentials = access.credentials_of(self.request)
            self._authenticated = True
        return self._credentials

    def handle(self):
        method = self.request.method
        if method not in self.methods:
            raise SwiftError(405, headers={"Allow": ", ".join(self.methods)})
        return getattr(self, method.lower())()

    def authorize(self, operation, container=None):
        access.authorize(self.credentials, self.project_id, operation, container)

    @property
    def owner(self):
        return access.is_owner(self.credentials, self.project_id)

    def account_row(self, create=False):
        return data.account(self.project_id, create=create)


def empty(status, extra=None):
    response = HttpResponse(b"", status=status, content_type="text/html; charset=UTF-8")
    response["Content-Length"] = "0"
    for name, value in (extra or {}).items():
        response[name] = value
    return response


def listing_format(request):
    wanted = request.GET.get("format")
    if wanted:
        if wanted.lower() not in FORMATS:
            return "plain"
        return wanted.lower()
    for part in request.headers.get("Accept", "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in ACCEPTED_TYPES:
            return ACCEPTED_TYPES[media]
    return "plain"


def listing_parameters(request, maximum):
    params = request.GET
    limit = params.get("limit")
    if limit is None or limit == "":
        limit_value = maximum
    else:
        try:
            limit_value = int(limit)
        except ValueError:
            raise SwiftError(412, "Value of limit must be a positive integer")
        if limit_value < 0:
            raise SwiftError(412, "Value of limit must be a positive integer")
        if limit_value > maximum:
            raise SwiftError(412, f"Maximum limit is {maximum}")
    delimiter = params.get("delimiter", "")
    if len(delimiter) > 1:
        raise SwiftError(412, "Bad delimiter")
    for name in ("prefix", "marker", "end_marker"):
        if len(params.get(name, "").encode()) > data.MAX_OBJECT_NAME_LENGTH:
            raise SwiftError(412, f"Maximum length of {name} is {data.MAX_OBJECT_NAME_LENGTH}")
    reverse = params.get("reverse", "").lower() in ("true", "1", "yes", "on", "t", "y")
    return dict(limit=limit_value, prefix=params.get("prefix", ""), delimiter=delimiter,
                marker=params.get("marker", ""), end_marker=params.get("end_marker", ""), reverse=reverse)


def render_listing(request, kind, name, entries, headers):
    """`entries`: dicts for json (rows rolled into a "subdir" one each), and
    the plain and xml forms from them. An empty plain listing is 204."""
    form = listing_format(request)
    if form == "json":
        response = HttpResponse(json.dumps(entries), content_type="application/json; charset=utf-8")
    elif form == "xml":
        item = "container" if kind == "account" else "object"
        parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<{kind} name={quoteattr(name)}>']
        for entry in entries:
            if "subdir" in entry:
                parts.append(f"<subdir name={quoteattr(entry['subdir'])}><name>{escape(entry['subdir'])}</name>"
                             f"</subdir>")
            else:
                fields = "".join(f"<{key}>{escape(str(value))}</{key}>" for key, value in entry.items())
                parts.append(f"<{item}>{fields}</{item}>")
        parts.append(f"</{kind}>")
        response = HttpResponse("".join(parts), content_type="application/xml; charset=utf-8")
    else:
        if not entries:
            response = empty(204)
            response["Content-Type"] = "text/plain; charset=utf-8"
        else:
            text = "".join((entry.get("subdir") or entry["name"]) + "\n" for entry in entries)
            response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    for header, value in headers.items():
        response[header] = value
    if request.method == "HEAD":  # Swift answers a HEAD of an account or container with 204
        response.status_code = 204
        response.content = b""
        response["Content-Length"] = "0"
    return response


class AccountController(Controller):
    methods = ("GET", "HEAD", "POST", "PUT", "DELETE")

    def headers(self, row):
        containers, objects, used = usage.account_totals(row.pk) if row else (0, 0, 0)
        found = {
            "X-Account-Container-Count": str(containers),
            "X-Account-Object-Count": str(objects),
            "X-Account-Bytes-Used": str(used),
            "X-Account-Storage-Policy-Policy-0-Container-Count": str(containers),
            "X-Account-Storage-Policy-Policy-0-Object-Count": str(objects),
            "X-Account-Storage-Policy-Policy-0-Bytes-Used": str(used),
            "X-Timestamp": swift_headers.timestamp_header(row.created_at) if row else f"{time.time():.5f}",
            "Accept-Ranges": "bytes",
        }
        if row:
            found.update(swift_headers.meta_headers("account", row.metadata))
            if row.quota_bytes is not None:
                found["X-Account-Quota-Bytes"] = str(row.quota_bytes)
            if row.quota_count is not None:
                found["X-Account-Quota-Count"] = str(row.quota_count)
        return found

    def get(self):
        self.authorize(LIST)
        row = self.account_row()
        if self.request.method == "GET" and "bulk-delete" in self.request.GET:
            raise SwiftError(405, headers={"Allow": "POST"})
        params = listing_parameters(self.request, data.ACCOUNT_LISTING_LIMIT)
        entries = []
        if row is not None and params["limit"]:
            for item in data.keyset_listing(usage.with_totals(Container.objects.filter(account=row)), **params):
                if isinstance(item, str):
                    entries.append({"subdir": item})
                else:
                    entries.append({"name": item.name, "count": item.object_count, "bytes": item.bytes_used,
                                    "last_modified": swift_headers.listing_time(item.created_at)})
        return render_listing(self.request, "account", f"AUTH_{self.project_id}", entries, self.headers(row))

    head = get

    def put(self):
        if "extract-archive" in self.request.GET:
            return bulk.extract_archive(self)
        raise SwiftError(405, headers={"Allow": "GET, HEAD, POST"})  # accounts are made on first write

    def delete(self):
        if "bulk-delete" in self.request.GET:
            return bulk.bulk_delete(self)
        raise SwiftError(405, headers={"Allow": "GET, HEAD, POST"})  # an account goes with its project

    def post(self):
        if "bulk-delete" in self.request.GET:
            return bulk.bulk_delete(self)
        self.authorize(OWNER)
        changes = swift_headers.metadata_from(self.request, "account")
        quotas = self.quota_changes()
        if (quotas or any(name.startswith("quota-") for name in changes)) and not (
                self.credentials.is_admin or self.credentials.has_role(access.RESELLER_ROLE)):
            raise SwiftError(403)  # a project does not set its own quota
        if changes.get("quota-bytes") is not None:
            _non_negative(changes["quota-bytes"], "Invalid quota-bytes value")
        row = self.account_row(create=True)
        metadata = swift_headers.merged(row.metadata, changes)
        swift_headers.check_metadata_totals(metadata)
        row.metadata = metadata
        for field, value in quotas.items():
            setattr(row, field, value)
        row.save(update_fields=["metadata", *quotas])
        return empty(204, self.headers(row))

    def quota_changes(self):
        """{field: limit or None} from X-Account-Quota-Bytes / -Count (an
        empty value, or X-Remove-Account-Quota-*, removes the quota)."""
        changes = {}
        for header, field in (("X-Account-Quota-Bytes", "quota_bytes"), ("X-Account-Quota-Count", "quota_count")):
            value = self.request.headers.get(header)
            if value is not None and value.strip():
                _non_negative(value.strip(), f"Invalid {header} value")
                changes[field] = int(value.strip())
            elif value is not None or f"X-Remove-{header[2:]}" in self.request.headers:
                changes[field] = None
        return changes


def _non_negative(value, message):
    try:
        if int(value) >= 0:
            return
    except ValueError:
        pass
    raise bad_request(message)


def check_container_name(name):
    length = len(name.encode())
    if length > data.MAX_CONTAINER_NAME_LENGTH:
        raise bad_request(f"Container name length of {length} longer than {data.MAX_CONTAINER_NAME_LENGTH}")


class ContainerController(Controller):
    methods = ("GET", "HEAD", "PUT", "POST", "DELETE")

    def __init__(self, request, project_id, name):
        super().__init__(request, project_id)
        self.name = name
        check_container_name(name)

    def row(self):
        return Container.objects.filter(account_id=self.project_id, name=self.name).first()

    def existing(self, operation):
        """The container once the caller may do `operation` on it; 404."""
        row = self.row()
        self.authorize(operation, row)
        if row is None:
            raise SwiftError(404)
        return row

    def headers(self, row):
        objects, used = usage.container_totals(row.pk)
        found = {
            "X-Container-Object-Count": str(objects),
            "X-Container-Bytes-Used": str(used),
            "X-Timestamp": swift_headers.timestamp_header(row.created_at),
            "X-Put-Timestamp": swift_headers.timestamp_header(row.created_at),
            "X-Storage-Policy": "Policy-0",
            "Accept-Ranges": "bytes",
            "Last-Modified": swift_headers.last_modified_header(row.created_at),
            **swift_headers.meta_headers("container", row.metadata),
        }
        if self.owner:  # ACLs are the owner's to see
            if row.read_acl:
                found["X-Container-Read"] = row.read_acl
            if row.write_acl:
                found["X-Container-Write"] = row.write_acl
        return found

    def changes(self):
        changes = swift_headers.metadata_from(self.request, "container")
        for name, message in (("quota-bytes", "Invalid bytes quota."), ("quota-count", "Invalid count quota.")):
            if changes.get(name) is not None:
                _non_negative(changes[name], message)
        acls = {}
        for header, referrers, field in (("X-Container-Read", True, "read_acl"),
                                         ("X-Container-Write", False, "write_acl")):
            if header in self.request.headers:
                value = self.request.headers[header]
                problem = access.acl_problem(value, referrers)
                if problem:
                    raise bad_request(problem)
                acls[field] = ",".join(access.parse_acl(value))
            elif f"X-Remove-{header[2:]}" in self.request.headers:
                acls[field] = ""
        return changes, acls

    def put(self):
        if "extract-archive" in self.request.GET:
            return bulk.extract_archive(self, self.name)
        self.authorize(OWNER)
        changes, acls = self.changes()
        current = self.row()
        swift_headers.check_metadata_totals(swift_headers.merged(current.metadata if current else {}, changes))
        created = data.create_container(self.project_id, self.name, changes if current else
                                        {k: v for k, v in changes.items() if v is not None}, **acls)
        return empty(201 if created else 202)

    def post(self):
        row = self.existing(OWNER)
        changes, acls = self.changes()
        swift_headers.check_metadata_totals(swift_headers.merged(row.metadata, changes))
        data.update_container(row, changes, **acls)
        return empty(204)

    def delete(self):
        row = self.existing(OWNER)
        if not data.delete_container(row):
            raise SwiftError(409)
        return empty(204)

    def get(self):
        row = self.existing(LIST)
        params = listing_parameters(self.request, data.CONTAINER_LISTING_LIMIT)
        entries = []
        if params["limit"]:
            for item in data.keyset_listing(Object.objects.filter(container=row), **params):
                entries.append({"subdir": item} if isinstance(item, str) else object_entry(item))
        return render_listing(self.request, "container", self.name, entries, self.headers(row))

    head = get


def object_entry(row):
    entry = {"hash": row.etag, "last_modified": swift_headers.listing_time(row.last_modified),
             "bytes": row.size, "name": row.name, "content_type": row.content_type}
    if row.slo_segments is not None:
        entry["slo_etag"] = f'"{row.etag}"'
    return entry


def check_object_name(name):
    length = len(name.encode())
    if length > data.MAX_OBJECT_NAME_LENGTH:
        raise bad_request(f"Object name length of {length} longer than {data.MAX_OBJECT_NAME_LENGTH}")


def parse_range(header, size):
    """(start, end inclusive) of a single byte range, None to send all;
    416 when no byte of it exists. Several ranges: the whole object."""
    if not header or not header.strip().lower().startswith("bytes="):
        return None
    spec = header.strip()[6:].strip()
    if "," in spec:
        return None
    first, dash, last = spec.partition("-")
    if not dash:
        return None
    try:
        if first.strip() == "":
            suffix = int(last)
            if suffix <= 0:
                raise ValueError
            return max(size - suffix, 0), size - 1
        start = int(first)
        end = int(last) if last.strip() else size - 1
    except ValueError:
        return None
    if start < 0 or (last.strip() and end < start):
        return None
    if start >= size:
        raise SwiftError(416, headers={"Content-Range": f"bytes */{size}"})
    return start, min(end, size - 1)


def _etags(header):
    return {part.strip().strip('"') for part in header.split(",") if part.strip()}


class ObjectController(Controller):
    methods = ("GET", "HEAD", "PUT", "POST", "DELETE", "COPY")

    def __init__(self, request, project_id, container_name, name):
        super().__init__(request, project_id)
        check_container_name(container_name)
        check_object_name(name)
        self.container_name, self.name = container_name, name
        self.via_tempurl = tempurl.is_tempurl(request)

    def container(self, operation):
        # With its account: a write's quota check reads both (objects.data.check_quota).
        row = rows.container_with_account(self.project_id, self.container_name)
        if self.via_tempurl:
            tempurl.verify(self.request, self.request.path, tempurl.keys_of(self.account_row(), row), self.name)
        else:
            self.authorize(operation, row)
        if row is None:
            raise SwiftError(404)
        return row

    def row(self, container):
        row = rows.object_named(container, self.name)
        if row is None or data.is_expired(row):
            raise SwiftError(404)
        return row

    def headers(self, row):
        found = {
            "ETag": f'"{row.etag}"' if (row.slo_segments is not None or row.dlo_manifest) else row.etag,
            "Content-Type": row.content_type,
            "Last-Modified": swift_headers.last_modified_header(row.last_modified),
            "X-Timestamp": swift_headers.timestamp_header(row.last_modified),
            "Accept-Ranges": "bytes",
            **swift_headers.meta_headers("object", row.metadata),
            **row.headers,
        }
        if row.delete_at is not None:
            found["X-Delete-At"] = str(row.delete_at)
        if row.slo_segments is not None:
            found["X-Static-Large-Object"] = "True"
        if row.dlo_manifest:
            found["X-Object-Manifest"] = row.dlo_manifest
        return found

    # --- reading

    def get(self):
        container = self.container(READ)
        row = self.row(container)
        if row.slo_segments is not None and self.request.GET.get("multipart-manifest") == "get":
            return large.manifest_response(self, row)
        body = large.content_of(self, container, row)  # (size, etag, chunks(start, end))
        headers = self.headers(row)
        headers["ETag"] = body.etag_header
        if self.via_tempurl and self.request.method == "GET":
            # As Swift's tempurl: `inline` alone, or with the filename asked for; else an
            # attachment named by `filename` or the object's last path part.
            filename = self.request.GET.get("filename")
            if "inline" in self.request.GET:
                headers["Content-Disposition"] = f'inline; filename="{filename}"' if filename else "inline"
            else:
                filename = filename or self.name.rsplit("/", 1)[-1]
                headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        not_modified = self.conditional(row, body.etag)
        if not_modified is not None:
            return not_modified
        span = parse_range(self.request.headers.get("Range"), body.size) if body.size else None
        status = 200
        start, end = 0, body.size - 1
        if span is not None:
            start, end = span
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{body.size}"
        length = end - start + 1
        if self.request.method == "HEAD" or length <= 0:
            response = HttpResponse(b"", status=status)
        elif status == 200 and body.data_key:
            try:
                response = large.whole_data_response(body.data_key)
            except stores.StoreError:
                raise SwiftError(503)
        else:
            response = StreamingHttpResponse(body.chunks(start, end), status=status)
        for name, value in headers.items():
            response[name] = value
        response["Content-Length"] = str(max(length, 0))
        return response

    head = get

    def conditional(self, row, etag):
        request_headers = self.request.headers
        if "If-Match" in request_headers:
            wanted = _etags(request_headers["If-Match"])
            if "*" not in wanted and etag not in wanted:
                raise SwiftError(412)
        if "If-None-Match" in request_headers:
            wanted = _etags(request_headers["If-None-Match"])
            if "*" in wanted or etag in wanted:
                return empty(304, {"ETag": etag, "Last-Modified":
                                   swift_headers.last_modified_header(row.last_modified)})
        modified = int(row.last_modified.timestamp() + 0.999999)
        since = parse_http_date_safe(request_headers.get("If-Modified-Since", ""))
        if since is not None and "If-None-Match" not in request_headers and modified <= since:
            return empty(304, {"ETag": etag})
        unmodified = parse_http_date_safe(request_headers.get("If-Unmodified-Since", ""))
        if unmodified is not None and modified > unmodified:
            raise SwiftError(412)
        return None

    # --- writing

    def expiry(self, current=None):
        """The X-Delete-At this write asks for (X-Delete-After counts from
        now), `current` when it names none; 400 for one in the past."""
        headers = self.request.headers
        now = time.time()
        if "X-Delete-After" in headers:
            try:
                after = int(headers["X-Delete-After"])
            except ValueError:
                raise bad_request("Non-integer X-Delete-After")
            if after <= 0:
                raise bad_request("X-Delete-After in past")
            return min(math.ceil(now + after), MAX_DELETE_AT)
        if "X-Delete-At" in headers:
            try:
                at = int(headers["X-Delete-At"])
            except ValueError:
                raise bad_request("Non-integer X-Delete-At")
            if at <= now:
                raise bad_request("X-Delete-At in past")
            return min(at, MAX_DELETE_AT)
        if "X-Remove-Delete-At" in headers:
            return None
        return current

    def kept_headers(self):
        """Headers an object keeps as they were given."""
        return {name: self.request.headers[name] for name in ("Content-Disposition", "Content-Encoding")
                if self.request.headers.get(name)}

    def content_type(self):
        given = self.request.headers.get("Content-Type", "")
        detect = self.request.headers.get("X-Detect-Content-Type", "").lower() in ("true", "1", "yes")
        if given and not detect:
            return given
        return mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    def new_metadata(self):
        # An object keeps a metadata item with an empty value, as Swift's do.
        metadata = swift_headers.metadata_from(self.request, "object", removals=False)
        swift_headers.check_metadata_totals(metadata)
        return metadata

    def put(self):
        if "X-Copy-From" in self.request.headers:
            source_container, source_name = split_copy_path(self.request.headers["X-Copy-From"], "X-Copy-From")
            return self.copy_object(source_container, source_name, self.container_name, self.name)
        container = self.container(WRITE)
        if self.request.GET.get("multipart-manifest") == "put":
            return large.put_manifest(self, container)
        metadata = self.new_metadata()
        delete_at = self.expiry()
        length = request_length(self.request)
        if length is not None:
            # Refused before the body is read when it cannot fit; the
            # commit checks again, exactly, under the rows' locks.
            try:
                data.check_quota(container, self.name, length)
            except data.QuotaExceeded as error:
                raise SwiftError(413, str(error))
        if self.request.headers.get("If-None-Match") == "*" and Object.objects.filter(
                container=container, name=self.name).exists():
            raise SwiftError(412)
        manifest = self.dlo_manifest()
        key, size, etag = receive(self.request, length)
        expected = self.request.headers.get("ETag", "").strip('"').lower()
        if expected and expected != etag:
            data.discard_data(key)
            raise SwiftError(422)
        fields = self.fields(key, size, etag, metadata, delete_at)
        fields["dlo_manifest"] = manifest
        row = commit(container, self.name, fields, key,
                     if_none_match=self.request.headers.get("If-None-Match") == "*")
        return empty(201, {"ETag": row.etag, "Last-Modified": swift_headers.last_modified_header(row.last_modified)})

    def fields(self, key, size, etag, metadata, delete_at):
        return {"size": size, "etag": etag, "content_type": self.content_type(), "metadata": metadata,
                "headers": self.kept_headers(), "data_key": key, "last_modified": data.current_time(),
                "delete_at": delete_at, "slo_segments": None, "dlo_manifest": ""}

    def post(self):
        container = self.container(WRITE)
        row = self.row(container)
        metadata = self.new_metadata()
        row.metadata = metadata
        row.delete_at = self.expiry(row.delete_at)
        if self.request.headers.get("Content-Type"):
            row.content_type = self.request.headers["Content-Type"]
        row.headers = {**row.headers, **self.kept_headers()}
        row.last_modified = data.current_time()
        if row.slo_segments is None:
            # As Swift's object server keeps it: X-Object-Manifest is among what a POST sets, and a
            # POST without it leaves a plain object.
            row.dlo_manifest = self.dlo_manifest()
        Object.objects.filter(pk=row.pk).update(metadata=row.metadata, delete_at=row.delete_at,
                                                content_type=row.content_type, headers=row.headers,
                                                last_modified=row.last_modified, dlo_manifest=row.dlo_manifest)
        return empty(202)

    def dlo_manifest(self):
        """The request's X-Object-Manifest (`container/prefix`), '' without one; 400 in another form."""
        value = self.request.headers.get("X-Object-Manifest")
        if not value:
            return ""
        manifest = unquote(value)
        if "/" not in manifest.strip("/") or manifest.startswith("/"):
            raise bad_request("X-Object-Manifest must be in the format container/prefix")
        return manifest

    def delete(self):
        container = self.container(WRITE)
        row = rows.object_named(container, self.name)
        if row is None:
            raise SwiftError(404)
        if data.is_expired(row):
            # As Swift's object server: an expired object not reaped yet goes now, and is not found.
            data.delete_object(container, self.name)
            raise SwiftError(404)
        if row.slo_segments is not None and self.request.GET.get("multipart-manifest") == "delete":
            return large.delete_with_segments(self, container, row)
        if not data.delete_object(container, self.name):
            raise SwiftError(404)
        return empty(204)

    def copy_object(self, source_container_name, source_name, target_container_name, target_name):
        """COPY or PUT with X-Copy-From: the source's content (a large
        object's whole content) into a new object, with the source's
        metadata updated by the request's (all new with X-Fresh-Metadata)."""
        check_container_name(target_container_name)
        check_object_name(target_name)
        source_container = Container.objects.filter(account_id=self.project_id, name=source_container_name).first()
        self.authorize(READ, source_container)
        if source_container is None:
            raise SwiftError(404)
        target_container = Container.objects.filter(account_id=self.project_id, name=target_container_name).first()
        self.authorize(WRITE, target_container)
        if target_container is None:
            raise SwiftError(404)
        source = Object.objects.filter(container=source_container, name=source_name).first()
        if source is None or data.is_expired(source):
            raise SwiftError(404)
        fresh = self.request.headers.get("X-Fresh-Metadata", "").lower() in ("true", "1", "yes")
        metadata = swift_headers.merged({} if fresh else source.metadata, self.new_metadata())
        swift_headers.check_metadata_totals(metadata)
        delete_at = self.expiry()
        if source.slo_segments is not None and self.request.GET.get("multipart-manifest") == "get":
            fields = {f: getattr(source, f) for f in ("size", "etag", "slo_segments")}
            fields.update(content_type=source.content_type, metadata=metadata, headers=source.headers,
                          data_key="", last_modified=data.current_time(), delete_at=delete_at, dlo_manifest="")
            key = ""
        else:
            body = large.content_of(self, source_container, source)
            key, size, etag = data.store_data(body.chunks(0, body.size - 1) if body.size else iter(()))
            fields = {"size": size, "etag": etag,
                      "content_type": self.request.headers.get("Content-Type") or source.content_type,
                      "metadata": metadata, "headers": {**({} if fresh else source.headers), **self.kept_headers()},
                      "data_key": key, "last_modified": data.current_time(), "delete_at": delete_at,
                      "slo_segments": None, "dlo_manifest": ""}
        row = commit(target_container, target_name, fields, key)
        # As Swift's copy middleware: the copy's metadata and expiry come back with it.
        answer = {"ETag": row.etag, "X-Copied-From": quote(f"{source_container_name}/{source_name}"),
                  "X-Copied-From-Account": quote(f"AUTH_{self.project_id}"),
                  "X-Copied-From-Last-Modified": swift_headers.last_modified_header(source.last_modified),
                  "Last-Modified": swift_headers.last_modified_header(row.last_modified),
                  **swift_headers.meta_headers("object", row.metadata)}
        if row.delete_at is not None:
            answer["X-Delete-At"] = str(row.delete_at)
        return empty(201, answer)

    def copy(self):
        destination = self.request.headers.get("Destination")
        if not destination:
            raise SwiftError(412, "You must specify a Destination header")
        target_container, target_name = split_copy_path(destination, "Destination")
        return self.copy_object(self.container_name, self.name, target_container, target_name)



def split_copy_path(value, header):
    path = unquote(value).lstrip("/")
    container, _, name = path.partition("/")
    if not container or not name:
        raise SwiftError(412, f"{header} header must be of the form <container name>/<object name>")
    return container, name


def request_length(request):
    """The body's declared length, None when chunked; 411 without either,
    413 past the largest object."""
    meta = request.META
    if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    raw = meta.get("CONTENT_LENGTH")
    if raw in (None, ""):
        raise SwiftError(411)
    try:
        length = int(raw)
    except ValueError:
        raise bad_request("Invalid Content-Length")
    if length < 0:
        raise bad_request("Invalid Content-Length")
    if length > data.MAX_FILE_SIZE:
        raise SwiftError(413, "Your request is too large.")
    return length


def body_chunks(request, length):
    """The request body in chunks; a body that ends before its
    Content-Length (the client went away) raises SizeMismatch."""
    direct = None if length is None else _gunicorn_body(request, length)
    if direct is not None:
        yield from _socket_chunks(*direct, length)
        return
    stream = request.META["wsgi.input"] if length is None else request
    received = 0
    while True:
        wanted = data.CHUNK_SIZE if length is None else min(data.CHUNK_SIZE, length - received)
        if wanted <= 0:
            break
        try:
            chunk = stream.read(wanted)
        except (OSError, ValueError):
            chunk = b""
        if not chunk:
            break
        received += len(chunk)
        yield chunk
    if length is not None and received != length:
        raise data.SizeMismatch(received, length)


def _gunicorn_body(request, length):
    """(socket, gunicorn's reader of the body, the bytes of it gunicorn has
    read ahead already) when gunicorn serves the request and no byte of its
    body of `length` has been read yet; else None. Read through gunicorn's
    buffers each byte is copied four times more on the way in, which costs
    the API about as much CPU as the body's MD5."""
    sock = request.META.get("gunicorn.socket")
    reader = getattr(request.META.get("wsgi.input"), "reader", None)
    unreader = getattr(reader, "unreader", None)
    if sock is None or type(reader).__name__ != "LengthReader" or reader.length != length \
            or not hasattr(unreader, "take_buffered"):
        return None
    ahead = unreader.take_buffered()
    if len(ahead) > length:  # the start of a pipelined request: gunicorn's again
        unreader.unread(ahead[length:])
        ahead = ahead[:length]
    return sock, reader, ahead


def _socket_chunks(sock, reader, ahead, length):
    """The body in chunks of CHUNK_SIZE received straight into their own
    buffers; gunicorn's reader is told what was taken, so that it finds
    the next request where it starts (or, after an error, drops the
    connection)."""
    received = 0
    while received < length:
        chunk = bytearray(min(data.CHUNK_SIZE, length - received))
        view = memoryview(chunk)
        filled = min(len(ahead), len(chunk))
        view[:filled] = ahead[:filled]
        ahead = ahead[filled:]
        while filled < len(chunk):
            try:
                count = sock.recv_into(view[filled:])
            except OSError:
                count = 0
            if not count:
                reader.length = length - received - filled
                raise data.SizeMismatch(received + filled, length)
            filled += count
        received += filled
        reader.length = length - received
        yield chunk


def receive(request, length):
    """Streams the body into the store: (key, size, etag)."""
    try:
        return data.store_data(body_chunks(request, length))
    except data.SizeMismatch:
        raise SwiftError(499)
    except data.QuotaExceeded:
        raise SwiftError(413, "Your request is too large.")
    except stores.StoreFull:
        raise SwiftError(507, "Insufficient Storage")
    except stores.StoreError:
        raise SwiftError(503)


def commit(container, name, fields, key, if_none_match=False):
    """Writes the row for data already stored; the data goes when the row
    cannot be written."""
    try:
        row = data.commit_object(container, name, fields, if_none_match=if_none_match)
    except data.QuotaExceeded as error:
        data.discard_data(key)
        raise SwiftError(413, str(error))
    except data.ContainerGone:
        data.discard_data(key)
        raise SwiftError(404)
    except BaseException:
        data.discard_data(key)
        raise
    if row is None:
        data.discard_data(key)
        raise SwiftError(412)
    return row


def info(request):
    """Swift's /info: the capabilities this store implements."""
    return JsonResponse({
        "swift": {
            "version": SWIFT_VERSION,
            "max_file_size": data.MAX_FILE_SIZE,
            "max_meta_name_length": data.MAX_META_NAME_LENGTH,
            "max_meta_value_length": data.MAX_META_VALUE_LENGTH,
            "max_meta_count": data.MAX_META_COUNT,
            "max_meta_overall_size": data.MAX_META_OVERALL_SIZE,
            "max_header_size": data.MAX_HEADER_SIZE,
            "max_object_name_length": data.MAX_OBJECT_NAME_LENGTH,
            "max_container_name_length": data.MAX_CONTAINER_NAME_LENGTH,
            "max_account_name_length": data.MAX_ACCOUNT_NAME_LENGTH,
            "container_listing_limit": data.CONTAINER_LISTING_LIMIT,
            "account_listing_limit": data.ACCOUNT_LISTING_LIMIT,
            "extra_header_count": data.EXTRA_HEADER_COUNT,
            "strict_cors_mode": True,
            "policies": [{"name": "Policy-0", "aliases": "Policy-0", "default": True}],
            "allow_account_management": False,
            "account_autocreate": True,
        },
        "tempurl": {"methods": list(tempurl.METHODS), "allowed_digests": sorted(tempurl.DIGESTS),
                    "incoming_remove_headers": [], "outgoing_remove_headers": []},
        "slo": {"max_manifest_segments": data.SLO_MAX_MANIFEST_SEGMENTS,
                "max_manifest_size": data.SLO_MAX_MANIFEST_SIZE, "min_segment_size": data.SLO_MIN_SEGMENT_SIZE,
                "yield_frequency": 10},
        "dlo": {"max_get_time": 86400},
        "bulk_delete": {"max_deletes_per_request": data.BULK_MAX_DELETES_PER_REQUEST,
                        "max_failed_deletes": data.BULK_MAX_DELETES_PER_REQUEST},
        "bulk_upload": {"max_containers_per_extraction": bulk.MAX_CONTAINERS_PER_EXTRACTION,
                        "max_failed_extractions": bulk.MAX_FAILED_EXTRACTIONS},
        "healthcheck": {},
        "container_quotas": {},
        "account_quotas": {},
        "keystoneauth": {},
    })


def healthcheck(request):
    """Swift's healthcheck: OK while this API process can reach the database."""
    connection.ensure_connection()
    return HttpResponse(b"OK", content_type="text/plain")
