"""Validation of Networking v2.0 request bodies, attribute by attribute,
each error naming its attribute."""
import ipaddress
import re

from rest_framework import serializers

from network.api.base import NeutronSerializer
from network import conf, errors
from network.models import Network

MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")
IPV6_MODES = ["slaac", "dhcpv6-stateful", "dhcpv6-stateless"]


class IPAddressField(serializers.CharField):
    """An IPv4 or IPv6 address, normalized."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise serializers.ValidationError(f"'{value}' is not a valid IP address")


class CIDRField(serializers.CharField):
    """A network in CIDR notation, its host bits zero."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise serializers.ValidationError(f"'{value}' is not a valid IP subnet")
        if str(network) != value and "/" in value:
            raise serializers.ValidationError(f"'{value}' isn't a recommended IP address, '{network}' is recommended")
        return str(network)


class MacAddressField(serializers.CharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not MAC_RE.match(value):
            raise serializers.ValidationError(f"'{value}' is not a valid MAC address")
        return value.lower().replace("-", ":")


class WholeSerializer(serializers.Serializer):
    """An object in a list that is given whole or refused: an update's
    partial validation (PUT router with routes: [{}]) would otherwise let it
    leave out what it requires, and fail later."""

    def validate(self, attrs):
        missing = [name for name, field in self.fields.items() if field.required and name not in attrs]
        if missing:
            raise serializers.ValidationError({name: "This field is required." for name in missing})
        return attrs


def known_zones(hints):
    """Availability zone hints must name zones that exist (404 otherwise, as Neutron says)."""
    for hint in hints:
        if hint != conf.AVAILABILITY_ZONE:
            raise errors.not_found_as("AvailabilityZoneNotFound", f"AvailabilityZone {hint} could not be found.")
    return hints


class PoolSerializer(WholeSerializer):
    start = IPAddressField()
    end = IPAddressField()


class HostRouteSerializer(WholeSerializer):
    destination = CIDRField()
    nexthop = IPAddressField()


class FixedIPSerializer(serializers.Serializer):
    subnet_id = serializers.UUIDField(required=False)
    ip_address = IPAddressField(required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("each fixed IP needs a subnet_id or an ip_address")
        return attrs


class AddressPairSerializer(serializers.Serializer):
    ip_address = serializers.CharField()
    mac_address = MacAddressField(required=False)

    def validate_ip_address(self, value):
        try:
            return str(ipaddress.ip_network(value, strict=False)) if "/" in value else str(ipaddress.ip_address(value))
        except ValueError:
            raise serializers.ValidationError(f"'{value}' is not a valid IP address or CIDR")


class NetworkSerializer(NeutronSerializer):
    wire_names = {"router:external": "external", "provider:network_type": "network_type",
                  "provider:physical_network": "physical_network",
                  "provider:segmentation_id": "segmentation_id"}
    admin_state_up = serializers.BooleanField(required=False)
    shared = serializers.BooleanField(required=False)
    external = serializers.BooleanField(required=False)
    port_security_enabled = serializers.BooleanField(required=False)
    mtu = serializers.IntegerField(min_value=68, max_value=9216, required=False)
    network_type = serializers.ChoiceField(choices=Network.Type.values, required=False)
    physical_network = serializers.CharField(max_length=64, allow_null=True, required=False)
    segmentation_id = serializers.IntegerField(min_value=1, max_value=2 ** 24 - 1, allow_null=True, required=False)
    availability_zone_hints = serializers.ListField(child=serializers.CharField(max_length=255), required=False)

    def validate_availability_zone_hints(self, hints):
        return known_zones(hints)


class SubnetSerializer(NeutronSerializer):
    network_id = serializers.UUIDField()
    ip_version = serializers.ChoiceField(choices=[4, 6], required=False)
    cidr = CIDRField(required=False)  # or cut from the subnet pool
    subnetpool_id = serializers.UUIDField(allow_null=True, required=False)
    prefixlen = serializers.IntegerField(min_value=0, max_value=128, required=False)
    gateway_ip = IPAddressField(allow_null=True, required=False)
    allocation_pools = PoolSerializer(many=True, required=False)
    dns_nameservers = serializers.ListField(child=IPAddressField(), required=False)
    host_routes = HostRouteSerializer(many=True, required=False)
    enable_dhcp = serializers.BooleanField(required=False)
    ipv6_ra_mode = serializers.ChoiceField(choices=IPV6_MODES, allow_null=True, required=False)
    ipv6_address_mode = serializers.ChoiceField(choices=IPV6_MODES, allow_null=True, required=False)

    def validate(self, attrs):
        version = attrs.get("ip_version", 4)
        if not self.partial and "cidr" not in attrs and attrs.get("subnetpool_id") is None:
            raise serializers.ValidationError({"cidr": "This field is required without a subnetpool_id."})
        if "prefixlen" in attrs and "cidr" in attrs:
            raise serializers.ValidationError({"prefixlen": "cidr and prefixlen are mutually exclusive"})
        if "cidr" in attrs and ipaddress.ip_network(attrs["cidr"]).version != version:
            raise serializers.ValidationError({"ip_version": f"cidr {attrs['cidr']} is not an IPv{version} subnet"})
        ra_mode, address_mode = attrs.get("ipv6_ra_mode"), attrs.get("ipv6_address_mode")
        if version == 4 and (ra_mode or address_mode):
            raise serializers.ValidationError({"ipv6_address_mode" if address_mode else "ipv6_ra_mode":
                                               "ipv6_ra_mode and ipv6_address_mode are for IPv6 subnets only"})
        if ra_mode and address_mode and ra_mode != address_mode:
            raise serializers.ValidationError({"ipv6_ra_mode": f"ipv6_ra_mode set to '{ra_mode}' with "
                                                               f"ipv6_address_mode set to '{address_mode}' is "
                                                               f"not valid: they must be the same"})
        if (address_mode or ra_mode) in ("slaac", "dhcpv6-stateless") and "cidr" in attrs and \
                ipaddress.ip_network(attrs["cidr"]).prefixlen != 64:
            raise serializers.ValidationError({"cidr": f"Invalid CIDR {attrs['cidr']} for IPv6 address mode: "
                                                       f"EUI-64 addresses (SLAAC) need a /64 prefix"})
        return attrs


class SubnetUpdateSerializer(SubnetSerializer):
    fixed_after_create = ("network_id", "ip_version", "cidr", "ipv6_ra_mode", "ipv6_address_mode",
                          "subnetpool_id", "prefixlen")
    network_id = None
    ip_version = None
    cidr = None
    subnetpool_id = None
    prefixlen = None
    ipv6_ra_mode = None
    ipv6_address_mode = None


class SubnetPoolSerializer(NeutronSerializer):
    prefixes = serializers.ListField(child=CIDRField(), min_length=1)
    default_prefixlen = serializers.IntegerField(min_value=0, max_value=128, required=False)
    min_prefixlen = serializers.IntegerField(min_value=0, max_value=128, required=False)
    max_prefixlen = serializers.IntegerField(min_value=0, max_value=128, required=False)
    shared = serializers.BooleanField(required=False)
    is_default = serializers.BooleanField(required=False)

    def validate_prefixes(self, prefixes):
        if len({ipaddress.ip_network(prefix).version for prefix in prefixes}) > 1:
            raise serializers.ValidationError("prefixes of one pool are all IPv4 or all IPv6")
        return prefixes


class SubnetPoolUpdateSerializer(SubnetPoolSerializer):
    fixed_after_create = ("shared",)
    shared = None


class PortSerializer(NeutronSerializer):
    wire_names = {"binding:host_id": "binding_host_id", "binding:profile": "binding_profile",
                  "binding:vnic_type": "binding_vnic_type"}
    network_id = serializers.UUIDField()
    admin_state_up = serializers.BooleanField(required=False)
    mac_address = MacAddressField(required=False)
    fixed_ips = FixedIPSerializer(many=True, required=False)
    device_owner = serializers.CharField(max_length=255, allow_blank=True, required=False)
    device_id = serializers.CharField(max_length=255, allow_blank=True, required=False)
    binding_host_id = serializers.CharField(max_length=255, allow_blank=True, allow_null=True, required=False)
    binding_profile = serializers.DictField(required=False, allow_null=True)
    binding_vnic_type = serializers.ChoiceField(choices=["normal"], required=False)
    security_groups = serializers.ListField(child=serializers.UUIDField(), required=False)
    allowed_address_pairs = AddressPairSerializer(many=True, required=False)
    port_security_enabled = serializers.BooleanField(required=False)


class PortUpdateSerializer(PortSerializer):
    fixed_after_create = ("network_id",)
    network_id = None


class SecurityGroupSerializer(NeutronSerializer):
    stateful = serializers.BooleanField(required=False)


class SecurityGroupRuleSerializer(NeutronSerializer):
    name = None
    security_group_id = serializers.UUIDField()
    direction = serializers.ChoiceField(choices=["ingress", "egress"])
    ethertype = serializers.ChoiceField(choices=["IPv4", "IPv6"], required=False)
    protocol = serializers.CharField(max_length=16, allow_null=True, required=False)
    # Port bounds and the remote group's existence are checked by the view,
    # with Neutron's messages (Invalid value for port N; a 404 for a group
    # that is not there, whatever its id looks like).
    port_range_min = serializers.IntegerField(allow_null=True, required=False)
    port_range_max = serializers.IntegerField(allow_null=True, required=False)
    remote_ip_prefix = CIDRField(allow_null=True, required=False)
    remote_group_id = serializers.CharField(max_length=255, allow_null=True, required=False)
    remote_address_group_id = serializers.UUIDField(allow_null=True, required=False)

    def validate_remote_address_group_id(self, value):
        if value is not None:
            raise serializers.ValidationError("address groups are not supported")
        return value


class GatewaySerializer(serializers.Serializer):
    network_id = serializers.UUIDField()
    enable_snat = serializers.BooleanField(required=False)
    external_fixed_ips = FixedIPSerializer(many=True, required=False)

    def run_validation(self, data=serializers.empty):
        # Neutron takes an empty object as no gateway, as null is.
        if data == {}:
            return {}
        return super().run_validation(data)


class RouteSerializer(HostRouteSerializer):
    pass


class RouterSerializer(NeutronSerializer):
    admin_state_up = serializers.BooleanField(required=False)
    external_gateway_info = GatewaySerializer(allow_null=True, required=False)
    routes = RouteSerializer(many=True, required=False, allow_null=True)  # null: no routes, as Neutron
    availability_zone_hints = serializers.ListField(child=serializers.CharField(max_length=255), required=False)
    distributed = serializers.BooleanField(required=False)
    ha = serializers.BooleanField(required=False)

    def validate_availability_zone_hints(self, hints):
        return known_zones(hints)

    def validate_routes(self, routes):
        # allow_null lets the list be null; each route still has to be one.
        if routes is not None and any(route is None for route in routes):
            raise serializers.ValidationError("each route must be an object with destination and nexthop")
        return routes

    def validate_distributed(self, value):
        if value:
            raise serializers.ValidationError("distributed routers are not supported")
        return value

    def validate_ha(self, value):
        if value:
            raise serializers.ValidationError("HA routers are not supported")
        return value


class RouterInterfaceSerializer(serializers.Serializer):
    subnet_id = serializers.UUIDField(required=False)
    port_id = serializers.UUIDField(required=False)

    def validate(self, attrs):
        if ("subnet_id" in attrs) == ("port_id" in attrs):
            raise serializers.ValidationError("Either subnet_id or port_id must be specified")
        return attrs


class FloatingIPSerializer(NeutronSerializer):
    name = None
    floating_network_id = serializers.UUIDField()
    floating_ip_address = IPAddressField(required=False)
    subnet_id = serializers.UUIDField(required=False, allow_null=True)
    port_id = serializers.UUIDField(required=False, allow_null=True)
    fixed_ip_address = IPAddressField(required=False, allow_null=True)


class FloatingIPUpdateSerializer(FloatingIPSerializer):
    fixed_after_create = ("floating_network_id", "floating_ip_address", "subnet_id")
    floating_network_id = None
    floating_ip_address = None
    subnet_id = None
