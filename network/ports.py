"""Ports, written in one place for the API and for compute (which asks
here for its ports and never writes network rows itself). Each function
runs in one transaction: a port is made whole (MAC, fixed IPs, security
groups, quota counted) or not at all. Inside a caller's transaction (the
boot's network step, a router or bulk create) they open no savepoint of
their own: a failure fails the caller's transaction, and no caller goes
on after one. Savepoints are kept where an error is caught to try again:
a MAC that collided (ipam.create_port), a default group made concurrently."""
import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
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


def key_share(model, ids):
    """The ids of `model`'s rows among `ids`, each held against a delete
    until commit (FOR KEY SHARE: concurrent holders do not wait for each
    other, as a foreign key's own check would not)."""
    ids = list(ids)
    if connection.vendor != "postgresql":
        return set(model.objects.filter(pk__in=ids).values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "id" FROM "{model._meta.db_table}" WHERE "id" = ANY(%s) FOR KEY SHARE', [ids])
        return {row[0] for row in cursor.fetchall()}


def lock_groups(groups):
    """Holds the groups a port is given until commit: one deleted meanwhile
    is a 404 rather than a foreign key failing."""
    if not groups:
        return
    ids = {group.pk for group in groups}
    for missing in ids - key_share(SecurityGroup, ids):
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
    with transaction.atomic(savepoint=False):
        # Held until commit: a concurrent delete of the network either waits
        # and then finds this port (409), or went first and this is a 404;
        # concurrent creates on the network do not wait for each other.
        if not key_share(Network, [network.pk]):
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
        # A new port has no groups yet: inserted at once, without reading them first.
        Port.security_groups.through.objects.bulk_create([
            Port.security_groups.through(port=port, securitygroup=group) for group in security_groups])
        changes.port_changed(port)
        # Last, what concurrent creates wait for: the project's quota lock
        # and the subnets' locks are held from here to commit only.
        if count_quota and project_id:
            quotas.reserve(project_id, "port", count=0)   # the new port is counted among the rows already
        ipam.allocate_fixed_ips(port, fixed_ips)
    return port


def update_port(port, fixed_ips=None, security_groups=None, **fields):
    """Changes a port; `fixed_ips` (a list) replaces its addresses, keeping
    an address it has on a subnet asked for by id only."""
    with transaction.atomic(savepoint=False):
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
        elif "mac_address" in fields:
            ipam.readdress_automatic(port)
        if security_groups is not None:
            port.security_groups.set(security_groups)
        changes.port_changed(port)
    return port


def delete_port(port):
    """Deletes a port, its addresses and any floating IP's association."""
    with transaction.atomic(savepoint=False):
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
    with transaction.atomic(savepoint=False):
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
    return Port.objects.filter(device_id=str(device_id)).select_related("network").prefetch_related(
        "fixed_ips").order_by("created_at", "id")


# -- what compute asks of networking --------------------------------------

def usable_networks(project_id, is_admin=False):
    """Networks a project may put a server on: its own and shared ones
    (an admin: any), external networks aside unless shared."""
    networks = Network.objects.all()
    if not is_admin:
        networks = networks.filter(Q(project_id=project_id) | Q(shared=True))
    return networks


def visible_networks(project_id, is_admin=False):
    """Networks a project sees in Neutron's list: its own, shared and
    external ones (what Nova's os-networks proxies list)."""
    networks = Network.objects.all()
    if not is_admin:
        networks = networks.filter(Q(project_id=project_id) | Q(shared=True) | Q(external=True))
    return networks


def network_for_server(network_id, project_id, is_admin=False):
    """The network a server create names, or None when the project may not
    see it (another project's network is no network to it)."""
    try:
        return usable_networks(project_id, is_admin).filter(pk=network_id).first()
    except (ValueError, ValidationError):
        return None


def networks_for_server_by_default(project_id):
    """What Nova picks from when a create names no network: the project's
    own and shared networks, external ones left out."""
    return list(usable_networks(project_id).filter(external=False).order_by("created_at", "id")[:2])


def port_for_server(port_id, project_id, is_admin=False):
    """The port a server create or an interface attach names, or None."""
    ports = Port.objects.select_related("network")
    if not is_admin:
        ports = ports.filter(project_id=project_id)
    try:
        return ports.filter(pk=port_id).first()
    except (ValueError, ValidationError):
        return None


def check_fixed_ip(network, address):
    """Why `address` cannot be a new port's fixed IP on `network` (a
    Neutron error), or None when it can."""
    subnets = [subnet for subnet in network.subnets.all() if ipam.in_subnet(subnet, address)]
    if not subnets:
        return errors.bad_request("InvalidIpForNetwork", f"IP address {address} is not a valid IP for any of the "
                                                         f"subnets on the specified network.")
    if IPAllocation.objects.filter(subnet__in=subnets, ip_address=address).exists():
        return errors.conflict("IpAddressAlreadyAllocated",
                               f"IP address {address} already allocated in subnet {subnets[0].id}")
    return None


def _named_group(project_id, name):
    if name == "default":
        return default_security_group(project_id)
    group = SecurityGroup.objects.filter(project_id=project_id, name=name).first()
    if group is None and is_uuid(name):
        group = SecurityGroup.objects.filter(project_id=project_id, pk=name).first()
    return group


def missing_security_group(project_id, names):
    """The first of `names` (group names or ids) the project has no group
    of, or None."""
    return next((name for name in dict.fromkeys(names) if _named_group(project_id, name) is None), None)


def security_groups_named(project_id, names):
    """The project's groups of `names` ("default" made on first use);
    a 404 for the first that does not exist."""
    groups = []
    for name in dict.fromkeys(names):
        group = _named_group(project_id, name)
        if group is None:
            raise errors.not_found("SecurityGroup", name)
        groups.append(group)
    return groups


def is_uuid(value):
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def attach_port(port, device_id, device_owner, host=""):
    """Gives a port to a server (device_id and owner), bound to `host`;
    PortInUse (409) if another device holds it meanwhile."""
    with transaction.atomic(savepoint=False):
        port = Port.objects.select_for_update().get(pk=port.pk)
        if port.device_id and port.device_id != str(device_id):
            raise errors.conflict("PortInUse", f"Unable to complete operation on port {port.pk} for network "
                                               f"{port.network_id}. Port already has an attached device "
                                               f"{port.device_id}.")
        previous = port.binding_host_id
        port.device_id, port.device_owner, port.binding_host_id = str(device_id), device_owner, host
        port.save(update_fields=["device_id", "device_owner", "binding_host_id"])
        if host != previous:
            changes.port_changed(port, also_hosts={previous})
    return port


def detach_port(port_id):
    """A port given back by the server it was attached to: unbound, no
    device, DOWN. Nothing if it is gone."""
    with transaction.atomic(savepoint=False):
        port = Port.objects.select_for_update().filter(pk=port_id).first()
        if port is None:
            return None
        port.device_id = port.device_owner = port.binding_host_id = ""
        port.status = Port.Status.DOWN
        port.save(update_fields=["device_id", "device_owner", "binding_host_id", "status"])
    return port


def release_device_ports(device_id, created_port_ids):
    """What a server's delete (or failed build) does to its ports: those
    made for it (`created_port_ids`) are deleted, the others it was given
    are detached and left to their owner."""
    created = {str(port_id) for port_id in created_port_ids}
    for port in list(Port.objects.filter(device_id=str(device_id))):
        if str(port.pk) in created:
            delete_port(port)
        else:
            detach_port(port.pk)
    # Made for it but detached meanwhile (an interface detach): still its.
    for port in list(Port.objects.filter(pk__in=created, device_id="")):
        delete_port(port)


def addresses_of_devices(device_ids):
    """{device id: [address]} of the servers `device_ids`, each address a
    dict of network (name), port, version, addr, type ("fixed" or
    "floating") and mac, in two queries whatever the number of servers."""
    device_ids = [str(device_id) for device_id in device_ids]
    addresses = {device_id: [] for device_id in device_ids}
    if not device_ids:
        return addresses
    allocations = list(IPAllocation.objects.filter(port__device_id__in=device_ids).select_related(
        "port__network", "subnet").order_by("port__created_at", "port_id", "id"))
    floating = {}
    for fip in FloatingIP.objects.filter(port__device_id__in=device_ids).order_by("created_at", "id"):
        floating.setdefault((fip.port_id, fip.fixed_ip_address), []).append(fip.floating_ip_address)
    for allocation in allocations:
        port = allocation.port
        common = {"network": port.network.name or str(port.network_id), "network_id": str(port.network_id),
                  "port_id": str(port.pk), "mac": port.mac_address, "version": allocation.subnet.ip_version}
        addresses[port.device_id].append({**common, "addr": allocation.ip_address, "type": "fixed"})
        for address in floating.get((port.pk, allocation.ip_address), []):
            addresses[port.device_id].append({**common, "addr": address, "type": "floating", "version": 4})
    return addresses


def devices_with_address_like(fragment, ip_version=None):
    """The servers (device ids of compute ports) holding a fixed IP that
    contains `fragment` (of `ip_version` when given): Nova's ip / ip6
    server filters, which it asks Neutron for by ip_address_substr."""
    allocations = IPAllocation.objects.filter(ip_address__contains=fragment, port__device_owner__startswith="compute:")
    if ip_version:
        allocations = allocations.filter(subnet__ip_version=ip_version)
    return set(allocations.values_list("port__device_id", flat=True))


def security_group_names_of_devices(device_ids):
    """{device id: [group name]} of the servers `device_ids`: the distinct
    names of their ports' security groups, sorted, in one query."""
    device_ids = [str(device_id) for device_id in device_ids]
    names = {device_id: set() for device_id in device_ids}
    pairs = Port.security_groups.through.objects.filter(port__device_id__in=device_ids).values_list(
        "port__device_id", "securitygroup__name")
    for device_id, name in pairs:
        names[device_id].add(name)
    return {device_id: sorted(found) for device_id, found in names.items()}


def security_group_ids_of_device(device_id):
    """The ids of the security groups on the ports of server `device_id`."""
    return {str(group_id) for group_id in Port.security_groups.through.objects.filter(
        port__device_id=str(device_id)).values_list("securitygroup_id", flat=True)}


def add_security_group_to_device(device_id, group):
    """Adds `group` to every port of the device that has port security;
    returns how many ports there are."""
    device_ports = list(Port.objects.filter(device_id=str(device_id)).prefetch_related("security_groups"))
    for port in device_ports:
        groups = list(port.security_groups.all())
        if port.port_security_enabled and group not in groups:
            update_port(port, security_groups=groups + [group])
    return len(device_ports)


def remove_security_group_from_device(device_id, group):
    """Removes `group` from the device's ports; False if none had it."""
    found = False
    for port in Port.objects.filter(device_id=str(device_id), security_groups=group).prefetch_related(
            "security_groups"):
        update_port(port, security_groups=[held for held in port.security_groups.all() if held != group])
        found = True
    return found
