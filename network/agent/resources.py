"""What the agent is asked to make, as plain data the API's rows are turned
into. Every driver takes these; none of them knows about the database."""
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

# Names of the kernel objects Stratus owns start with these prefixes, so a
# resync never touches anything else; among them, each agent removes only
# what it made (Host.owner). Interface names are at most 15 characters
# (IFNAMSIZ - 1).
BRIDGE_PREFIX = "sbr"
VXLAN_PREFIX = "svx"
TAP_PREFIX = "stap"
DHCP_VETH_PREFIX = "sdh"
DHCP_NAMESPACE_PREFIX = "qdhcp-"


def bridge_name(network_id):
    return BRIDGE_PREFIX + network_id[:11]


def vxlan_name(vni):
    return f"{VXLAN_PREFIX}{vni}"


def tap_name(port_id):
    return TAP_PREFIX + port_id[:11]


@dataclass(frozen=True)
class Host:
    """The node the agent runs on: its network namespace (None: the root
    namespace; tests run several hosts as namespaces), the underlay
    interface and address VXLAN tunnels use, where state files live, and
    the agent's host name, which marks what it makes: several agents may
    share one namespace (tests, simulated nodes beside a real one), and
    none may remove another's bridges or rules as stale."""
    namespace: str | None = None
    underlay_interface: str | None = None
    local_ip: str | None = None
    state_dir: Path = Path("var/network")
    name: str = ""

    @property
    def owner(self):
        """The mark on this agent's links (their ifalias)."""
        return f"stratus:{self.name}" if self.name else "stratus"

    @property
    def tag(self):
        """The owner as an nftables name may carry it."""
        return re.sub(r"[^A-Za-z0-9_]", "_", self.name or "default")


@dataclass(frozen=True)
class Network:
    id: str
    mtu: int = 1450
    vni: int | None = None                  # VXLAN segmentation id
    physical_interface: str | None = None   # a flat network's host interface

    @property
    def bridge(self):
        return bridge_name(self.id)


@dataclass(frozen=True)
class Subnet:
    id: str
    cidr: str
    gateway_ip: str | None = None
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[tuple[str, str], ...] = ()   # (destination, nexthop)
    enable_dhcp: bool = True
    # IPv6 only, as Neutron's: who sends router advertisements (ra_mode) and
    # how hosts get addresses (address_mode): slaac, dhcpv6-stateless,
    # dhcpv6-stateful; None: neither (static, or an outside router).
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None

    @property
    def network(self):
        return ipaddress.ip_network(self.cidr)

    @property
    def version(self):
        return self.network.version


@dataclass(frozen=True)
class FixedIP:
    subnet_id: str
    ip_address: str


@dataclass(frozen=True)
class AddressPair:
    ip_address: str                 # an address or a prefix
    mac_address: str | None = None  # None: the port's own MAC


@dataclass(frozen=True)
class SecurityGroupRule:
    direction: str                      # "ingress" (to the port) or "egress"
    ethertype: str = "IPv4"             # "IPv4" or "IPv6"
    protocol: str | None = None         # tcp, udp, icmp, ... or a number; None: any
    port_range_min: int | None = None   # for ICMP: the type
    port_range_max: int | None = None   # for ICMP: the code
    remote_ip_prefix: str | None = None
    # The addresses of a remote group's ports, resolved by the caller from
    # remote_group_id; None when the rule has no remote group.
    remote_addresses: tuple[str, ...] | None = None
    # The remote group itself, when known: its members are then one named
    # set on the host that every port's rule naming the group shares.
    remote_group_id: str | None = None


@dataclass(frozen=True)
class Port:
    id: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[FixedIP, ...] = ()
    tap: str = ""
    security_group_rules: tuple[SecurityGroupRule, ...] = ()
    allowed_address_pairs: tuple[AddressPair, ...] = ()
    port_security_enabled: bool = True
    hostname: str | None = None     # the DNS name DHCP hands out

    def __post_init__(self):
        if not self.tap:
            object.__setattr__(self, "tap", tap_name(self.id))

    @property
    def bridge(self):
        return bridge_name(self.network_id)

    @property
    def dns_name(self):
        if self.hostname:
            return self.hostname
        first = self.fixed_ips[0].ip_address if self.fixed_ips else self.id[:8]
        return "host-" + first.replace(".", "-").replace(":", "-")


ROUTER_NAMESPACE_PREFIX = "qrouter-"
ROUTER_VETH_PREFIX = "srt"


@dataclass(frozen=True)
class RouterInterface:
    """A router's address in a subnet, on the leg of its port: a port with
    fixed IPs in several subnets is one leg holding each of them."""
    port_id: str
    network: Network
    mac_address: str
    ip_address: str
    cidr: str
    ipv6_ra_mode: str | None = None     # set: the router advertises the subnet's prefix on this leg

    @property
    def version(self):
        return ipaddress.ip_network(self.cidr, strict=False).version


@dataclass(frozen=True)
class RouterGateway:
    """A router's leg in the external network: its IPv4 address (the one
    SNAT and floating IPs use; None on an IPv6-only external network) and
    its IPv6 ones, through which tenant IPv6 subnets are routed as they are."""
    port_id: str
    network: Network
    mac_address: str
    ip_address: str | None
    cidr: str | None
    gateway_ip: str | None = None   # the external IPv4 subnet's gateway
    ipv6_addresses: tuple[tuple[str, str], ...] = ()   # (address, cidr)
    ipv6_gateway_ip: str | None = None   # the external IPv6 subnet's gateway


@dataclass(frozen=True)
class FloatingIP:
    floating_ip_address: str
    fixed_ip_address: str


@dataclass(frozen=True)
class Router:
    id: str
    interfaces: tuple[RouterInterface, ...] = ()
    gateway: RouterGateway | None = None
    enable_snat: bool = True
    floating_ips: tuple[FloatingIP, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()   # (destination, nexthop)
    admin_state_up: bool = True     # False: the namespace routes nothing
