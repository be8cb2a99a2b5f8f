"""Keystone's credential rules, in one place for /v3/credentials and
/v3/users/{id}/credentials/OS-EC2: an `ec2` credential's blob is a JSON
object with an access key, its id is the SHA-256 of that key (so a
signature naming the key finds it), and it needs a project."""
import hashlib
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
