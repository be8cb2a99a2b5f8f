"""Ports, written in one place for the API and for compute (which asks
here for its ports and never writes network rows itself). Each function
runs in one transaction: a port is made whole (MAC, fixed IPs, security
groups, quota counted) or not at all."""
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from network import changes, errors, ipam, quotas
from network.models import FloatingIP, IPAllocation, Network, Port, SecurityGroup, SecurityGroupRule

ROUTER_INTERFACE = "network:router_interface"
ROUTER_GATEWAY = "network:router_gateway"
FLOATING_IP = "network:floatingip"
DHCP = "network:dhcp"
# Ports the service made for itself: deleted through their owner (router,
# floating IP), never directly.
SERVICE_OWNERS = (ROUTER_INTERFACE, ROUTER_GATEWAY, FLOATING_IP)

# Neutron's rules of a project's `default` group: all egress, and ingress
# from members of the group itself.
DEFAULT_RULES = [
    {"direction": "egress", "ethertype": "IPv4"},
    {"direction": "egress", "ethertype": "IPv6"},
    {"direction": "ingress", "ethertype": "IPv4", "remote_group": "self"},
    {"direction": "ingress", "ethertype": "IPv6", "remote_group": "self"},
]


def default_security_group(project_id):
    """The project's `default` group, made with Neutron's default rules the
    first time it is needed."""
    group = SecurityGroup.objects.filter(project_id=project_id, name="default").first()
    if group is not None or not project_id:
        return group
    try:
        with transaction.atomic():
            group = SecurityGroup.objects.create(project_id=project_id, name="default",
                                                 description="Default security group")
            SecurityGroupRule.objects.bulk_create([
                SecurityGroupRule(project_id=project_id, security_group=group, direction=rule["direction"],
                                  ethertype=rule["ethertype"],
                                  remote_group=group if rule.get("remote_group") == "self" else None)
                for rule in DEFAULT_RULES])
            return group
    except IntegrityError:  # made by a concurrent request
        return SecurityGroup.objects.get(project_id=project_id, name="default")


def lock_groups(groups):
    """Holds the groups a port is given until commit: one deleted meanwhile
    is a 404 rather than a foreign key failing."""
    if not groups:
        return
    ids = {group.pk for group in groups}
    found = set(SecurityGroup.objects.select_for_update(no_key=True).filter(pk__in=ids).values_list("pk", flat=True))
    for missing in ids - found:
        raise errors.not_found("SecurityGroup", missing)


def check_port_security(port_security_enabled, security_groups, allowed_address_pairs):
    if port_security_enabled:
        return
    if security_groups:
        raise errors.bad_request("PortSecurityAndIPRequiredForSecurityGroups",
                                 "Port security must be enabled and port must have an IP address in order "
                                 "to use security groups.")
    if allowed_address_pairs:
        raise errors.conflict("AddressPairAndPortSecurityRequired",
                              "Port Security must be enabled in order to have allowed address pairs on a port.")


def create_port(network, project_id, fixed_ips=None, security_groups=None, count_quota=True, **fields):
    """A new port on `network` for `project_id`, status DOWN until a node
    plumbs it. `fixed_ips` is Neutron's list (None: one address from the
    network); `security_groups` a list of groups (None: the project's
    default, when port security is on and the port is not the service's)."""
    fields.setdefault("port_security_enabled", network.port_security_enabled)
    service_port = fields.get("device_owner", "").startswith("network:")
    with transaction.atomic():
        if count_quota and project_id:
            quotas.reserve(project_id, "port")
        # Held until commit: a concurrent delete of the network either waits
        # and then finds this port (409), or went first and this is a 404.
        if Network.objects.select_for_update(no_key=True).filter(pk=network.pk).values_list("pk").first() is None:
            raise errors.not_found("Network", network.pk)
        lock_groups(security_groups)
        if security_groups is None:
            default = None
            if fields["port_security_enabled"] and not service_port:
                default = default_security_group(project_id)
            security_groups = [default] if default else []
        check_port_security(fields["port_security_enabled"], security_groups,
                            fields.get("allowed_address_pairs"))
        port = ipam.create_port(network=network, project_id=project_id, **fields)
        ipam.allocate_fixed_ips(port, fixed_ips)
        # A new port has no groups yet: inserted at once, without reading them first.
        Port.security_groups.through.objects.bulk_create([
            Port.security_groups.through(port=port, securitygroup=group) for group in security_groups])
        changes.port_changed(port)
    return port


def update_port(port, fixed_ips=None, security_groups=None, **fields):
    """Changes a port; `fixed_ips` (a list) replaces its addresses, keeping
    an address it has on a subnet asked for by id only."""
    with transaction.atomic():
        port = Port.objects.select_for_update().get(pk=port.pk)
        # The hosts that plumb it now hear of the change too (a new binding
        # or other groups may take it from them).
        changes.port_changed(port, also_hosts={port.binding_host_id})
        for name, value in fields.items():
            setattr(port, name, value)
        lock_groups(security_groups)
        groups = list(port.security_groups.all()) if security_groups is None else security_groups
        check_port_security(port.port_security_enabled, groups, port.allowed_address_pairs)
        if "mac_address" in fields and Port.objects.filter(mac_address=port.mac_address).exclude(pk=port.pk).exists():
            raise errors.conflict("MacAddressInUse", f"Unable to complete operation for network {port.network_id}. "
                                                     f"The mac address {port.mac_address} is in use.")
        port.save()
        if fixed_ips is not None:
            current = {}
            for allocation in port.fixed_ips.all():
                current.setdefault(str(allocation.subnet_id), []).append(allocation.ip_address)
            wanted = []
            for entry in fixed_ips:
                entry = dict(entry)
                if entry.get("ip_address") is None and current.get(str(entry.get("subnet_id"))):
                    entry["ip_address"] = current[str(entry["subnet_id"])].pop(0)
                wanted.append(entry)
            port.fixed_ips.all().delete()
            ipam.allocate_fixed_ips(port, wanted)
        if security_groups is not None:
            port.security_groups.set(security_groups)
        changes.port_changed(port)
    return port


def delete_port(port):
    """Deletes a port, its addresses and any floating IP's association."""
    with transaction.atomic():
        # Locked first: a floating IP being associated with it commits before
        # (and is cleared here) or finds the port gone.
        if Port.objects.select_for_update().filter(pk=port.pk).values_list("pk").first() is None:
            return
        changes.port_changed(port)
        for router_id in set(FloatingIP.objects.filter(port=port, router__isnull=False)
                             .values_list("router_id", flat=True)):
            changes.router_changed(router_id)
        FloatingIP.objects.filter(port=port).update(port=None, fixed_ip_address=None, router=None, status="DOWN")
        IPAllocation.objects.filter(port=port).delete()
        port.delete()


def bind_port(port, host):
    """Names the node a port is plumbed on (binding:host_id)."""
    with transaction.atomic():
        port = Port.objects.select_for_update().get(pk=port.pk)
        previous = port.binding_host_id
        port.binding_host_id = host
        port.save(update_fields=["binding_host_id"])
        changes.port_changed(port, also_hosts={previous})
    return port


def set_status(port_id, status):
    """The node agent's report: ACTIVE once plumbed, DOWN once unplugged.
    Returns whether the port still exists."""
    if status not in Port.Status.values:
        raise ValueError(f"unknown port status {status!r}")
    return bool(Port.objects.filter(pk=port_id).exclude(status=status).update(
        status=status, revision_number=F("revision_number") + 1, updated_at=timezone.now())
        or Port.objects.filter(pk=port_id).exists())


def ports_of_device(device_id):
    return Port.objects.filter(device_id=device_id).prefetch_related("fixed_ips")
