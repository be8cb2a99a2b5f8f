"""AWS Signature Version 4 for the S3 API, in the Authorization header or
in a presigned URL's query, and Version 2 for older clients. The access
key is a Keystone EC2 credential's `access` (the credential's id is its
SHA-256), the secret its `secret`; the request acts for the credential's
user in the credential's project, with that user's roles there."""
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from urllib.parse import parse_qsl, quote

from django.utils.http import parse_http_date_safe

from cloud.auth import ADMIN_ROLE, MEMBER_ROLE, READER_ROLE
from identity import credentials as ec2
from identity.assignments import roles_on_project
from objects.api import s3chunked
from objects.api.s3chunked import Streaming
from objects.api.s3errors import S3Error

ALGORITHM = ec2.AWS4_ALGORITHM
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_PRESIGNED_EXPIRES = 7 * 24 * 3600


@dataclass
class Caller:
    project_id: str
    user_id: str
    payload_hash: str  # the body's SHA-256 the signature covers, or UNSIGNED-PAYLOAD
    # An aws-chunked body: how to check its chunks (they, not payload_hash, cover it).
    streaming: Streaming | None = None


def raw_path(request):
    """The path as the client sent it (percent-encoded), which it signed."""
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    if raw:
        return raw.split("?", 1)[0]
    return quote(request.path, safe="/~")


def canonical_query(request, leave_out=()):
    return ec2.aws4_query((name, value) for name, value in parse_qsl(request.META.get("QUERY_STRING", ""),
                                                                     keep_blank_values=True)
                          if name not in leave_out)


def header_value(request, name):
    if name == "content-type":
        value = request.META.get("CONTENT_TYPE", "")
    elif name == "content-length":
        value = request.META.get("CONTENT_LENGTH", "")
    else:
        value = request.META.get("HTTP_" + name.upper().replace("-", "_"), "")
    return " ".join(value.split())


def _parse_time(text):
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt_timezone.utc)
    except (TypeError, ValueError):
        raise S3Error("AccessDenied", 403, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")


def _credential_of(access_key):
    """The EC2 credential and its secret."""
    found = ec2.ec2_keys(access_key)
    if found is None:
        raise S3Error("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records.",
                      AWSAccessKeyId=access_key)
    return found


def _check_roles(request, credential):
    """The key acts with its user's roles on its project, as a token would:
    a member (or admin) reads and writes, a reader only reads."""
    roles = {role.name for role in roles_on_project(credential.user, credential.project)}
    if not credential.project.enabled or not roles & {MEMBER_ROLE, ADMIN_ROLE, READER_ROLE}:
        raise S3Error("AccessDenied", 403, "Access Denied: the key's user has no role on its project.")
    if not roles & {MEMBER_ROLE, ADMIN_ROLE} and request.method not in ("GET", "HEAD"):
        raise S3Error("AccessDenied", 403, "Access Denied: the key's user may only read.")


def _parse_credential(text):
    parts = text.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        raise S3Error("AuthorizationHeaderMalformed", 400,
                      "The authorization header is malformed; the Credential is mal-formed; "
                      "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    return parts


def authenticate(request):
    """The Caller the request is signed by, None when it is not signed
    (anonymous); S3Error when the signature is wrong, stale or malformed."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    params = request.GET
    if header:
        if not header.startswith(ALGORITHM + " "):
            if header.startswith("AWS "):
                access_key, _, signature = header[4:].partition(":")
                return _authenticate_v2(request, access_key.strip(), signature.strip(), None)
            raise S3Error("AccessDenied", 403, "Unsupported Authorization Type")
        fields = {}
        for item in header[len(ALGORITHM):].split(","):
            name, _, value = item.strip().partition("=")
            fields[name] = value
        if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
            raise S3Error("AuthorizationHeaderMalformed", 400, "The authorization header is malformed.")
        credential = _parse_credential(fields["Credential"])
        signed_headers = fields["SignedHeaders"]
        signature = fields["Signature"]
        amz_date = request.META.get("HTTP_X_AMZ_DATE", "")
        when = _parse_time(amz_date)
        if abs(datetime.now(dt_timezone.utc) - when) > MAX_CLOCK_SKEW:
            raise S3Error("RequestTimeTooSkewed", 403,
                          "The difference between the request time and the current time is too large.")
        payload_hash = request.META.get("HTTP_X_AMZ_CONTENT_SHA256", "")
        if not payload_hash:
            raise S3Error("InvalidRequest", 400, "Missing required header for this request: x-amz-content-sha256")
        if payload_hash.startswith("STREAMING-") and payload_hash not in s3chunked.FORMS:
            raise S3Error("NotImplemented", 501, f"Chunked uploads signed as {payload_hash} are not supported; "
                                                 f"use {', '.join(s3chunked.FORMS)} or send the payload whole.")
        query = canonical_query(request)
    elif params.get("X-Amz-Algorithm"):
        if params["X-Amz-Algorithm"] != ALGORITHM:
            raise S3Error("AuthorizationQueryParametersError", 400, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
        missing = [name for name in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature",
                                     "X-Amz-Expires") if not params.get(name)]
        if missing:
            raise S3Error("AuthorizationQueryParametersError", 400,
                          f"Query-string authentication version 4 requires the {', '.join(missing)} parameters.")
        credential = _parse_credential(params["X-Amz-Credential"])
        signed_headers = params["X-Amz-SignedHeaders"]
        signature = params["X-Amz-Signature"]
        amz_date = params["X-Amz-Date"]
        when = _parse_time(amz_date)
        try:
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            expires = -1
        if not 0 <= expires <= MAX_PRESIGNED_EXPIRES:
            raise S3Error("AuthorizationQueryParametersError", 400,
                          f"X-Amz-Expires must be between 0 and {MAX_PRESIGNED_EXPIRES} seconds.")
        if datetime.now(dt_timezone.utc) > when + timedelta(seconds=expires):
            raise S3Error("AccessDenied", 403, "Request has expired")
        payload_hash = UNSIGNED_PAYLOAD
        query = canonical_query(request, leave_out=("X-Amz-Signature",))
    elif params.get("AWSAccessKeyId") and params.get("Signature"):
        return _authenticate_v2(request, params["AWSAccessKeyId"], params["Signature"], params.get("Expires", ""))
    else:
        return None
    access_key, date, region, service = credential[:4]
    if not amz_date.startswith(date):
        raise S3Error("SignatureDoesNotMatch", 403, "The credential's date is not the request's date.")
    credential_row, secret = _credential_of(access_key)
    names = signed_headers.lower().split(";")
    if "host" not in names:
        raise S3Error("AccessDenied", 403, "The host header must be signed.")
    canonical = "\n".join([
        request.method,
        raw_path(request),
        query,
        "".join(f"{name}:{header_value(request, name)}\n" for name in names),
        signed_headers.lower(),
        payload_hash,
    ])
    scope = f"{date}/{region}/{service}/aws4_request"
    expected, to_sign = ec2.aws4_signature(secret, amz_date, scope, canonical)
    if not hmac.compare_digest(expected, signature):
        raise S3Error("SignatureDoesNotMatch", 403, "The request signature we calculated does not match the "
                      "signature you provided. Check your key and signing method.",
                      AWSAccessKeyId=access_key, StringToSign=to_sign)
    _check_roles(request, credential_row)
    streaming = None
    if payload_hash in s3chunked.FORMS:
        streaming = Streaming(payload_hash, ec2.aws4_signing_key(secret, date, region, service), amz_date, scope,
                              signature)
        payload_hash = UNSIGNED_PAYLOAD
    return Caller(project_id=credential_row.project_id, user_id=credential_row.user_id, payload_hash=payload_hash,
                  streaming=streaming)


# The query parameters that name a sub-resource, which a version 2
# signature covers (S3's list).
V2_SUB_RESOURCES = {
    "acl", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy",
    "requestPayment", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning", "versions",
    "website", "cors", "restore", "response-cache-control", "response-content-disposition",
    "response-content-encoding", "response-content-language", "response-content-type", "response-expires"}


def _authenticate_v2(request, access_key, signature, expires):
    """Signature Version 2 (HMAC-SHA1), which older clients still send:
    in the header (`expires` None) or in a presigned query."""
    if expires is None:
        sent = request.META.get("HTTP_X_AMZ_DATE") or request.META.get("HTTP_DATE", "")
        when = parse_http_date_safe(sent)
        if when is None:
            raise S3Error("AccessDenied", 403, "AWS authentication requires a valid Date or x-amz-date header")
        if abs(time.time() - when) > MAX_CLOCK_SKEW.total_seconds():
            raise S3Error("RequestTimeTooSkewed", 403,
                          "The difference between the request time and the current time is too large.")
        date_line = "" if request.META.get("HTTP_X_AMZ_DATE") else request.META.get("HTTP_DATE", "")
    else:
        try:
            deadline = int(expires)
        except ValueError:
            raise S3Error("AccessDenied", 403, "Query-string authentication requires the Expires parameter")
        if time.time() > deadline:
            raise S3Error("AccessDenied", 403, "Request has expired")
        date_line = expires
    amz = sorted((name[5:].lower().replace("_", "-"), " ".join(value.split()))
                 for name, value in request.META.items() if name.startswith("HTTP_X_AMZ_"))
    resources = sorted((name, value) for name, value in parse_qsl(request.META.get("QUERY_STRING", ""),
                                                                  keep_blank_values=True)
                       if name in V2_SUB_RESOURCES)
    query = "?" + "&".join(f"{name}={value}" if value else name for name, value in resources) if resources else ""
    head = "\n".join([request.method, request.META.get("HTTP_CONTENT_MD5", ""), request.META.get("CONTENT_TYPE", ""),
                      date_line]) + "\n" + "".join(f"{name}:{value}\n" for name, value in amz)
    # Clients sign the resource as /<bucket>/<key> (a bucket as /<bucket>/,
    # as in virtual-host addressing) or with the path the S3 API is mounted
    # at in front.
    full = raw_path(request)
    below_mount = full.partition("/s3")[2] or "/"
    candidates = [below_mount, full]
    if below_mount.count("/") == 1 and below_mount != "/":
        candidates.append(below_mount + "/")
    credential_row, secret = _credential_of(access_key)
    for resource in candidates:
        to_sign = head + resource + query
        expected = ec2.hmac_base64(secret, to_sign)
        if hmac.compare_digest(expected, signature):
            break
    else:
        raise S3Error("SignatureDoesNotMatch", 403, "The request signature we calculated does not match the "
                      "signature you provided. Check your key and signing method.",
                      AWSAccessKeyId=access_key, StringToSign=head + below_mount + query)
    _check_roles(request, credential_row)
    payload_hash = request.META.get("HTTP_X_AMZ_CONTENT_SHA256") or UNSIGNED_PAYLOAD
    return Caller(project_id=credential_row.project_id, user_id=credential_row.user_id,
                  payload_hash=UNSIGNED_PAYLOAD if payload_hash.startswith("STREAMING-") else payload_hash)
