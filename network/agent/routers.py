"""L3 on the network node: a `qrouter-<router id>` namespace per router with
a leg (veth into the network's bridge) per attached subnet (`qr-...`, holding
the subnet's gateway address) and one into the external network (`qg-...`,
holding the gateway port's addresses and the floating IPs), default routes
to the external gateways (IPv4 and IPv6), static routes, and NAT in one nftables table:
SNAT of the subnets to the gateway address, and DNAT/SNAT per floating IP.
IPv6 legs are routed as they are, without NAT (as in Neutron), and on those
whose subnet has an ipv6_ra_mode the router advertises the prefix, with the
mode's flags, as the subnet's default router: Neutron's L3 agent runs radvd
for this; here it is dnsmasq in router-advertisement mode, the daemon the
agent already runs and watches for DHCP, with the same mode-to-flags
mapping as the network's DHCP server, so both advertise a prefix alike
(the DHCP server with a router lifetime of 0). It answers no DHCPv6 from
the router: the network's DHCP server does.
`sync_router` converges a router to its desired state, removing legs,
addresses, routes, NAT rules and advertisements it no longer has."""
import ipaddress
import shutil
import threading
from collections import defaultdict

from . import bridges, dhcp, iplib
from .resources import ROUTER_NAMESPACE_PREFIX, ROUTER_VETH_PREFIX

NAT_TABLE = "ip stratus_nat"
# Drops DHCPv6 requests to the router's advertising dnsmasq (a managed
# prefix's range would have it answer them with "no addresses").
FILTER_TABLE = "inet stratus_router_filter"
# Default router lifetime in the router's advertisements, in seconds.
ROUTER_LIFETIME = 1800
# A router's changes (an interface, a floating IP) may arrive together: one
# sync of a router at a time.
_router_locks = defaultdict(threading.Lock)
INTERNAL_PREFIX = "qr-"
EXTERNAL_PREFIX = "qg-"


def namespace_name(router):
    return ROUTER_NAMESPACE_PREFIX + router.id


def veth_name(port_id):
    """The host side of a router leg, on the network's bridge."""
    return ROUTER_VETH_PREFIX + port_id[:11]


def interface_name(prefix, port_id):
    return prefix + port_id[:11]


def sync_router(host, router):
    """Makes the router's namespace, legs, addresses, routes and NAT match
    `router`. Idempotent."""
    with _router_locks[namespace_name(router)]:
        _sync(host, router)


def _sync(host, router):
    namespace = namespace_name(router)
    iplib.ensure_namespace(namespace)
    # A router that is administratively down keeps its legs but routes nothing.
    iplib.sysctl(namespace, "net.ipv4.ip_forward", 1 if router.admin_state_up else 0)
    iplib.sysctl(namespace, "net.ipv6.conf.all.forwarding", 1 if router.admin_state_up else 0)
    _marker(host, router).touch()

    # One leg per port, with its address in each of the port's subnets.
    legs = {}
    for interface in router.interfaces:
        device = interface_name(INTERNAL_PREFIX, interface.port_id)
        legs.setdefault(device, (device, interface, []))[2].append(
            (interface.ip_address, _prefixlen(interface.cidr)))
    legs = list(legs.values())
    gateway_device = None
    if router.gateway:
        gateway = router.gateway
        gateway_device = interface_name(EXTERNAL_PREFIX, gateway.port_id)
        addresses = [(gateway.ip_address, _prefixlen(gateway.cidr))] if gateway.ip_address else []
        addresses += [(address, _prefixlen(cidr)) for address, cidr in gateway.ipv6_addresses]
        addresses += [(f.floating_ip_address, 32) for f in router.floating_ips]
        legs.append((gateway_device, gateway, addresses))

    wanted = {device for device, _, _ in legs}
    with iplib.ip(namespace) as handle:
        for link in iplib.links(handle):
            if link["name"].startswith((INTERNAL_PREFIX, EXTERNAL_PREFIX)) and link["name"] not in wanted:
                iplib.delete_link(handle, link["name"])
    for device, leg, addresses in legs:
        _ensure_leg(host, namespace, device, leg, addresses)
    _sync_routes(namespace, router, gateway_device)
    _sync_nat(namespace, router, gateway_device)
    _sync_advertisements(host, namespace, router)


def delete_router(host, router):
    """Removes the router's legs and namespace, if this host made them (the
    namespace's name is the same on every host)."""
    marker = _marker(host, router)
    if not marker.exists():
        return
    _stop_advertising(host, router.id)
    _delete_namespace(namespace_name(router))
    marker.unlink()


def resync(host, desired):
    """Syncs each desired router and deletes the routers this host made
    before that are no longer wanted."""
    for router in desired:
        sync_router(host, router)
    remove_stale(host, {router.id for router in desired})


def remove_stale(host, wanted):
    """Deletes the routers this host made whose ids are not in `wanted`."""
    directory = host.state_dir / "routers"
    if directory.exists():
        for marker in directory.iterdir():
            if marker.name not in wanted:
                _stop_advertising(host, marker.name)
                _delete_namespace(ROUTER_NAMESPACE_PREFIX + marker.name)
                marker.unlink()


def _delete_namespace(namespace):
    # The kernel destroys a deleted namespace's interfaces later, in the
    # background: delete the legs first, so their bridge ends are gone on return.
    if iplib.namespace_exists(namespace):
        with iplib.ip(namespace) as handle:
            for link in iplib.links(handle):
                if link["name"].startswith((INTERNAL_PREFIX, EXTERNAL_PREFIX)):
                    iplib.delete_link(handle, link["name"])
    iplib.delete_namespace(namespace)


def _marker(host, router):
    # Which routers this host made, so a resync finds the stale ones among
    # the machine's namespaces without touching anyone else's.
    directory = host.state_dir / "routers"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / router.id


def _prefixlen(cidr):
    return ipaddress.ip_network(cidr, strict=False).prefixlen


def _ensure_leg(host, namespace, device, leg, addresses):
    outside = veth_name(leg.port_id)
    with iplib.ip(host.namespace) as handle:
        iplib.ensure_veth(handle, outside, device, namespace)
    bridges.plug(host, leg.network, outside)
    # Its link-local address, the next hop IPv6 hosts route through, is usable at once.
    iplib.sysctl(namespace, f"net.ipv6.conf.{device}.accept_dad", 0)
    with iplib.ip(namespace) as handle:
        index = iplib.link_index(handle, device)
        handle.link("set", index=index, address=leg.mac_address, mtu=leg.network.mtu, state="up")
        iplib.set_addresses_by_family(handle, device, addresses)


def _sync_routes(namespace, router, gateway_device):
    """Routes through a next hop: the default one to the external gateway and
    the router's static routes; any other such route is removed."""
    wanted = {(str(ipaddress.ip_network(d, strict=False)), n) for d, n in router.routes}
    if router.gateway and router.gateway.gateway_ip:
        wanted.add(("0.0.0.0/0", router.gateway.gateway_ip))
    if router.gateway and router.gateway.ipv6_gateway_ip:
        wanted.add(("::/0", router.gateway.ipv6_gateway_ip))
    with iplib.ip(namespace) as handle:
        present = {}
        for family, default in ((iplib.IPV4, "0.0.0.0"), (iplib.IPV6, "::")):
            for route in handle.route("dump", family=family, table=254):
                nexthop = route.get("RTA_GATEWAY")
                if nexthop:
                    destination = f"{route.get('RTA_DST') or default}/{route['dst_len']}"
                    present[(destination, nexthop)] = route
        for destination, nexthop in present.keys() - wanted:
            handle.route("del", dst=destination, gateway=nexthop)
        for destination, nexthop in wanted - present.keys():
            handle.route("replace", dst=destination, gateway=nexthop)


def _sync_nat(namespace, router, gateway_device):
    """The router's whole NAT table, replaced in one transaction."""
    lines = [f"add table {NAT_TABLE}", f"delete table {NAT_TABLE}", f"add table {NAT_TABLE}",
             f"add chain {NAT_TABLE} prerouting {{ type nat hook prerouting priority -100; policy accept; }}",
             f"add chain {NAT_TABLE} postrouting {{ type nat hook postrouting priority 100; policy accept; }}"]
    if gateway_device and router.gateway.ip_address:
        for floating in router.floating_ips:
            lines.append(f"add rule {NAT_TABLE} prerouting ip daddr {floating.floating_ip_address} "
                         f"dnat to {floating.fixed_ip_address}")
            lines.append(f'add rule {NAT_TABLE} postrouting oifname "{gateway_device}" '
                         f"ip saddr {floating.fixed_ip_address} snat to {floating.floating_ip_address}")
        # IPv4 only: IPv6 is routed without NAT.
        subnets = sorted({str(ipaddress.ip_network(i.cidr, strict=False)) for i in router.interfaces
                          if i.version == 4})
        if router.floating_ips and subnets:
            # A machine reaching another's floating IP from inside: the reply
            # must come back through the router, so the router stands in as
            # the source.
            lines.append(f'add rule {NAT_TABLE} postrouting oifname != "{gateway_device}" ct status dnat '
                         f"ip saddr {{ {', '.join(subnets)} }} masquerade")
        if router.enable_snat and subnets:
            lines.append(f'add rule {NAT_TABLE} postrouting oifname "{gateway_device}" '
                         f"ip saddr {{ {', '.join(subnets)} }} snat to {router.gateway.ip_address}")
    iplib.run(namespace, ["nft", "-f", "-"], input="\n".join(lines) + "\n")


def _advertising_dir(host, router_id):
    return host.state_dir / "router-advertisements" / router_id


def _sync_advertisements(host, namespace, router):
    """Runs (or restarts, when its legs changed) the router's advertising
    dnsmasq for its IPv6 legs with an ipv6_ra_mode, or stops it when there
    are none; a router that is administratively down advertises nothing."""
    legs = [(interface_name(INTERNAL_PREFIX, leg.port_id), leg) for leg in router.interfaces
            if leg.version == 6 and leg.ipv6_ra_mode in dhcp.ADVERTISED_RANGE] if router.admin_state_up else []
    directory = _advertising_dir(host, router.id)
    pid = dhcp.dnsmasq_pid(directory / "pid")
    if not legs:
        _stop_advertising(host, router.id)
        iplib.run(namespace, ["nft", "-f", "-"], input=f"add table {FILTER_TABLE}\ndelete table {FILTER_TABLE}\n")
        return
    argv = [shutil.which("dnsmasq") or "/usr/sbin/dnsmasq",
            "--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--port=0",
            f"--pid-file={directory / 'pid'}", f"--dhcp-leasefile={directory / 'leases'}",
            f"--log-facility={directory / 'log'}", "--bind-interfaces", "--user=root", "--group=root"]
    advertised = set()
    for device, leg in sorted(legs, key=lambda item: (item[0], item[1].cidr)):
        if device not in advertised:   # a leg in several IPv6 subnets advertises them all
            advertised.add(device)
            argv += [f"--interface={device}",
                     f"--ra-param={device},mtu:{leg.network.mtu},{dhcp.RA_INTERVAL},{ROUTER_LIFETIME}"]
        prefix = ipaddress.ip_network(leg.cidr, strict=False)
        argv.append(f"--dhcp-range=set:{device},{prefix.network_address},{dhcp.ADVERTISED_RANGE[leg.ipv6_ra_mode]},"
                    f"{prefix.prefixlen}")
    if any(leg.ipv6_ra_mode == dhcp.STATEFUL for _, leg in legs):
        argv.append("--enable-ra")
    iplib.run(namespace, ["nft", "-f", "-"], input="\n".join([
        f"add table {FILTER_TABLE}", f"delete table {FILTER_TABLE}", f"add table {FILTER_TABLE}",
        f"add chain {FILTER_TABLE} input {{ type filter hook input priority 0; policy accept; }}",
        f"add rule {FILTER_TABLE} input udp dport 547 drop"]) + "\n")
    if pid and dhcp.command_line_of(pid) == argv:
        return
    if pid:
        dhcp.stop_process(pid)
    directory.mkdir(parents=True, exist_ok=True)
    dhcp.start_dnsmasq(namespace, directory, argv)


def _stop_advertising(host, router_id):
    directory = _advertising_dir(host, router_id)
    pid = dhcp.dnsmasq_pid(directory / "pid")
    if pid:
        dhcp.stop_process(pid)
    shutil.rmtree(directory, ignore_errors=True)
