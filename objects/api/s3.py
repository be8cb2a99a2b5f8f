"""S3's REST API, path-style, at `/object-store/s3/<bucket>/<key>`, over the
same accounts, containers and objects as Swift: a bucket is a container of
the signing key's project, an object is the same row and data either API
reads. Authentication is objects.api.s3auth (Signature V4); errors are S3's
XML (objects.api.s3errors)."""
import base64
import binascii
import hashlib
import re
import zlib
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import parse_http_date_safe
from django.views.decorators.csrf import csrf_exempt

from objects import data, multipart, stores
from objects.api import access, headers as swift_headers, large, s3chunked
from objects.api.errors import SwiftError
from objects.api.s3auth import UNSIGNED_PAYLOAD, authenticate
from objects.api.s3errors import S3Error, malformed_xml, no_such_bucket, no_such_key, no_such_upload
from objects.api.views import body_chunks, parse_range, request_length
from objects.models import Container, MultipartUpload, Object, UploadPart

XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_KEYS = 1000
MAX_DELETE_KEYS = 1000
MAX_XML_BODY = 2 * 2**20
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
PUBLIC_READ_ACL = ".r:*,.rlistings"
CANNED_ACLS = {"private": "", "public-read": PUBLIC_READ_ACL}
# Headers an object keeps as given, as Swift keeps them.
KEPT_HEADERS = ("Content-Disposition", "Content-Encoding")
RESPONSE_OVERRIDES = {"response-content-type": "Content-Type", "response-content-disposition": "Content-Disposition",
                      "response-content-encoding": "Content-Encoding", "response-content-language": "Content-Language",
                      "response-cache-control": "Cache-Control", "response-expires": "Expires"}
# Bucket and object sub-resources of S3 this API does not have.
NOT_BUILT = {"versioning", "versions", "policy", "cors", "lifecycle", "tagging", "website", "logging",
             "notification", "replication", "encryption", "object-lock", "retention", "legal-hold",
             "accelerate", "requestPayment", "inventory", "analytics", "metrics", "ownershipControls",
             "publicAccessBlock", "intelligent-tiering", "torrent", "restore", "select", "attributes"}
# What a Swift error raised by the shared code means in S3's words.
FROM_SWIFT = {400: ("InvalidArgument", 400), 409: ("InvalidObjectState", 409), 411: ("MissingContentLength", 411),
              413: ("EntityTooLarge", 400), 416: ("InvalidRange", 416), 503: ("ServiceUnavailable", 503)}


@csrf_exempt
def s3(request, bucket="", key=""):
    try:
        caller = authenticate(request)
        response = S3Request(request, caller, bucket or "", key or "").handle()
    except S3Error as error:
        response = error.response(request)
    except SwiftError as error:
        code, status = FROM_SWIFT.get(error.status, ("InternalError", 500))
        response = S3Error(code, status, error.message or code).response(request)
    return response


def iso_time(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def xml_response(root, body, status=200):
    text = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{XMLNS}">{body}</{root}>'
    return HttpResponse(text.encode(), status=status, content_type="application/xml")


def element(name, value):
    return f"<{name}>{escape(str(value))}</{name}>"


def empty(status=200, headers=None):
    response = HttpResponse(b"", status=status)
    response["Content-Length"] = "0"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def quoted(etag):
    return f'"{etag}"'


def _etags(header):
    return {part.strip().strip('"') for part in header.split(",") if part.strip()}


@dataclass
class Project:
    """What the shared large-object reader needs of the caller."""
    project_id: str


class Crc32:
    def __init__(self):
        self.value = 0

    def update(self, chunk):
        self.value = zlib.crc32(chunk, self.value)

    def digest(self):
        return self.value.to_bytes(4, "big")


# x-amz-checksum-<name> headers checked (base64 of the digest); the others
# (crc32c, crc64nvme) are taken unchecked.
CHECKSUMS = {"crc32": Crc32, "sha1": lambda: hashlib.sha1(usedforsecurity=False), "sha256": hashlib.sha256}


def verified(chunks, caller, content_md5, request_headers=None):
    """Passes the body through, and once it has all passed, fails (so the
    store keeps nothing) when it is not the body the client signed, named
    by Content-MD5 or by an x-amz-checksum-* header (or trailer, after an
    aws-chunked body)."""
    request_headers = request_headers or {}
    sha256 = hashlib.sha256() if caller and caller.payload_hash != UNSIGNED_PAYLOAD else None
    md5 = hashlib.md5(usedforsecurity=False) if content_md5 is not None else None
    streaming = caller.streaming if caller else None
    trailers = streaming.trailers if streaming else {}
    declared = {name.strip().lower() for name in request_headers.get("x-amz-trailer", "").split(",")} \
        if streaming else set()
    checksums = [(name, make()) for name, make in CHECKSUMS.items()
                 if request_headers.get(f"x-amz-checksum-{name}") or f"x-amz-checksum-{name}" in declared]
    for chunk in chunks:
        if sha256 is not None:
            sha256.update(chunk)
        if md5 is not None:
            md5.update(chunk)
        for _, hasher in checksums:
            hasher.update(chunk)
        yield chunk
    for name, hasher in checksums:
        given = request_headers.get(f"x-amz-checksum-{name}") or trailers.get(f"x-amz-checksum-{name}")
        if given is None:
            raise S3Error("MalformedTrailerError", 400, f"The trailer x-amz-checksum-{name} the request "
                                                        f"announced is missing.")
        if base64.b64encode(hasher.digest()).decode() != given.strip():
            raise S3Error("BadDigest", 400, f"The {name.upper()} you specified did not match the calculated "
                                            f"checksum.")
    if sha256 is not None and sha256.hexdigest() != caller.payload_hash.lower():
        raise S3Error("XAmzContentSHA256Mismatch", 400,
                      "The provided 'x-amz-content-sha256' header does not match what was computed.")
    if md5 is not None and md5.digest() != content_md5:
        raise S3Error("BadDigest", 400, "The Content-MD5 you specified did not match what we received.")


class S3Request:
    def __init__(self, request, caller, bucket, key):
        self.request, self.caller, self.bucket, self.key = request, caller, bucket, key
        self.params = request.GET
        self.method = request.method

    # --- routing

    def handle(self):
        for name in self.params:
            if name in NOT_BUILT:
                raise S3Error("NotImplemented", 501, f"The '{name}' sub-resource is not implemented.")
        if len(self.bucket.encode()) > data.MAX_CONTAINER_NAME_LENGTH:
            raise S3Error("InvalidBucketName", 400, "The specified bucket is not valid.", BucketName=self.bucket)
        if self.key and len(self.key.encode()) > data.MAX_OBJECT_NAME_LENGTH:
            raise S3Error("KeyTooLongError", 400, "Your key is too long")
        if not self.bucket:
            route = {"GET": self.list_buckets}
        elif not self.key:
            route = {"PUT": self.put_bucket_acl if "acl" in self.params else self.create_bucket,
                     "HEAD": self.head_bucket, "DELETE": self.delete_bucket,
                     "POST": self.delete_objects if "delete" in self.params else None,
                     "GET": self.get_bucket}
        else:
            route = {"PUT": self.put_object, "GET": self.get_object, "HEAD": self.get_object,
                     "DELETE": self.abort_upload if "uploadId" in self.params else self.delete_object,
                     "POST": self.post_object}
        view = route.get(self.method)
        if view is None:
            raise S3Error("MethodNotAllowed", 405, "The specified method is not allowed against this resource.")
        return view()

    # --- who may do what

    def owner_id(self):
        return self.caller.project_id

    def signed(self):
        if self.caller is None:
            raise S3Error("AccessDenied", 403, "Access Denied")
        return self.caller

    def container(self, anonymous=None):
        """The bucket: the signing project's container of that name; an
        unsigned request reaches only a public-read one (`anonymous` READ or
        LIST), the one container of that name that is."""
        if self.caller is not None:
            row = Container.objects.filter(account_id=self.caller.project_id, name=self.bucket) \
                .select_related("account").first()
            if row is None:
                raise no_such_bucket(self.bucket)
            return row
        if anonymous is None:
            raise S3Error("AccessDenied", 403, "Access Denied")
        public = [row for row in Container.objects.filter(name=self.bucket, read_acl__contains=".r:*")[:2]
                  if ".r:*" in access.parse_acl(row.read_acl)
                  and (anonymous == access.READ or ".rlistings" in access.parse_acl(row.read_acl))]
        if len(public) != 1:
            raise S3Error("AccessDenied", 403, "Access Denied")
        return public[0]

    # --- buckets

    def list_buckets(self):
        caller = self.signed()
        rows = Container.objects.filter(account_id=caller.project_id).order_by("name")[:10000]
        buckets = "".join(f"<Bucket>{element('Name', row.name)}{element('CreationDate', iso_time(row.created_at))}"
                          f"</Bucket>" for row in rows)
        return xml_response("ListAllMyBucketsResult", f"{self.owner_xml()}<Buckets>{buckets}</Buckets>")

    def owner_xml(self, project_id=None):
        owner = project_id or self.caller.project_id
        return f"<Owner>{element('ID', owner)}{element('DisplayName', owner)}</Owner>"

    def canned_acl(self):
        name = self.request.headers.get("x-amz-acl", "private")
        if name not in CANNED_ACLS:
            raise S3Error("NotImplemented", 501, f"The canned ACL '{name}' is not implemented; "
                                                 f"use private or public-read.")
        return CANNED_ACLS[name]

    def create_bucket(self):
        caller = self.signed()
        if not BUCKET_NAME.match(self.bucket) or ".." in self.bucket or IP_ADDRESS.match(self.bucket):
            raise S3Error("InvalidBucketName", 400, "The specified bucket is not valid.", BucketName=self.bucket)
        read_acl = self.canned_acl()
        self.small_body()  # a CreateBucketConfiguration: one region here, whatever it names
        if Container.objects.filter(account_id=caller.project_id, name=self.bucket).exists() or \
                not data.create_container(caller.project_id, self.bucket, {}, read_acl=read_acl):
            raise S3Error("BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket "
                                                          "succeeded and you already own it.", BucketName=self.bucket)
        return empty(200, {"Location": f"/{self.bucket}"})

    def head_bucket(self):
        self.container(anonymous=access.LIST)
        return empty(200)

    def delete_bucket(self):
        row = self.container()
        if Object.objects.filter(container=row).exists():
            raise S3Error("BucketNotEmpty", 409, "The bucket you tried to delete is not empty",
                          BucketName=self.bucket)
        if not data.delete_container(row):
            raise S3Error("BucketNotEmpty", 409, "The bucket you tried to delete is not empty",
                          BucketName=self.bucket)
        return empty(204)

    def put_bucket_acl(self):
        row = self.container()
        if "x-amz-acl" not in self.request.headers:
            raise S3Error("NotImplemented", 501, "Only canned ACLs (x-amz-acl: private or public-read) are "
                                                 "implemented.")
        data.update_container(row, {}, read_acl=self.canned_acl())
        return empty(200)

    def get_bucket(self):
        if "acl" in self.params:
            return self.get_bucket_acl()
        if "location" in self.params:
            self.container()
            return xml_response("LocationConstraint", "")
        if "uploads" in self.params:
            return self.list_uploads()
        return self.list_objects()

    def get_bucket_acl(self):
        row = self.container()
        owner = f"<ID>{escape(row.account_id)}</ID><DisplayName>{escape(row.account_id)}</DisplayName>"
        grants = (f'<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
                  f"{owner}</Grantee><Permission>FULL_CONTROL</Permission></Grant>")
        if ".r:*" in access.parse_acl(row.read_acl):
            grants += ('<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group">'
                       "<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>"
                       "<Permission>READ</Permission></Grant>")
        return xml_response("AccessControlPolicy", f"<Owner>{owner}</Owner><AccessControlList>{grants}"
                                                   f"</AccessControlList>")

    # --- listing

    def max_keys(self, name="max-keys"):
        raw = self.params.get(name, str(MAX_KEYS))
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if value < 0:
            raise S3Error("InvalidArgument", 400, f"Provided {name} not an integer or within integer range",
                          ArgumentName=name, ArgumentValue=raw)
        return min(value, MAX_KEYS)

    def list_objects(self):
        row = self.container(anonymous=access.LIST)
        version2 = self.params.get("list-type") == "2"
        encoding = self.params.get("encoding-type")
        if encoding not in (None, "url"):
            raise S3Error("InvalidArgument", 400, "Invalid Encoding Method specified in Request",
                          ArgumentName="encoding-type", ArgumentValue=encoding)
        encode = (lambda text: quote(text, safe="/")) if encoding == "url" else (lambda text: text)
        prefix, delimiter = self.params.get("prefix", ""), self.params.get("delimiter", "")
        max_keys = self.max_keys()
        if version2:
            token = self.params.get("continuation-token")
            if token is not None:
                try:
                    marker = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
                    if not marker:
                        raise ValueError(token)
                except (binascii.Error, UnicodeDecodeError, ValueError):
                    raise S3Error("InvalidArgument", 400, "The continuation token provided is incorrect",
                                  ArgumentName="continuation-token")
            else:
                marker = self.params.get("start-after", "")
        else:
            marker = self.params.get("marker", "")
        items = []
        if max_keys:
            items = data.keyset_listing(Object.objects.filter(container=row), max_keys + 1, prefix=prefix,
                                        delimiter=delimiter, marker=marker)
        truncated = len(items) > max_keys
        items = items[:max_keys]
        last = (items[-1] if isinstance(items[-1], str) else items[-1].name) if items else ""
        show_owner = not version2 or self.params.get("fetch-owner") == "true"
        parts = [element("Name", self.bucket), element("Prefix", encode(prefix))]
        if version2:
            if "continuation-token" in self.params:
                parts.append(element("ContinuationToken", self.params["continuation-token"]))
            if "start-after" in self.params:
                parts.append(element("StartAfter", encode(self.params["start-after"])))
            parts.append(element("KeyCount", len(items)))
            if truncated:
                parts.append(element("NextContinuationToken", base64.urlsafe_b64encode(last.encode()).decode()))
        else:
            parts.append(element("Marker", encode(marker)))
            if truncated and delimiter:
                parts.append(element("NextMarker", encode(last)))
        parts.append(element("MaxKeys", max_keys))
        if delimiter:
            parts.append(element("Delimiter", encode(delimiter)))
        if encoding:
            parts.append(element("EncodingType", encoding))
        parts.append(element("IsTruncated", "true" if truncated else "false"))
        for item in items:
            if isinstance(item, str):
                parts.append(f"<CommonPrefixes>{element('Prefix', encode(item))}</CommonPrefixes>")
            else:
                parts.append(f"<Contents>{element('Key', encode(item.name))}"
                             f"{element('LastModified', iso_time(item.last_modified))}"
                             f"{element('ETag', quoted(item.etag))}{element('Size', item.size)}"
                             f"{self.owner_xml(row.account_id) if show_owner else ''}"
                             f"<StorageClass>STANDARD</StorageClass></Contents>")
        return xml_response("ListBucketResult", "".join(parts))

    # --- request bodies

    def content_md5(self):
        header = self.request.headers.get("Content-MD5")
        if header is None:
            return None
        try:
            digest = base64.b64decode(header.strip(), validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 16:
            raise S3Error("InvalidDigest", 400, "The Content-MD5 you specified was invalid.", Content_MD5=header)
        return digest

    def body(self, length):
        """The request body's chunks (decoded when aws-chunked) and their
        length, None when unknown; `length` is what the request declares."""
        chunks = body_chunks(self.request, length)
        streaming = self.caller.streaming if self.caller else None
        if streaming is None:
            return chunks, length
        raw = self.request.headers.get("x-amz-decoded-content-length")
        try:
            decoded_length = int(raw)
            if decoded_length < 0:
                raise ValueError(raw)
        except (TypeError, ValueError):
            raise S3Error("MissingContentLength", 411, "An aws-chunked upload needs an "
                                                       "x-amz-decoded-content-length header.")
        return s3chunked.decoded(chunks, streaming, decoded_length), decoded_length

    def small_body(self):
        """A request's XML body, checked against its signature and Content-MD5."""
        length = request_length(self.request) if self.request.META.get("CONTENT_LENGTH") else 0
        if length is not None and length > MAX_XML_BODY:
            raise S3Error("MaxMessageLengthExceeded", 400, "Your request was too big.")
        chunks, _ = self.body(length)
        try:
            return b"".join(verified(chunks, self.caller, self.content_md5(), self.request.headers))
        except data.SizeMismatch:
            raise incomplete_body()

    def parsed_body(self, root):
        body = self.small_body()
        try:
            tree = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            raise malformed_xml()
        if tree.tag.split("}")[-1] != root:
            raise malformed_xml()
        return tree

    def store_body(self, container, part=False):
        """Streams the request body (an object's, or a multipart upload's
        `part`) into the store: (key, size, md5 hex)."""
        chunks, length = self.body(request_length(self.request))
        if length is not None:
            try:
                data.check_quota(container, None if part else self.key, length)
            except data.QuotaExceeded as error:
                raise quota_exceeded(error)
        return self.store(verified(chunks, self.caller, self.content_md5(), self.request.headers))

    @staticmethod
    def store(chunks, limit=data.MAX_FILE_SIZE):
        try:
            return data.store_data(chunks, limit)
        except data.SizeMismatch:
            raise incomplete_body()
        except data.QuotaExceeded:
            raise S3Error("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size.")
        except stores.StoreError:
            raise S3Error("ServiceUnavailable", 503, "The object store could not take the data; try again.")

    # --- objects

    def new_metadata(self):
        metadata = {name: value for name, value in
                    swift_headers.metadata_from(self.request, "amz", removals=False).items() if value}
        swift_headers.check_metadata_totals(metadata)
        return metadata

    def kept_headers(self):
        kept = {name: self.request.headers[name] for name in KEPT_HEADERS if self.request.headers.get(name)}
        if "Content-Encoding" in kept:
            # aws-chunked is how this request's body came, not how the object is.
            encodings = [part.strip() for part in kept.pop("Content-Encoding").split(",")
                         if part.strip() and part.strip().lower() != "aws-chunked"]
            if encodings:
                kept["Content-Encoding"] = ", ".join(encodings)
        return kept

    def content_type(self):
        return self.request.headers.get("Content-Type") or "binary/octet-stream"

    def commit(self, container, fields):
        try:
            return data.commit_object(container, self.key, fields)
        except data.QuotaExceeded as error:
            data.discard_data(fields["data_key"])
            raise quota_exceeded(error)
        except data.ContainerGone:
            data.discard_data(fields["data_key"])
            raise no_such_bucket(self.bucket)
        except BaseException:
            data.discard_data(fields["data_key"])
            raise

    def object_fields(self, key, size, etag, metadata, content_type, headers):
        return {"size": size, "etag": etag, "content_type": content_type, "metadata": metadata, "headers": headers,
                "data_key": key, "last_modified": data.current_time(), "delete_at": None, "slo_segments": None,
                "dlo_manifest": ""}

    def put_object(self):
        self.signed()
        if "uploadId" in self.params or "partNumber" in self.params:
            return self.upload_part()
        if "acl" in self.params:
            raise object_acl_refused()
        container = self.container()
        if "x-amz-copy-source" in self.request.headers:
            return self.copy_object(container)
        if self.canned_acl():
            raise object_acl_refused()
        metadata = self.new_metadata()
        key, size, etag = self.store_body(container)
        row = self.commit(container, self.object_fields(key, size, etag, metadata, self.content_type(),
                                                        self.kept_headers()))
        return empty(200, {"ETag": quoted(row.etag)})

    def copy_source(self):
        """(container, object row) named by x-amz-copy-source, of the caller's project."""
        source = unquote(self.request.headers["x-amz-copy-source"]).split("?versionId=")[0].lstrip("/")
        bucket, _, name = source.partition("/")
        if not bucket or not name:
            raise S3Error("InvalidArgument", 400, "Copy Source must mention the source bucket and key: "
                                                  "sourcebucket/sourcekey", ArgumentName="x-amz-copy-source")
        container = Container.objects.filter(account_id=self.caller.project_id, name=bucket).first()
        if container is None:
            raise no_such_bucket(bucket)
        row = Object.objects.filter(container=container, name=name).first()
        if row is None or data.is_expired(row):
            raise no_such_key(name)
        wanted = self.request.headers.get("x-amz-copy-source-if-match")
        if wanted and row.etag not in _etags(wanted) and "*" not in _etags(wanted):
            raise S3Error("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold",
                          Condition="x-amz-copy-source-If-Match")
        unwanted = self.request.headers.get("x-amz-copy-source-if-none-match")
        if unwanted and (row.etag in _etags(unwanted) or "*" in _etags(unwanted)):
            raise S3Error("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold",
                          Condition="x-amz-copy-source-If-None-Match")
        return container, row

    def copy_object(self, container):
        source_container, source = self.copy_source()
        directive = self.request.headers.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise S3Error("InvalidArgument", 400, "Unknown metadata directive.",
                          ArgumentName="x-amz-metadata-directive", ArgumentValue=directive)
        if directive == "COPY" and source_container.pk == container.pk and source.name == self.key:
            raise S3Error("InvalidRequest", 400, "This copy request is illegal because it is trying to copy an "
                                                 "object to itself without changing the object's metadata, storage "
                                                 "class, website redirect location or encryption attributes.")
        if directive == "REPLACE":
            metadata, content_type, headers = self.new_metadata(), self.content_type(), self.kept_headers()
        else:
            metadata, content_type, headers = source.metadata, source.content_type, source.headers
        body = large.content_of(Project(self.caller.project_id), source_container, source)
        key, size, etag = self.store(body.chunks(0, body.size - 1) if body.size else iter(()))
        row = self.commit(container, self.object_fields(key, size, etag, metadata, content_type, headers))
        return xml_response("CopyObjectResult", element("LastModified", iso_time(row.last_modified))
                            + element("ETag", quoted(row.etag)))

    def object_row(self, container):
        row = Object.objects.filter(container=container, name=self.key).first()
        if row is None or data.is_expired(row):
            raise no_such_key(self.key)
        return row

    def object_headers(self, row):
        found = {"ETag": quoted(row.etag), "Content-Type": row.content_type, "Accept-Ranges": "bytes",
                 "Last-Modified": swift_headers.last_modified_header(row.last_modified), **row.headers}
        for name, value in row.metadata.items():
            found[f"x-amz-meta-{name}"] = value
        return found

    def conditional(self, row):
        """S3's conditional GET: a 304 response, a 412 error, or None to send."""
        headers = self.request.headers
        modified = int(row.last_modified.timestamp() + 0.999999)
        if "If-Match" in headers:
            wanted = _etags(headers["If-Match"])
            if "*" not in wanted and row.etag not in wanted:
                raise S3Error("PreconditionFailed", 412, "At least one of the pre-conditions you specified did "
                                                         "not hold", Condition="If-Match")
        else:
            unmodified = parse_http_date_safe(headers.get("If-Unmodified-Since", ""))
            if unmodified is not None and modified > unmodified:
                raise S3Error("PreconditionFailed", 412, "At least one of the pre-conditions you specified did "
                                                         "not hold", Condition="If-Unmodified-Since")
        not_modified = empty(304, {"ETag": quoted(row.etag),
                                   "Last-Modified": swift_headers.last_modified_header(row.last_modified)})
        if "If-None-Match" in headers:
            unwanted = _etags(headers["If-None-Match"])
            if "*" in unwanted or row.etag in unwanted:
                return not_modified
        else:
            since = parse_http_date_safe(headers.get("If-Modified-Since", ""))
            if since is not None and modified <= since:
                return not_modified
        return None

    def get_object(self):
        if "uploadId" in self.params:
            return self.list_parts()
        container = self.container(anonymous=access.READ)
        row = self.object_row(container)
        not_modified = self.conditional(row)
        if not_modified is not None:
            return not_modified
        body = large.content_of(Project(container.account_id), container, row)
        headers = self.object_headers(row)
        span = parse_range(self.request.headers.get("Range"), body.size) if body.size else None
        status, start, end = 200, 0, body.size - 1
        if span is not None:
            status, (start, end) = 206, span
            headers["Content-Range"] = f"bytes {start}-{end}/{body.size}"
        if self.caller is not None:
            for name, header in RESPONSE_OVERRIDES.items():
                if name in self.params:
                    headers[header] = self.params[name]
        length = end - start + 1
        if self.method == "HEAD" or length <= 0:
            response = HttpResponse(b"", status=status)
        elif status == 200 and body.data_key:
            try:
                response = large.whole_data_response(body.data_key)
            except stores.StoreError:
                raise S3Error("ServiceUnavailable", 503, "The object's data could not be read; try again.")
        else:
            response = StreamingHttpResponse(body.chunks(start, end), status=status)
        for name, value in headers.items():
            response[name] = value
        response["Content-Length"] = str(max(length, 0))
        return response

    def delete_object(self):
        self.signed()
        container = self.container()
        data.delete_object(container, self.key)
        return empty(204)

    def delete_objects(self):
        self.signed()
        container = self.container()
        tree = self.parsed_body("Delete")
        quiet = (tree.findtext(f"{{{XMLNS}}}Quiet") or tree.findtext("Quiet") or "").strip().lower() == "true"
        keys = [node.findtext(f"{{{XMLNS}}}Key") or node.findtext("Key")
                for node in tree if node.tag.split("}")[-1] == "Object"]
        if not keys or len(keys) > MAX_DELETE_KEYS or any(not key for key in keys):
            raise malformed_xml()
        results = []
        for name in keys:
            if len(name.encode()) > data.MAX_OBJECT_NAME_LENGTH:
                results.append(f"<Error>{element('Key', name)}<Code>KeyTooLongError</Code>"
                               f"<Message>Your key is too long</Message></Error>")
                continue
            data.delete_object(container, name)
            if not quiet:
                results.append(f"<Deleted>{element('Key', name)}</Deleted>")
        return xml_response("DeleteResult", "".join(results))

    # --- multipart uploads

    def post_object(self):
        self.signed()
        if "uploads" in self.params:
            return self.create_upload()
        if "uploadId" in self.params:
            return self.complete_upload()
        raise S3Error("MethodNotAllowed", 405, "The specified method is not allowed against this resource.")

    def upload(self, container):
        upload_id = self.params.get("uploadId", "")
        try:
            return multipart.find(container, self.key, upload_id)
        except multipart.NoSuchUpload:
            raise no_such_upload(upload_id)

    def create_upload(self):
        container = self.container()
        if self.canned_acl():
            raise object_acl_refused()
        upload = multipart.start(container, self.key, self.content_type(), self.new_metadata(), self.kept_headers())
        return xml_response("InitiateMultipartUploadResult", element("Bucket", self.bucket)
                            + element("Key", self.key) + element("UploadId", upload.id))

    def part_number(self):
        raw = self.params.get("partNumber", "")
        try:
            number = int(raw)
        except ValueError:
            number = 0
        if not 1 <= number <= multipart.MAX_PART_NUMBER:
            raise S3Error("InvalidArgument", 400, f"Part number must be an integer between 1 and "
                                                  f"{multipart.MAX_PART_NUMBER}, inclusive",
                          ArgumentName="partNumber", ArgumentValue=raw)
        return number

    def upload_part(self):
        container = self.container()
        number = self.part_number()
        upload = self.upload(container)
        copying = "x-amz-copy-source" in self.request.headers
        if copying:
            source_container, source = self.copy_source()
            body = large.content_of(Project(self.caller.project_id), source_container, source)
            start, end = 0, body.size - 1
            wanted = self.request.headers.get("x-amz-copy-source-range")
            if wanted:
                match = re.fullmatch(r"bytes=(\d+)-(\d+)", wanted.strip())
                if not match or int(match[1]) > int(match[2]) or int(match[2]) >= body.size:
                    raise S3Error("InvalidArgument", 400, "The x-amz-copy-source-range value must be of the form "
                                                          "bytes=first-last where first and last are the zero-based "
                                                          "offsets of the first and last bytes to copy",
                                  ArgumentName="x-amz-copy-source-range", ArgumentValue=wanted)
                start, end = int(match[1]), int(match[2])
            key, size, etag = self.store(body.chunks(start, end) if end >= start else iter(()))
        else:
            key, size, etag = self.store_body(container, part=True)
        try:
            fields = multipart.put_part(upload, number, key, size, etag)
        except multipart.NoSuchUpload:
            raise no_such_upload(upload.id)
        if copying:
            return xml_response("CopyPartResult", element("LastModified", iso_time(fields["last_modified"]))
                                + element("ETag", quoted(etag)))
        return empty(200, {"ETag": quoted(etag)})

    def list_parts(self):
        self.signed()
        container = self.container()
        upload = self.upload(container)
        max_parts = self.max_keys("max-parts")
        marker_raw = self.params.get("part-number-marker", "0")
        try:
            marker = int(marker_raw)
        except ValueError:
            raise S3Error("InvalidArgument", 400, "Provided part-number-marker not an integer",
                          ArgumentName="part-number-marker", ArgumentValue=marker_raw)
        parts = list(UploadPart.objects.filter(upload=upload, number__gt=marker).order_by("number")[:max_parts + 1])
        truncated = len(parts) > max_parts
        parts = parts[:max_parts]
        body = [element("Bucket", self.bucket), element("Key", self.key), element("UploadId", upload.id),
                f"<Initiator>{element('ID', self.caller.user_id)}{element('DisplayName', self.caller.user_id)}"
                f"</Initiator>", self.owner_xml(), "<StorageClass>STANDARD</StorageClass>",
                element("PartNumberMarker", marker), element("MaxParts", max_parts),
                element("IsTruncated", "true" if truncated else "false")]
        if parts:
            body.append(element("NextPartNumberMarker", parts[-1].number))
        for part in parts:
            body.append(f"<Part>{element('PartNumber', part.number)}"
                        f"{element('LastModified', iso_time(part.last_modified))}"
                        f"{element('ETag', quoted(part.etag))}{element('Size', part.size)}</Part>")
        return xml_response("ListPartsResult", "".join(body))

    def abort_upload(self):
        self.signed()
        container = self.container()
        upload = self.upload(container)
        if not multipart.remove(upload.id):
            raise no_such_upload(upload.id)
        return empty(204)

    def complete_upload(self):
        container = self.container()
        upload = self.upload(container)
        tree = self.parsed_body("CompleteMultipartUpload")
        wanted = []
        for node in tree:
            if node.tag.split("}")[-1] != "Part":
                continue
            number = node.findtext(f"{{{XMLNS}}}PartNumber") or node.findtext("PartNumber") or ""
            etag = node.findtext(f"{{{XMLNS}}}ETag") or node.findtext("ETag") or ""
            try:
                wanted.append((int(number), etag.strip().strip('"').lower()))
            except ValueError:
                raise malformed_xml()
        if not wanted:
            raise malformed_xml()
        numbers = [number for number, _ in wanted]
        if numbers != sorted(set(numbers)):
            raise S3Error("InvalidPartOrder", 400, "The list of parts was not in ascending order. The parts list "
                                                   "must be specified in order by part number.")
        stored = {part.number: part for part in UploadPart.objects.filter(upload=upload, number__in=numbers)}
        parts = []
        for index, (number, etag) in enumerate(wanted):
            part = stored.get(number)
            if part is None or part.etag != etag:
                raise S3Error("InvalidPart", 400, "One or more of the specified parts could not be found. The part "
                                                  "may not have been uploaded, or the specified entity tag may not "
                                                  "match the part's entity tag.", UploadId=upload.id,
                              PartNumber=number, ETag=etag)
            if part.size < multipart.MIN_PART_SIZE and index < len(wanted) - 1:
                raise S3Error("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed "
                                                     "object size.", ProposedSize=part.size,
                              MinSizeAllowed=multipart.MIN_PART_SIZE, PartNumber=number, ETag=etag)
            parts.append(part)
        total = sum(part.size for part in parts)
        chunks = large.segmented([(part.data_key, part.size) for part in parts], 0, total - 1)
        key, size, _ = self.store(chunks if total else iter(()), multipart.MAX_OBJECT_SIZE)
        if size != total:  # a part's data went missing (aborted meanwhile)
            data.discard_data(key)
            raise no_such_upload(upload.id)
        fields = self.object_fields(key, size, multipart.multipart_etag([part.etag for part in parts]),
                                    upload.metadata, upload.content_type, upload.headers)
        try:
            row = multipart.complete(upload, container, self.key, fields)
        except multipart.NoSuchUpload:
            data.discard_data(key)
            raise no_such_upload(upload.id)
        except data.QuotaExceeded as error:
            data.discard_data(key)
            raise quota_exceeded(error)
        except data.ContainerGone:
            data.discard_data(key)
            raise no_such_bucket(self.bucket)
        return xml_response("CompleteMultipartUploadResult", element("Location", f"/{self.bucket}/{self.key}")
                            + element("Bucket", self.bucket) + element("Key", self.key)
                            + element("ETag", quoted(row.etag)))

    def list_uploads(self):
        self.signed()
        container = self.container()
        max_uploads = self.max_keys("max-uploads")
        prefix = self.params.get("prefix", "")
        key_marker, id_marker = self.params.get("key-marker", ""), self.params.get("upload-id-marker", "")
        rows = MultipartUpload.objects.filter(container=container)
        if prefix:
            rows = rows.filter(name__startswith=prefix)
        if key_marker:
            rows = rows.filter(name__gt=key_marker) | rows.filter(name=key_marker, id__gt=id_marker) \
                if id_marker else rows.filter(name__gt=key_marker)
        found = list(rows.order_by("name", "id")[:max_uploads + 1])
        truncated = len(found) > max_uploads
        found = found[:max_uploads]
        body = [element("Bucket", self.bucket), element("KeyMarker", key_marker), element("UploadIdMarker", id_marker),
                element("Prefix", prefix), element("MaxUploads", max_uploads),
                element("IsTruncated", "true" if truncated else "false")]
        if found:
            body += [element("NextKeyMarker", found[-1].name), element("NextUploadIdMarker", found[-1].id)]
        for upload in found:
            body.append(f"<Upload>{element('Key', upload.name)}{element('UploadId', upload.id)}"
                        f"<Initiator>{element('ID', self.caller.user_id)}</Initiator>{self.owner_xml()}"
                        f"<StorageClass>STANDARD</StorageClass>"
                        f"{element('Initiated', iso_time(upload.initiated_at))}</Upload>")
        return xml_response("ListMultipartUploadsResult", "".join(body))


def incomplete_body():
    return S3Error("IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length "
                                          "HTTP header.")


def quota_exceeded(error):
    return S3Error("QuotaExceeded", 403, str(error))


def object_acl_refused():
    return S3Error("NotImplemented", 501, "Object ACLs are not implemented; set the bucket's canned ACL.")
