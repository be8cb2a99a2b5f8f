"""How a metadata proxy vouches for the guest it asks for, and how the
metadata API checks it: HMAC-SHA256 with settings.METADATA_SECRET, written
once for both sides (the proxy is the network agent's, the API compute's).

Two forms, as a proxy knows either the instance or only where the request
came from:
- X-Instance-ID-Signature: the HMAC of the instance id (Neutron's metadata
  agent sends it to Nova with X-Instance-ID and X-Tenant-ID);
- X-Neutron-Network-ID-Signature: the HMAC of "<network id>,<guest address>",
  sent with X-Neutron-Network-ID and X-Forwarded-For by a proxy in the
  network's namespace, which saw the guest's source address itself."""
import hashlib
import hmac

INSTANCE_SIGNATURE_HEADER = "X-Instance-ID-Signature"
NETWORK_SIGNATURE_HEADER = "X-Neutron-Network-ID-Signature"


def _hmac(secret, message):
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def instance_signature(secret, instance_id):
    return _hmac(secret, str(instance_id))


def address_signature(secret, network_id, address):
    return _hmac(secret, f"{network_id},{address}")


def matches(expected, given):
    """Constant-time comparison; a missing signature never matches."""
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())
