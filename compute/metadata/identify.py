"""Which instance a metadata request is for. No token: a metadata proxy
vouches for the guest with a signature (cloud.metadata_signature), in one
of two ways:
- X-Instance-ID, X-Tenant-ID and X-Instance-ID-Signature (Neutron's
  metadata agent to Nova);
- X-Neutron-Network-ID, X-Forwarded-For (the guest's address) and
  X-Neutron-Network-ID-Signature, from the proxy in the network's namespace:
  the instance is the device of the port with that fixed IP on that network
  (for an IPv6 link-local address, the one IPv6 metadata is asked from, the
  port whose MAC the address was made from: anti-spoofing lets a port send
  no other link-local address).
A missing or wrong signature is a 403; an instance that cannot be found
(or whose project is not X-Tenant-ID) a 404."""
import ipaddress
import uuid

from django.conf import settings

from cloud import metadata_signature as signature
from compute.models import Instance
from network import addressing
from network.models import Port


class MetadataError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _header(request, name):
    return request.headers.get(name)


def instance_of(request):
    if _header(request, "X-Instance-ID") is not None:
        return _by_instance_id(request)
    if _header(request, "X-Neutron-Network-ID") is not None:
        return _by_network_address(request)
    raise MetadataError(400, "X-Instance-ID or X-Neutron-Network-ID header is missing from request.")


def _by_instance_id(request):
    instance_id = _header(request, "X-Instance-ID")
    given = _header(request, signature.INSTANCE_SIGNATURE_HEADER)
    if not signature.matches(signature.instance_signature(settings.METADATA_SECRET, instance_id), given):
        raise MetadataError(403, "Invalid proxy request signature.")
    tenant_id = _header(request, "X-Tenant-ID")
    if tenant_id is None:
        raise MetadataError(400, "X-Tenant-ID header is missing from request.")
    instance = _live_instance(instance_id)
    # An instance of another project than the proxy says is nobody's here.
    if instance is None or instance.project_id != tenant_id:
        raise MetadataError(404, f"Instance {instance_id} could not be found.")
    return instance


def _by_network_address(request):
    network_id = _header(request, "X-Neutron-Network-ID")
    # A proxy in front of the API appends its own client: the guest is first.
    address = (_header(request, "X-Forwarded-For") or "").split(",")[0].strip()
    given = _header(request, signature.NETWORK_SIGNATURE_HEADER)
    if not signature.matches(signature.address_signature(settings.METADATA_SECRET, network_id, address), given):
        raise MetadataError(403, "Invalid proxy request signature.")
    try:
        network_uuid = uuid.UUID(network_id)
        address = str(ipaddress.ip_address(address))
    except ValueError:
        raise MetadataError(400, f"X-Neutron-Network-ID {network_id!r} and X-Forwarded-For {address!r} "
                                 f"must be a network id and an IP address.") from None
    if ipaddress.ip_address(address).version == 6 and ipaddress.ip_address(address).is_link_local:
        by_address = {"mac_address": addressing.eui64_mac(address)}
    else:
        by_address = {"fixed_ips__ip_address": address}
    candidates = Port.objects.filter(network_id=network_uuid, device_owner__startswith="compute:",
                                     **by_address).values_list("device_id", "project_id")
    for device_id, project_id in candidates:
        instance = _live_instance(device_id)
        # Only a port of the instance's own project speaks for it (what
        # Nova's X-Tenant-ID check is for): anyone may name any device_id
        # on a port of theirs.
        if instance is not None and instance.project_id == project_id:
            return instance
    raise MetadataError(404, f"No instance has address {address} on network {network_id}.")


def _live_instance(instance_id):
    try:
        instance_uuid = uuid.UUID(str(instance_id))
    except ValueError:
        return None
    return Instance.objects.select_related("node").filter(pk=instance_uuid, deleted=False).first()
