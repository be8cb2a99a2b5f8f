"""Handing out what must never be handed out twice: fixed IPs per subnet,
MAC addresses, VXLAN VNIs. Each is backed by a unique constraint; the
allocator locks the subnet row it picks from, so concurrent creates wait
for each other instead of colliding."""
import ipaddress
import random

from django.db import IntegrityError, transaction

from network import conf, errors
from network.addressing import eui64_address
from network.models import IPAllocation, Network, Port, Subnet

MAC_PREFIX = "fa:16:3e"  # Neutron's base_mac
ATTEMPTS = 16


def allocate_vni():
    """The lowest VXLAN VNI of the range no network holds. Called inside the
    transaction that inserts the network; a concurrent insert of the same
    VNI fails on the unique constraint and the caller retries."""
    low, high = conf.VNI_RANGE
    used = set(Network.objects.filter(network_type=Network.Type.VXLAN, segmentation_id__gte=low,
                                      segmentation_id__lte=high).values_list("segmentation_id", flat=True))
    for vni in range(low, high + 1):
        if vni not in used:
            return vni
    raise errors.conflict("NoNetworkAvailable",
                          "Unable to create the network. No tenant network is available for allocation.")


def create_network(**fields):
    """Inserts a network, allocating its VNI when it is a VXLAN network
    without one asked for."""
    allocate = fields.get("network_type", Network.Type.VXLAN) == Network.Type.VXLAN and \
        fields.get("segmentation_id") is None
    for _ in range(ATTEMPTS):
        if allocate:
            fields["segmentation_id"] = allocate_vni()
        try:
            with transaction.atomic():
                return Network.objects.create(**fields)
        except IntegrityError:
            if not allocate:
                break
    if fields.get("network_type") == Network.Type.FLAT:
        raise errors.conflict("FlatNetworkInUse", f"Unable to create the flat network. Physical network "
                                                  f"{fields.get('physical_network')} is in use.")
    raise errors.conflict("SegmentationIdInUse", f"Unable to create the network. The VXLAN "
                                                 f"{fields.get('segmentation_id')} is in use.")


def random_mac():
    return MAC_PREFIX + "".join(f":{random.randint(0, 255):02x}" for _ in range(3))


def create_port(**fields):
    """Inserts a port with a fresh MAC (unless one is given)."""
    given = "mac_address" in fields
    for _ in range(ATTEMPTS):
        if not given:
            fields["mac_address"] = random_mac()
        if given and Port.objects.filter(mac_address=fields["mac_address"]).exists():
            break
        try:
            with transaction.atomic():
                return Port.objects.create(**fields)
        except IntegrityError:
            if given:
                break
    raise errors.conflict("MacAddressInUse", f"Unable to complete operation for network {fields['network'].id}. "
                                             f"The mac address {fields['mac_address']} is in use.")


def pool_ranges(subnet):
    for pool in subnet.allocation_pools:
        yield int(ipaddress.ip_address(pool["start"])), int(ipaddress.ip_address(pool["end"]))


def in_pools(subnet, address):
    value = int(ipaddress.ip_address(address))
    return any(start <= value <= end for start, end in pool_ranges(subnet))


def in_subnet(subnet, address):
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(subnet.cidr)
    except ValueError:
        return False


# Addresses a free-address search looks at per query: a pool this small is
# read whole (lowest free first), a larger one a window at a time.
WINDOW = 64
# Windows read before a search reads what the pool holds in one go (a pool
# nearly full, or full).
WINDOWS = 4


def first_free(subnet):
    """A free address of the subnet's pools, or None when they are full;
    the caller holds the subnet's row lock. Addresses are handed out in
    order after the one given out last, wrapping to the start of the pools
    (so a freed address comes back once the pools have gone round): the
    search reads the last allocation and the allocations of a window of
    candidates, never every allocation of the subnet, however many it has."""
    ranges = list(pool_ranges(subnet))
    if not ranges:
        return None
    size = sum(end - start + 1 for start, end in ranges)
    last = subnet.allocations.order_by("-id").values_list("ip_address", flat=True).first()
    after = int(ipaddress.ip_address(last)) + 1 if last is not None and size > WINDOW else ranges[0][0]
    candidates = _cycle(ranges, after)
    for _ in range(WINDOWS):
        window = [next(candidates) for _ in range(min(WINDOW, size))]
        texts = [str(ipaddress.ip_address(value)) for value in window]
        used = set(subnet.allocations.filter(ip_address__in=texts).values_list("ip_address", flat=True))
        free = next((text for text in texts if text not in used), None)
        if free is not None or size <= WINDOW:
            return free
    # Windows in a row were taken: the pools are (nearly) full. What they hold
    # is read once, bounded by their size, to find the gap or know there is none.
    used = {int(ipaddress.ip_address(address)) for address in subnet.allocations.values_list("ip_address", flat=True)}
    for _ in range(size):
        value = next(candidates)
        if value not in used:
            return str(ipaddress.ip_address(value))
    return None


def _cycle(ranges, after):
    """The pools' addresses (ints) from `after` on (or from the start of the
    pools when `after` is in none of them), round and round."""
    index = next((i for i, (start, end) in enumerate(ranges) if start <= after <= end), None)
    if index is None:
        index = next((i for i, (start, _) in enumerate(ranges) if start > after), 0)
        after = ranges[index][0]
    value = after
    while True:
        start, end = ranges[index]
        while value <= end:
            yield value
            value += 1
        index = (index + 1) % len(ranges)
        value = ranges[index][0]


def lock_subnets(network, subnet_ids=None):
    """The network's subnets (or those of `subnet_ids`), locked for update in
    a fixed order so two allocators never wait on each other crosswise."""
    subnets = Subnet.objects.select_for_update().filter(network=network).order_by("created_at", "id")
    if subnet_ids is not None:
        subnets = subnets.filter(id__in=subnet_ids)
    return list(subnets)


def takes_auto_addresses(port):
    # The service's own ports (router interfaces, DHCP, floating IPs) are
    # given theirs; every other port, and a router's gateway (as in
    # Neutron), has one on each SLAAC subnet.
    return not port.device_owner.startswith("network:") or port.device_owner == "network:router_gateway"


def allocate_fixed_ips(port, requested):
    """Gives `port` its fixed IPs, inside the caller's transaction.
    `requested` is Neutron's fixed_ips list ([{"subnet_id"}, {"ip_address"},
    both]) or None for one address of each IP version from the network's
    first subnet of that version with room. Either way the port has its
    EUI-64 address on each of the network's SLAAC (and DHCPv6-stateless)
    subnets, as in Neutron."""
    network = port.network
    locked = lock_subnets(network)
    given = _allocate_requested(port, locked, requested)
    if takes_auto_addresses(port):
        IPAllocation.objects.bulk_create([
            IPAllocation(port=port, subnet=subnet, ip_address=eui64_address(subnet.cidr, port.mac_address))
            for subnet in locked if subnet.auto_address and subnet.pk not in given])


def readdress_automatic(port):
    """A port's MAC changed: its EUI-64 addresses follow."""
    subnets = [subnet for subnet in lock_subnets(port.network) if subnet.auto_address]
    IPAllocation.objects.filter(port=port, subnet__in=subnets).delete()
    if takes_auto_addresses(port):
        IPAllocation.objects.bulk_create([
            IPAllocation(port=port, subnet=subnet, ip_address=eui64_address(subnet.cidr, port.mac_address))
            for subnet in subnets])


def _allocate_requested(port, locked, requested):
    """The addresses `requested` asks for (None: one of each IP version from
    the pools); returns the ids of the subnets given one."""
    network = port.network
    given = set()
    if requested is None:
        for version in (4, 6):
            subnets = [subnet for subnet in locked if subnet.ip_version == version and not subnet.auto_address]
            address = None
            for subnet in subnets:
                address = first_free(subnet)
                if address is not None:
                    IPAllocation.objects.create(port=port, subnet=subnet, ip_address=address)
                    given.add(subnet.pk)
                    break
            if subnets and address is None:
                raise errors.ip_generation_failure(network.id)
        return given
    subnets = {str(subnet.id): subnet for subnet in locked}
    for entry in requested:
        subnet_id, address = entry.get("subnet_id"), entry.get("ip_address")
        if subnet_id is not None:
            subnet = subnets.get(str(subnet_id))
            if subnet is None:
                raise errors.bad_request("InvalidInput", f"Invalid input for operation: Failed to create port on "
                                                         f"network {network.id}, because fixed_ips included invalid "
                                                         f"subnet {subnet_id}.")
            if address is not None and not in_subnet(subnet, address):
                raise errors.bad_request("InvalidIpForSubnet",
                                         f"IP address {address} is not a valid IP for the specified subnet.")
        else:
            subnet = next((s for s in subnets.values() if in_subnet(s, address)), None)
            if subnet is None:
                raise errors.bad_request("InvalidIpForNetwork", f"IP address {address} is not a valid IP for any "
                                                                f"of the subnets on the specified network.")
        if subnet.auto_address and takes_auto_addresses(port):
            if address is not None and address != eui64_address(subnet.cidr, port.mac_address):
                raise errors.invalid_input(f"IPv6 address {address} cannot be directly assigned to a port on "
                                           f"subnet {subnet.id} since the subnet is configured for automatic "
                                           f"addresses")
            address = eui64_address(subnet.cidr, port.mac_address)
        elif address is None:
            address = first_free(subnet)
            if address is None:
                raise errors.ip_generation_failure(network.id)
        elif address in (subnet.gateway_ip, str(ipaddress.ip_network(subnet.cidr).network_address),
                         str(ipaddress.ip_network(subnet.cidr).broadcast_address)) \
                and not port.device_owner.startswith("network:router"):
            if address != subnet.gateway_ip:
                raise errors.bad_request("InvalidIpForSubnet",
                                         f"IP address {address} is not a valid IP for the specified subnet.")
            raise errors.conflict("IpAddressAlreadyAllocated",
                                  f"IP address {address} already allocated in subnet {subnet.id}")
        elif subnet.allocations.filter(ip_address=address).exists():
            raise errors.conflict("IpAddressAlreadyAllocated",
                                  f"IP address {address} already allocated in subnet {subnet.id}")
        IPAllocation.objects.create(port=port, subnet=subnet, ip_address=address)
        given.add(subnet.pk)
    return given


def normalize_address(address):
    return str(ipaddress.ip_address(address))
