"""POST /v3/ec2tokens and /v3/s3tokens: a service that received a request
signed with an ec2 credential's secret (EC2's query API, or Signature
Version 4 in the header or a presigned query; for s3tokens, the S3 API's
string to sign, as Swift's s3token middleware sends it) forwards what was
signed; when the signature is right, the credential's user gets a token on
the credential's project, as Keystone's (and keystonemiddleware's
ec2_token) do."""
import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone as dt_timezone

from django.utils import timezone

from cloud.auth import AUTH_REQUIRED
from cloud.errors import BadRequest, Forbidden, NotFound, Unauthorized
from identity import assignments, authn, credentials as ec2, security_compliance, tokens, trusts
from identity.models import ApplicationCredential, Trust

# Keystone's [credential] auth_ttl: how old a signed request may be.
AUTH_TTL = timedelta(minutes=15)


def _signed(body):
    credentials = body.get("credentials", body.get("ec2Credentials")) if isinstance(body, dict) else None
    if not isinstance(credentials, dict):
        raise BadRequest("Invalid input for field 'credentials': the request body must be {\"credentials\": {...}}.")
    for field in ("access", "signature"):
        if not isinstance(credentials.get(field), str) or not credentials[field]:
            raise Unauthorized(f"EC2 {field} not supplied.")
    for field, kind in (("params", dict), ("headers", dict), ("verb", str), ("path", str), ("host", str),
                        ("body_hash", str)):
        value = credentials.get(field)
        if value is not None and not isinstance(value, kind):
            raise BadRequest(f"Invalid input for field 'credentials.{field}': expected a "
                             f"{'object' if kind is dict else 'string'}.")
    params = {str(k): str(v) for k, v in (credentials.get("params") or {}).items()}
    headers = {str(k): str(v) for k, v in (credentials.get("headers") or {}).items()}
    return credentials, params, headers


def _version4(params, headers):
    return headers.get("Authorization", "").startswith(ec2.AWS4_ALGORITHM) or \
        params.get("X-Amz-Algorithm") == ec2.AWS4_ALGORITHM


def _v4_part(params, headers, name):
    """A Signature Version 4 field from the Authorization header, or the
    presigned query's X-Amz-<name>."""
    header = headers.get("Authorization")
    if header:
        return header.partition(f"{name}=")[2].split(",")[0].strip()
    return params.get(f"X-Amz-{name}", "")


def _v4_signature(secret, signed, params, headers):
    lowered = {name.lower().strip(): " ".join(value.split()) for name, value in headers.items()}
    signed_headers = _v4_part(params, headers, "SignedHeaders")
    names = [name for name in signed_headers.split(";") if name in lowered]
    verb = (signed.get("verb") or "GET").upper()
    # A POST's parameters are its body, which body_hash covers.
    query = "" if verb == "POST" else ec2.aws4_query(
        (name, value) for name, value in params.items() if name != "X-Amz-Signature")
    canonical = "\n".join([verb, signed.get("path") or "/", query,
                           "".join(f"{name}:{lowered[name]}\n" for name in names), signed_headers,
                           signed.get("body_hash") or ""])
    scope = _v4_part(params, headers, "Credential").split("/", 1)[1] if "/" in _v4_part(
        params, headers, "Credential") else ""
    amz_date = headers.get("X-Amz-Date") or lowered.get("x-amz-date") or params.get("X-Amz-Date", "")
    if scope.count("/") != 3 or not amz_date.startswith(scope.split("/")[0]):
        raise Unauthorized("Invalid EC2 signature: the request date does not match the credential's scope.")
    return ec2.aws4_signature(secret, amz_date, scope, canonical)[0]


def _v2_signature(secret, signed, params, host):
    """EC2's query API: SignatureVersion 2, HmacSHA256 or HmacSHA1."""
    to_sign = "\n".join([(signed.get("verb") or "GET").upper(), host, signed.get("path") or "/", ""])
    to_sign += "&".join(f"{ec2.uri_encode(name, safe='')}={ec2.uri_encode(value, safe='-_~')}"
                        for name, value in sorted(params.items()) if name != "Signature")
    digest = hashlib.sha256 if params.get("SignatureMethod") == "HmacSHA256" else hashlib.sha1
    return ec2.hmac_base64(secret, to_sign, digest)


def _signature_matches(secret, signed, params, headers):
    if _version4(params, headers):
        return hmac.compare_digest(_v4_signature(secret, signed, params, headers), signed["signature"])
    if params.get("SignatureVersion") != "2":
        raise Unauthorized("Invalid EC2 signature: only Signature Version 2 and 4 are accepted.")
    host = signed.get("host") or ""
    # As Keystone: some clients sign the host without its port.
    hosts = [host, host.split(":")[0]] if ":" in host else [host]
    return any(hmac.compare_digest(_v2_signature(secret, signed, params, name), signed["signature"])
               for name in hosts)


def _check_timestamp(params, headers):
    stamp = headers.get("X-Amz-Date") or params.get("X-Amz-Date") or params.get("Timestamp")
    if not stamp:
        return
    moment = None
    for form in ("%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            moment = datetime.strptime(stamp, form).replace(tzinfo=dt_timezone.utc)
            break
        except ValueError:
            continue
    if moment is None:
        raise Unauthorized("Invalid EC2 signature: the request's timestamp cannot be read.")
    if datetime.now(dt_timezone.utc) - moment > AUTH_TTL:
        raise Unauthorized("Credential timestamp is expired.")


def _trust_token(user, trust_id):
    """Keys made with a trust's token get tokens scoped to the trust, under
    every rule of one (identity.trusts.scope), while it lives."""
    trust = Trust.objects.select_related("trustee").filter(id=trust_id).first()
    if trust is None or user.id not in (trust.trustee_id, trust.trustor_id if trust.impersonation else None):
        raise Unauthorized(AUTH_REQUIRED)
    try:
        trust, project, roles = trusts.scope(trust.trustee, trust.id)
    except (Forbidden, NotFound) as refusal:
        raise Unauthorized(f"The ec2 credential's trust cannot be used: {refusal.message}")
    return authn.trust_token(authn.Identity(trust.trustee, ["ec2credential"]), trust, project, roles)


def authenticate(body):
    """(token string, Credentials) for a POST /v3/ec2tokens body."""
    signed, params, headers = _signed(body)
    found = ec2.ec2_keys(signed["access"])
    if found is None:
        raise Unauthorized(AUTH_REQUIRED)
    credential, secret = found
    if not _signature_matches(secret, signed, params, headers):
        raise Unauthorized("Invalid EC2 signature.")
    _check_timestamp(params, headers)
    return _token_for(credential)


# S3's Signature Version 4 scopes an ec2 key may sign, as Keystone's s3tokens.
S3_SERVICES = ("s3", "iam", "sts")


def _s3_signature(secret, string_to_sign):
    """What the key's secret makes of an S3 string to sign: Signature
    Version 4 (hex HMAC-SHA256 with the scope's signing key) when it starts
    with the V4 algorithm, else S3's Version 2 (base64 HMAC-SHA1). The
    request's age is the S3 API's to judge (a presigned URL may be valid
    for days), as with Keystone's s3tokens."""
    if not string_to_sign.startswith("AWS4"):
        return ec2.hmac_base64(secret, string_to_sign)
    lines = string_to_sign.split("\n")
    scope = lines[2].split("/") if len(lines) == 4 and lines[0] == ec2.AWS4_ALGORITHM else []
    if len(scope) != 4 or scope[3] != "aws4_request" or scope[2] not in S3_SERVICES:
        raise Unauthorized("Invalid EC2 signature.")
    key = ec2.aws4_signing_key(secret, *scope[:3])
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def authenticate_s3(body):
    """(token string, Credentials) for a POST /v3/s3tokens body: what
    Swift's s3token middleware sends, the access key, the request's string
    to sign (base64) and its signature."""
    credentials = body.get("credentials") if isinstance(body, dict) else None
    if not isinstance(credentials, dict):
        raise BadRequest("Invalid input for field 'credentials': the request body must be {\"credentials\": {...}}.")
    for field in ("access", "token", "signature"):
        if not isinstance(credentials.get(field), str) or not credentials[field]:
            raise BadRequest(f"Invalid input for field 'credentials.{field}': expected a non-empty string.")
    try:
        text = credentials["token"]
        string_to_sign = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, UnicodeError):
        raise BadRequest("Invalid input for field 'credentials.token': expected the base64 of the string to sign.")
    found = ec2.ec2_keys(credentials["access"])
    if found is None:
        raise Unauthorized(AUTH_REQUIRED)
    credential, secret = found
    if not hmac.compare_digest(_s3_signature(secret, string_to_sign), credentials["signature"]):
        raise Unauthorized("Credential signature mismatch.")
    return _token_for(credential)


def _token_for(credential):
    """A token for the user of a key whose signature was right, on its
    project (or the trust, or with the application credential's roles, the
    key was made with)."""
    user, project = credential.user, credential.project
    if not authn.usable(user) or not project.enabled or not project.domain.enabled:
        raise Unauthorized(AUTH_REQUIRED)
    security_compliance.mark_active(user)
    blob = ec2.ec2_blob(credential.blob)
    if blob.get("trust_id"):
        return _trust_token(user, blob["trust_id"])
    roles = assignments.roles_on_project(user, project)
    application_credential = None
    if blob.get("app_cred_id"):
        # Keys made with an application credential's token keep only its roles, while it lives.
        application_credential = ApplicationCredential.objects.filter(id=blob["app_cred_id"]).first()
        if application_credential is None or (application_credential.expires_at
                                              and application_credential.expires_at <= timezone.now()):
            raise Unauthorized(AUTH_REQUIRED)
        allowed = {role.id for role in application_credential.roles.all()}
        roles = [role for role in roles if role.id in allowed]
    if not roles:
        raise Unauthorized("User not valid for project.")
    return tokens.issue_token(
        user_id=user.id, user_domain_id=user.domain_id, methods=["ec2credential"], project_id=project.id,
        project_domain_id=project.domain_id, roles=[role.name for role in roles],
        is_admin_project=project.is_admin_project,
        application_credential_id=application_credential.id if application_credential else None,
        unrestricted=application_credential.unrestricted if application_credential else True,
        expires_at=application_credential.expires_at if application_credential else None,
    )
