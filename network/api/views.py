"""Networks, subnets and ports."""
import ipaddress

from django.db import transaction
from django.db.models import Q

from network import changes, conf, errors, ipam, ports, quotas
from network.api import serializers as bodies
from network.api.base import (NeutronViewSet, admin_status, as_address, as_bool, as_int, as_uuid,
                              policy_denied)
from network.models import IPAllocation, Network, Port, SecurityGroup, Subnet, SubnetPool, Tag


def network_visible_to(credentials):
    """Networks a caller may see and use: its own, shared and external ones."""
    if credentials.is_admin:
        return Q()
    return Q(project_id=credentials.project_id) | Q(shared=True) | Q(external=True)


def find_network(view, network_id, usable=False):
    """The network a body names, as the caller may see it (404 otherwise).
    `usable`: the caller must own it, or it is shared."""
    try:
        network = Network.objects.filter(network_visible_to(view.caller), pk=network_id).first()
    except ValueError:
        network = None
    if network is None:
        raise errors.not_found("Network", network_id)
    if usable and not (view.caller.is_admin or network.shared or network.project_id == view.caller.project_id):
        raise policy_denied(f"create_{view.member_name}")
    return network


class NetworkViewSet(NeutronViewSet):
    bulk = True
    queryset = Network.objects.prefetch_related("subnets")
    serializer_class = bodies.NetworkSerializer
    kind, member_name, collection_name = "Network", "network", "networks"
    admin_only = ("provider:network_type", "provider:physical_network", "provider:segmentation_id",
                  "router:external", "shared")
    filters = {
        "admin_state_up": ("admin_state_up", as_bool), "status": "status", "shared": ("shared", as_bool),
        "router:external": ("external", as_bool), "port_security_enabled": ("port_security_enabled", as_bool),
        "mtu": ("mtu", as_int), "provider:network_type": "network_type",
        "provider:physical_network": "physical_network",
        "provider:segmentation_id": ("segmentation_id", as_int),
    }
    sort_keys = {"status": "status", "shared": "shared", "mtu": "mtu", "admin_state_up": "admin_state_up",
                 "router:external": "external", "provider:network_type": "network_type"}

    def visible(self, queryset):
        return queryset.filter(network_visible_to(self.caller))

    def render(self, network, tags):
        body = self.common(network, tags)
        body.update({
            "admin_state_up": network.admin_state_up, "status": network.status,
            "subnets": [str(subnet.id) for subnet in network.subnets.all()],
            "shared": network.shared, "router:external": network.external,
            "port_security_enabled": network.port_security_enabled, "mtu": network.mtu,
            "availability_zone_hints": network.availability_zone_hints,
            "availability_zones": [conf.AVAILABILITY_ZONE],
            "ipv4_address_scope": None, "ipv6_address_scope": None, "is_default": False, "l2_adjacency": True,
        })
        if self.caller.is_admin:
            body.update({"provider:network_type": network.network_type,
                         "provider:physical_network": network.physical_network,
                         "provider:segmentation_id": network.segmentation_id})
        return body

    def check_segment(self, values):
        network_type = values.get("network_type", Network.Type.VXLAN)
        physical_network = values.get("physical_network")
        if network_type == Network.Type.FLAT:
            if physical_network not in conf.PHYSICAL_NETWORKS:
                raise errors.invalid_input(f"physical_network '{physical_network}' unknown for flat provider "
                                           f"network.")
            if values.get("segmentation_id") is not None:
                raise errors.invalid_input("segmentation_id cannot be specified for flat network.")
            values["segmentation_id"] = None
            return conf.FLAT_MTU
        if physical_network:
            raise errors.invalid_input("physical_network cannot be specified for vxlan network.")
        values["physical_network"] = None
        low, high = conf.VNI_RANGE
        if values.get("segmentation_id") is not None and not low <= values["segmentation_id"] <= high:
            raise errors.invalid_input(f"provider:segmentation_id {values['segmentation_id']} is outside the "
                                       f"VXLAN range {low}:{high}.")
        return conf.VXLAN_MTU

    def create_one(self):
        values = self.validated()
        project_id = self.owner_of(values)
        largest = self.check_segment(values)
        values.setdefault("mtu", largest)
        if values["mtu"] > largest:
            raise errors.invalid_input(f"Requested MTU is too big, maximum is {largest}")
        values["status"] = admin_status(values.get("admin_state_up", True))
        with transaction.atomic():
            quotas.reserve(project_id, "network")
            network = ipam.create_network(project_id=project_id, **values)
        return self.show(network, 201)

    def partial_update(self, request, *args, **kwargs):
        network = self.writable(self.get_object())
        values = self.validated(partial=True)
        if {"network_type", "physical_network", "segmentation_id"} & set(values):
            raise errors.invalid_input("Plugin does not support updating provider attributes")
        if values.get("mtu", 0) > (conf.FLAT_MTU if network.network_type == Network.Type.FLAT else conf.VXLAN_MTU):
            raise errors.invalid_input("Requested MTU is too big")
        with transaction.atomic():
            for name, value in values.items():
                setattr(network, name, value)
            network.status = admin_status(network.admin_state_up)
            network.save()
            changes.network_changed({network.pk})
        return self.show(network)

    def perform_destroy(self, network):
        if network.ports.exclude(device_owner=ports.DHCP).exists():
            raise errors.conflict("NetworkInUse", f"Unable to complete operation on network {network.id}. "
                                                  f"There are one or more ports still in use on the network.")
        subnet_ids = list(network.subnets.values_list("id", flat=True))
        changes.network_changed({network.pk})
        network.ports.all().delete()
        network.subnets.all().delete()
        network.delete()
        Tag.objects.filter(resource_id__in=subnet_ids).delete()


def point_to_point(network):
    """A /31 or /32 (/127, /128): every address a host's, no gateway."""
    return network.prefixlen >= network.max_prefixlen - 1


def default_pools(cidr, gateway_ip):
    """Every host address of the CIDR but the gateway, as Neutron pools."""
    network = ipaddress.ip_network(cidr)
    first, last = int(network.network_address) + 1, int(network.broadcast_address) - 1
    if point_to_point(network):
        first, last = int(network.network_address), int(network.broadcast_address)
    ranges = [(first, last)]
    if gateway_ip is not None:
        gateway = int(ipaddress.ip_address(gateway_ip))
        ranges = [(first, gateway - 1), (gateway + 1, last)]
    return [{"start": str(ipaddress.ip_address(start)), "end": str(ipaddress.ip_address(end))}
            for start, end in ranges if start <= end]


def check_addressing(cidr, gateway_ip, pools, routes, dns_nameservers):
    """Gateway, pools and routes of a subnet make sense together."""
    network = ipaddress.ip_network(cidr)
    if gateway_ip is not None:
        gateway = ipaddress.ip_address(gateway_ip)
        if gateway not in network or (not point_to_point(network) and gateway in
                                      (network.network_address, network.broadcast_address)):
            raise errors.invalid_input(f"Gateway IP {gateway_ip} is not a valid address in subnet {cidr}.")
    ranges = []
    for pool in pools:
        start, end = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
        if start not in network or end not in network:
            raise errors.bad_request("OutOfBoundsAllocationPool",
                                     f"The allocation pool {pool['start']}-{pool['end']} spans beyond the "
                                     f"subnet cidr {cidr}.")
        if start > end:
            raise errors.bad_request("InvalidAllocationPool",
                                     f"The allocation pool {pool['start']}-{pool['end']} is not valid.")
        for other_start, other_end in ranges:
            if start <= other_end and other_start <= end:
                raise errors.bad_request("OverlappingAllocationPools",
                                         f"Found overlapping allocation pools: {pool['start']}-{pool['end']} "
                                         f"and {other_start}-{other_end} for subnet {cidr}.")
        ranges.append((start, end))
        if gateway_ip is not None and start <= ipaddress.ip_address(gateway_ip) <= end:
            raise errors.conflict("GatewayConflictWithAllocationPools",
                                  f"Gateway ip {gateway_ip} conflicts with allocation pool "
                                  f"{pool['start']}-{pool['end']}.")
    for route in routes:
        if ipaddress.ip_address(route["nexthop"]).version != network.version:
            raise errors.invalid_input(f"Invalid route: nexthop {route['nexthop']} is not an "
                                       f"IPv{network.version} address.")


def subnetpool_visible_to(credentials):
    """Subnet pools a caller may see and cut subnets from: its own and shared ones."""
    if credentials.is_admin:
        return Q()
    return Q(project_id=credentials.project_id) | Q(shared=True)


def collapsed(prefixes):
    return [str(prefix) for prefix in ipaddress.collapse_addresses(ipaddress.ip_network(p) for p in prefixes)]


def free_block(pool, prefixlen, taken):
    """The first block of `prefixlen` in the pool's prefixes that overlaps
    none of `taken`, found by skipping past each block in the way."""
    for prefix in map(ipaddress.ip_network, pool.prefixes):
        if prefixlen < prefix.prefixlen:
            continue
        size = 1 << (prefix.max_prefixlen - prefixlen)
        start, last = int(prefix.network_address), int(prefix.broadcast_address)
        while start + size - 1 <= last:
            blocker = next((t for t in taken if int(t.network_address) < start + size
                            and start <= int(t.broadcast_address)), None)
            if blocker is None:
                return ipaddress.ip_network((start, prefixlen))
            after = int(blocker.broadcast_address) + 1
            start = -(-after // size) * size
    return None


def cut_from_pool(pool, cidr, prefixlen):
    """The CIDR a new subnet of `pool` gets, under the pool's row lock so
    that two subnets cut at once get different blocks."""
    pool = SubnetPool.objects.select_for_update().get(pk=pool.pk)
    taken = [ipaddress.ip_network(other) for other in pool.subnets.values_list("cidr", flat=True)]
    if cidr is not None:
        wanted = ipaddress.ip_network(cidr)
        if not any(wanted.version == prefix.version and wanted.subnet_of(prefix)
                   for prefix in map(ipaddress.ip_network, pool.prefixes)):
            raise errors.bad_request("SubnetAllocationError", f"Failed to allocate subnet: Cidr {cidr} is not in "
                                                              f"subnet pool {pool.id}.")
        prefixlen = wanted.prefixlen
    prefixlen = pool.default_prefixlen if prefixlen is None else prefixlen
    if not pool.min_prefixlen <= prefixlen <= pool.max_prefixlen:
        raise errors.bad_request("SubnetAllocationError", f"Failed to allocate subnet: Unsupported prefix length "
                                                          f"/{prefixlen}: subnet pool {pool.id} cuts "
                                                          f"/{pool.min_prefixlen} to /{pool.max_prefixlen}.")
    if cidr is not None:
        if any(wanted.overlaps(other) for other in taken):
            raise errors.conflict("SubnetAllocationError", f"Failed to allocate subnet: Cidr {cidr} overlaps "
                                                           f"another subnet of subnet pool {pool.id}.")
        return cidr
    block = free_block(pool, prefixlen, taken)
    if block is None:
        raise errors.conflict("SubnetAllocationError", f"Failed to allocate subnet: Insufficient prefix space to "
                                                       f"allocate subnet size /{prefixlen}.")
    return str(block)


class SubnetPoolViewSet(NeutronViewSet):
    queryset = SubnetPool.objects.all()
    serializer_class, update_serializer_class = bodies.SubnetPoolSerializer, bodies.SubnetPoolUpdateSerializer
    kind, member_name, collection_name = "SubnetPool", "subnetpool", "subnetpools"
    admin_only = ("shared", "is_default")
    filters = {"ip_version": ("ip_version", as_int), "shared": ("shared", as_bool),
               "is_default": ("is_default", as_bool), "default_prefixlen": ("default_prefixlen", as_int),
               "min_prefixlen": ("min_prefixlen", as_int), "max_prefixlen": ("max_prefixlen", as_int)}
    sort_keys = {"ip_version": "ip_version", "shared": "shared", "default_prefixlen": "default_prefixlen"}

    def visible(self, queryset):
        return queryset.filter(subnetpool_visible_to(self.caller))

    def render(self, pool, tags):
        body = self.common(pool, tags)
        body.update({"ip_version": pool.ip_version, "prefixes": pool.prefixes,
                     "default_prefixlen": pool.default_prefixlen, "min_prefixlen": pool.min_prefixlen,
                     "max_prefixlen": pool.max_prefixlen, "shared": pool.shared, "is_default": pool.is_default,
                     "address_scope_id": None, "default_quota": None})
        return body

    def check_bounds(self, pool):
        bits = 32 if pool.ip_version == 4 else 128
        if not 0 <= pool.min_prefixlen <= pool.default_prefixlen <= pool.max_prefixlen <= bits:
            raise errors.invalid_input(f"Illegal prefix bounds: min_prefixlen {pool.min_prefixlen}, "
                                       f"default_prefixlen {pool.default_prefixlen}, max_prefixlen "
                                       f"{pool.max_prefixlen} for IPv{pool.ip_version}.")

    def create_one(self):
        values = self.validated()
        project_id = self.owner_of(values)
        values["prefixes"] = collapsed(values["prefixes"])
        version = ipaddress.ip_network(values["prefixes"][0]).version
        values.setdefault("min_prefixlen", 8 if version == 4 else 64)
        values.setdefault("max_prefixlen", 32 if version == 4 else 128)
        values.setdefault("default_prefixlen", values["min_prefixlen"])
        pool = SubnetPool(project_id=project_id, ip_version=version, **values)
        self.check_bounds(pool)
        pool.save()
        return self.show(pool, 201)

    def partial_update(self, request, *args, **kwargs):
        pool = self.writable(self.get_object())
        values = self.validated(partial=True)
        with transaction.atomic():
            pool = SubnetPool.objects.select_for_update().get(pk=pool.pk)
            if "prefixes" in values:
                prefixes = collapsed(values["prefixes"])
                if ipaddress.ip_network(prefixes[0]).version != pool.ip_version:
                    raise errors.invalid_input(f"Illegal update to prefixes: subnet pool {pool.id} is "
                                               f"IPv{pool.ip_version}.")
                # A pool grows; its subnets' blocks stay in it.
                if collapsed(prefixes + pool.prefixes) != prefixes:
                    raise errors.invalid_input("Illegal update to prefixes: an update may add prefixes, not "
                                               "remove them.")
                values["prefixes"] = prefixes
            for name, value in values.items():
                setattr(pool, name, value)
            self.check_bounds(pool)
            pool.save()
        return self.show(pool)

    def perform_destroy(self, pool):
        if pool.subnets.exists():
            raise errors.conflict("SubnetPoolInUse", f"Unable to complete operation on subnet pool {pool.id}: "
                                                     f"one or more subnets are allocated from it.")
        pool.delete()


class SubnetViewSet(NeutronViewSet):
    bulk = True
    queryset = Subnet.objects.select_related("network")
    serializer_class, update_serializer_class = bodies.SubnetSerializer, bodies.SubnetUpdateSerializer
    kind, member_name, collection_name = "Subnet", "subnet", "subnets"
    filters = {"network_id": ("network_id", as_uuid), "ip_version": ("ip_version", as_int), "cidr": "cidr",
               "gateway_ip": ("gateway_ip", as_address), "enable_dhcp": ("enable_dhcp", as_bool),
               "subnetpool_id": ("subnetpool_id", as_uuid), "router:external": ("network__external", as_bool)}
    sort_keys = {"cidr": "cidr", "network_id": "network_id", "ip_version": "ip_version"}

    def visible(self, queryset):
        if self.caller.is_admin:
            return queryset
        return queryset.filter(Q(project_id=self.caller.project_id) | Q(network__shared=True) |
                               Q(network__external=True))

    def render(self, subnet, tags):
        body = self.common(subnet, tags)
        body.update({
            "network_id": str(subnet.network_id), "ip_version": subnet.ip_version, "cidr": subnet.cidr,
            "gateway_ip": subnet.gateway_ip, "allocation_pools": subnet.allocation_pools,
            "dns_nameservers": subnet.dns_nameservers, "host_routes": subnet.host_routes,
            "enable_dhcp": subnet.enable_dhcp, "ipv6_ra_mode": subnet.ipv6_ra_mode,
            "ipv6_address_mode": subnet.ipv6_address_mode,
            "subnetpool_id": str(subnet.subnetpool_id) if subnet.subnetpool_id else None,
            # subnet-external-network: why a subnet of another project's external network is visible.
            "router:external": subnet.network.external,
            "service_types": [], "segment_id": None,
        })
        return body

    def create_one(self):
        values = self.validated()
        project_id = self.owner_of(values)
        network = find_network(self, values.pop("network_id"))
        if not (self.caller.is_admin or network.project_id == self.caller.project_id):
            raise policy_denied("create_subnet")
        pool_id, prefixlen = values.pop("subnetpool_id", None), values.pop("prefixlen", None)
        if pool_id is None:
            return self.create_on(network, project_id, values)
        pool = SubnetPool.objects.filter(subnetpool_visible_to(self.caller), pk=pool_id).first()
        if pool is None:
            raise errors.not_found("SubnetPool", pool_id)
        if values.setdefault("ip_version", pool.ip_version) != pool.ip_version:
            raise errors.invalid_input(f"ip_version {values['ip_version']} does not match subnet pool {pool.id}, "
                                       f"which is IPv{pool.ip_version}.")
        with transaction.atomic():
            values["cidr"] = cut_from_pool(pool, values.get("cidr"), prefixlen)
            if (values.get("ipv6_address_mode") or values.get("ipv6_ra_mode")) in ("slaac", "dhcpv6-stateless") \
                    and ipaddress.ip_network(values["cidr"]).prefixlen != 64:
                raise errors.invalid_input(f"Invalid CIDR {values['cidr']} for IPv6 address mode: EUI-64 addresses "
                                           f"(SLAAC) need a /64 prefix")
            return self.create_on(network, project_id, {**values, "subnetpool": pool})

    def create_on(self, network, project_id, values):
        cidr = values["cidr"]
        hosts = ipaddress.ip_network(cidr)
        if "gateway_ip" not in values:
            values["gateway_ip"] = None if point_to_point(hosts) else str(hosts.network_address + 1)
        values.setdefault("allocation_pools", default_pools(cidr, values["gateway_ip"]))
        values["allocation_pools"] = [dict(pool) for pool in values["allocation_pools"]]
        values["host_routes"] = [dict(route) for route in values.get("host_routes", [])]
        check_addressing(cidr, values["gateway_ip"], values["allocation_pools"], values["host_routes"],
                         values.get("dns_nameservers", []))
        with transaction.atomic():
            quotas.reserve(project_id, "subnet")
            # The network's row lock orders concurrent subnet creates on it (and a delete of it).
            if Network.objects.select_for_update().filter(pk=network.pk).first() is None:
                raise errors.not_found("Network", network.pk)
            for other in network.subnets.all():
                if ipaddress.ip_network(other.cidr).overlaps(hosts):
                    raise errors.invalid_input(f"Requested subnet with cidr: {cidr} for network: {network.id} "
                                               f"overlaps with another subnet.")
            subnet = Subnet.objects.create(network=network, project_id=project_id, **values)
            if subnet.auto_address:
                # The network's ports have their EUI-64 address on it at once, as in Neutron.
                IPAllocation.objects.bulk_create([
                    IPAllocation(port=port, subnet=subnet, ip_address=ipam.eui64_address(cidr, port.mac_address))
                    for port in network.ports.all() if ipam.takes_auto_addresses(port)])
            changes.subnet_changed(subnet)
        return self.show(subnet, 201)

    def partial_update(self, request, *args, **kwargs):
        subnet = self.writable(self.get_object())
        values = self.validated(partial=True)
        if "allocation_pools" in values:
            values["allocation_pools"] = [dict(pool) for pool in values["allocation_pools"]]
        if "host_routes" in values:
            values["host_routes"] = [dict(route) for route in values["host_routes"]]
        for name, value in values.items():
            setattr(subnet, name, value)
        check_addressing(subnet.cidr, subnet.gateway_ip, subnet.allocation_pools, subnet.host_routes,
                         subnet.dns_nameservers)
        with transaction.atomic():
            subnet.save()
            changes.subnet_changed(subnet)
        return self.show(subnet)

    def perform_destroy(self, subnet):
        with transaction.atomic():
            # The lock IPAM takes to allocate: no address is handed out
            # from the subnet between the check and the delete.
            subnet = Subnet.objects.select_for_update().get(pk=subnet.pk)
            # A SLAAC subnet's addresses are the ports' own (from their MACs): they go with it.
            in_use = subnet.allocations.exclude(port__device_owner=ports.DHCP)
            if subnet.auto_address:
                in_use = in_use.filter(port__device_owner__startswith="network:")
            if in_use.exists():
                raise errors.conflict("SubnetInUse", f"Unable to complete operation on subnet {subnet.id}: One "
                                                     f"or more ports have an IP allocation from this subnet.")
            # The DHCP port gives up its address here, as in Neutron.
            subnet.allocations.all().delete()
            changes.subnet_changed(subnet)
            subnet.delete()


def fixed_ip_filter(values, name):
    """`fixed_ips=ip_address=10.0.0.5` / `fixed_ips=subnet_id=...`."""
    condition = Q()
    for value in values:
        key, _, wanted = value.partition("=")
        if key == "ip_address":
            address = as_address(wanted, name)
            condition &= Q(fixed_ips__ip_address=address) if address else Q(pk__in=[])
        elif key == "subnet_id":
            condition &= Q(fixed_ips__subnet_id=as_uuid(wanted, name))
        elif key == "ip_address_substr":
            condition &= Q(fixed_ips__ip_address__contains=wanted)
        else:
            raise errors.bad_request("HTTPBadRequest", f"Invalid input for field 'fixed_ips': unknown filter "
                                                       f"{key!r} (ip_address, ip_address_substr or subnet_id).")
    return condition


class PortViewSet(NeutronViewSet):
    bulk = True
    queryset = Port.objects.select_related("network").prefetch_related("fixed_ips", "security_groups")
    serializer_class, update_serializer_class = bodies.PortSerializer, bodies.PortUpdateSerializer
    kind, member_name, collection_name = "Port", "port", "ports"
    admin_only = ("binding:host_id", "binding:profile")
    filters = {
        "network_id": ("network_id", as_uuid), "mac_address": "mac_address", "device_owner": "device_owner",
        "device_id": "device_id", "status": "status", "admin_state_up": ("admin_state_up", as_bool),
        "binding:host_id": "binding_host_id", "port_security_enabled": ("port_security_enabled", as_bool),
        "security_groups": ("security_groups", as_uuid),
    }
    sort_keys = {"mac_address": "mac_address", "status": "status", "device_owner": "device_owner",
                 "device_id": "device_id", "network_id": "network_id"}

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if self.request.query_params.getlist("fixed_ips"):
            queryset = queryset.filter(fixed_ip_filter(self.request.query_params.getlist("fixed_ips"),
                                                       "fixed_ips")).distinct()
        elif self.request.query_params.getlist("security_groups"):
            queryset = queryset.distinct()
        return queryset

    def render(self, port, tags):
        body = self.common(port, tags)
        body.update({
            "network_id": str(port.network_id), "mac_address": port.mac_address,
            "admin_state_up": port.admin_state_up, "status": port.status,
            "device_owner": port.device_owner, "device_id": port.device_id,
            "fixed_ips": [{"subnet_id": str(ip.subnet_id), "ip_address": ip.ip_address}
                          for ip in port.fixed_ips.all()],
            "security_groups": [str(group.id) for group in port.security_groups.all()],
            "allowed_address_pairs": [{"ip_address": pair["ip_address"],
                                       "mac_address": pair.get("mac_address") or port.mac_address}
                                      for pair in port.allowed_address_pairs],
            "port_security_enabled": port.port_security_enabled, "extra_dhcp_opts": [],
        })
        if self.caller.is_admin:
            body.update({"binding:host_id": port.binding_host_id, "binding:vif_type": port.vif_type,
                         "binding:vif_details": port.vif_details, "binding:vnic_type": port.binding_vnic_type,
                         "binding:profile": port.binding_profile})
        return body

    def named_groups(self, ids):
        """The groups a body names, each visible to the caller."""
        groups = SecurityGroup.objects.filter(pk__in=ids)
        if not self.caller.is_admin:
            groups = groups.filter(project_id=self.caller.project_id)
        found = {str(group.id): group for group in groups}
        for group_id in map(str, ids):
            if group_id not in found:
                raise errors.not_found("SecurityGroup", group_id)
        return list(found.values())

    def port_fields(self, values):
        for name in ("binding_profile",):
            if name in values and values[name] is None:
                values[name] = {}
        if values.get("binding_host_id") is None and "binding_host_id" in values:
            values["binding_host_id"] = ""
        if "allowed_address_pairs" in values:
            values["allowed_address_pairs"] = [dict(pair) for pair in values["allowed_address_pairs"]]
        return values

    def fixed_ips(self, values):
        if "fixed_ips" not in values:
            return None
        return [{key: str(value) if key == "subnet_id" else value for key, value in entry.items()}
                for entry in values.pop("fixed_ips")]

    def create_one(self):
        values = self.port_fields(self.validated())
        project_id = self.owner_of(values)
        network = find_network(self, values.pop("network_id"), usable=True)
        groups = None
        if "security_groups" in values:
            groups = self.named_groups(values.pop("security_groups"))
        fixed_ips = self.fixed_ips(values)
        port = ports.create_port(network, project_id, fixed_ips=fixed_ips, security_groups=groups, **values)
        return self.show(self.get_queryset().get(pk=port.pk), 201)

    def partial_update(self, request, *args, **kwargs):
        port = self.writable(self.get_object())
        values = self.port_fields(self.validated(partial=True))
        groups = None
        if "security_groups" in values:
            groups = self.named_groups(values.pop("security_groups"))
        fixed_ips = self.fixed_ips(values)
        ports.update_port(port, fixed_ips=fixed_ips, security_groups=groups, **values)
        return self.show(self.get_queryset().get(pk=port.pk))

    def perform_destroy(self, port):
        if port.device_owner in ports.SERVICE_OWNERS:
            raise errors.conflict("PortInUse" if port.device_owner != ports.ROUTER_INTERFACE else "ServicePortInUse",
                                  f"Port {port.id} cannot be deleted directly via the port API: has device owner "
                                  f"{port.device_owner}.")
        ports.delete_port(port)

