"""Keystone's credential rules, in one place for /v3/credentials and
/v3/users/{id}/credentials/OS-EC2: an `ec2` credential's blob is a JSON
object with an access key, its id is the SHA-256 of that key (so a
signature naming the key finds it), and it needs a project."""
import base64
import hashlib
import hmac
import json
import uuid

from cloud.errors import BadRequest

EC2 = "ec2"
# Keys of an ec2 blob that say what the credential is bound to: set when it
# is made, never changed by an update.
EC2_BOUND_KEYS = ("trust_id", "app_cred_id", "access_token_id", "access_id")


def is_ec2(credential_type):
    return (credential_type or "").lower() == EC2


def ec2_id(access):
    return hashlib.sha256(access.encode("utf-8")).hexdigest()


def ec2_blob(blob):
    """The parsed blob of an ec2 credential, or a 400 saying what is wrong."""
    try:
        parsed = json.loads(blob)
    except (TypeError, ValueError):
        raise BadRequest("Invalid blob in credential")
    if not isinstance(parsed, dict) or not parsed:
        raise BadRequest("Invalid input for field 'blob': an ec2 credential's blob is a JSON object.")
    if not isinstance(parsed.get("access"), str) or not parsed["access"]:
        raise BadRequest("Invalid input for field 'blob': an ec2 credential's blob needs an 'access' key.")
    return parsed


def new_ec2_blob():
    """The keys of a credential made through OS-EC2."""
    return {"access": uuid.uuid4().hex, "secret": uuid.uuid4().hex, "trust_id": None}


def check_ec2_update(old_blob, new_blob):
    old, new = json.loads(old_blob), ec2_blob(new_blob)
    for key in EC2_BOUND_KEYS:
        if old.get(key) != new.get(key):
            raise BadRequest(f"{key} can not be updated for credential")
    return new


# ---------------------------------------------------------------- signatures
# The arithmetic of the signatures an ec2 credential's secret makes: the S3
# API checks requests with it, /v3/ec2tokens checks what services forward.

AWS4_ALGORITHM = "AWS4-HMAC-SHA256"


def ec2_keys(access):
    """(the ec2 Credential an access key names, its secret), or None when
    there is none usable: its user disabled, no project, no secret."""
    from identity.models import Credential

    row = (Credential.objects.filter(id=ec2_id(access), type=EC2, user__enabled=True).exclude(project=None)
           .select_related("user__domain", "project__domain").first())
    if row is None:
        return None
    try:
        secret = json.loads(row.blob).get("secret")
    except ValueError:
        secret = None
    if not isinstance(secret, str) or not secret:
        return None
    return row, secret


def uri_encode(text, safe="-_.~"):
    from urllib.parse import quote

    return quote(text, safe=safe)


def aws4_query(pairs):
    """Signature Version 4's canonical query string of (name, value) pairs."""
    encoded = sorted((uri_encode(name), uri_encode(value)) for name, value in pairs)
    return "&".join(f"{name}={value}" for name, value in encoded)


def aws4_signing_key(secret, date, region, service):
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def aws4_signature(secret, amz_date, scope, canonical_request):
    """(the hex signature, the string signed) of a canonical request, for
    a scope "date/region/service/aws4_request"."""
    date, region, service, _ = scope.split("/")
    to_sign = "\n".join([AWS4_ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = aws4_signing_key(secret, date, region, service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), to_sign


def hmac_base64(secret, text, digest=hashlib.sha1):
    """Signature Version 2's (and S3's older) base64 HMAC."""
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), digest).digest()).decode()
