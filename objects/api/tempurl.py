"""Temporary URLs (Swift's tempurl middleware): an object URL signed with
a key from the account's (or the container's) metadata Temp-URL-Key /
Temp-URL-Key-2 reaches the object without a token until it expires.

    temp_url_sig = HMAC(key, "<METHOD>\\n<expires>\\n<path>") as hex, or as
                   "<digest>:<base64>"; digests sha256 and sha512
    temp_url_expires = unix time, or ISO 8601 (2026-12-01T00:00:00Z)

With temp_url_prefix, the signed path is `prefix:<container path>/<prefix>`
(any object whose name starts with it). The path signed is the object's path from /v1/ on (what clients sign for
Swift), or the whole request path (this cloud mounts Swift under
/object-store)."""
import base64
import binascii
import calendar
import hashlib
import hmac
import time

from objects.api.errors import SwiftError

DIGESTS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
HEX_LENGTHS = {64: "sha256", 128: "sha512"}
METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
KEY_NAMES = ("temp-url-key", "temp-url-key-2")
INVALID = "Temp URL invalid"


def is_tempurl(request):
    return "temp_url_sig" in request.GET or "temp_url_expires" in request.GET


def _expires(raw):
    try:
        return int(raw)
    except (TypeError, ValueError):
        pass
    try:
        return calendar.timegm(time.strptime(raw or "", "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return None


def _signature(raw):
    """(digest name, signature bytes) or None."""
    if ":" in raw:
        name, _, encoded = raw.partition(":")
        if name not in DIGESTS:
            return None
        try:
            return name, base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            return None
    name = HEX_LENGTHS.get(len(raw))
    if name is None:
        return None
    try:
        return name, bytes.fromhex(raw)
    except ValueError:
        return None


def signed_paths(path):
    paths = [path]
    at = path.find("/v1/")
    if at > 0:
        paths.append(path[:path.index(":") + 1] + path[at:] if path.startswith("prefix:") else path[at:])
    return paths


def verify(request, path, keys, object_name):
    """Raises 401 unless the request carries a valid, unexpired signature
    by one of `keys` for its method (a HEAD may use a GET, PUT or POST
    signature). `path` is the request's (decoded) path, ending with
    `object_name`. With `temp_url_prefix`, what is signed is
    `prefix:<container path>/<prefix>` and reaches every object whose name
    starts with the prefix."""
    if "temp_url_prefix" in request.GET:
        prefix = request.GET["temp_url_prefix"]
        if not object_name.startswith(prefix):
            raise SwiftError(401, INVALID)
        path = "prefix:" + path[:len(path) - len(object_name)] + prefix
    expires = _expires(request.GET.get("temp_url_expires"))
    signature = _signature(request.GET.get("temp_url_sig", ""))
    if expires is None or signature is None or request.method not in METHODS:
        raise SwiftError(401, INVALID)
    if expires < time.time():
        raise SwiftError(401, INVALID)
    digest_name, given = signature
    methods = [request.method] + (["GET", "PUT", "POST"] if request.method == "HEAD" else [])
    for key in keys:
        for method in methods:
            for signed in signed_paths(path):
                message = f"{method}\n{expires}\n{signed}".encode()
                expected = hmac.new(key.encode(), message, DIGESTS[digest_name]).digest()
                if hmac.compare_digest(expected, given):
                    return
    raise SwiftError(401, INVALID)


def keys_of(account_row, container):
    keys = []
    for metadata in (account_row.metadata if account_row else {}, container.metadata if container else {}):
        keys += [metadata[name] for name in KEY_NAMES if metadata.get(name)]
    return keys
