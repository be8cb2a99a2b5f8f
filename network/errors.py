"""Neutron's errors, by the type name clients see in
{"NeutronError": {"type": ...}} and in Neutron's words."""
from cloud.errors import ApiError


def not_found(kind, resource_id):
    """NetworkNotFound, PortNotFound, ...: `kind` is the resource's Neutron name."""
    words = {"SecurityGroup": "Security group", "SecurityGroupRule": "Security group rule",
             "FloatingIP": "Floating IP"}.get(kind, kind)
    return ApiError(f"{words} {resource_id} could not be found.", status=404, kind=f"{kind}NotFound")


def invalid_input(message):
    return ApiError(f"Invalid input for operation: {message}", status=400, kind="InvalidInput")


def conflict(kind, message):
    return ApiError(message, status=409, kind=kind)


def bad_request(kind, message):
    return ApiError(message, status=400, kind=kind)


def over_quota(resource):
    return ApiError(f"Quota exceeded for resources: ['{resource}'].", status=409, kind="OverQuota")


def ip_generation_failure(network_id):
    return conflict("IpAddressGenerationFailure", f"No more IP addresses available on network {network_id}.")


def not_found_as(kind, message):
    return ApiError(message, status=404, kind=kind)
