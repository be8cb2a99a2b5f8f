"""routers on IPv6 subnets: the router's legs hold the subnets' gateway
addresses, it forwards IPv6 between them without NAT, and it advertises
itself as the default router with each subnet's ipv6_ra_mode flags (beside
the network's DHCP server, which advertises the same prefix with a router
lifetime of 0), so fake machines on two subnets reach each other."""
from dataclasses import replace

from network.agent import bridges, dhcp, firewall, iplib, routers
from network.agent.resources import FixedIP, Network, Port, Router, RouterInterface, SecurityGroupRule, Subnet
from network.addressing import eui64_address

from .conftest import mac_of, new_id

RULES = (SecurityGroupRule("egress", "IPv6"), SecurityGroupRule("ingress", "IPv6", "ipv6-icmp"))


def v6_segment(lab, host, number, mode):
    """A network with the IPv6 subnet 2001:db8:<number>::/64 in `mode`, its
    DHCP server, a machine whose port has its address (EUI-64, or ::10 when
    stateful) and the router leg holding the gateway ::1."""
    network = Network(id=new_id(), mtu=1450)
    bridges.ensure_network(host, network)
    cidr = f"2001:db8:{number:x}::/64"
    subnet = Subnet(id=new_id(), cidr=cidr, gateway_ip=f"2001:db8:{number:x}::1", ipv6_ra_mode=mode,
                    ipv6_address_mode=mode)
    dhcp_port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(number * 16 + 2),
                     fixed_ips=(FixedIP(subnet.id, f"2001:db8:{number:x}::2"),))
    mac = mac_of(number * 16 + 10)
    address = f"2001:db8:{number:x}::10" if mode == "dhcpv6-stateful" else eui64_address(cidr, mac)
    port = Port(id=new_id(), network_id=network.id, mac_address=mac, fixed_ips=(FixedIP(subnet.id, address),),
                security_group_rules=RULES)
    lab.enable_dhcp(host, network, [subnet], dhcp_port, [port])
    firewall.apply_port(host, port)
    machine = lab.machine(host, network, port)
    machine.accept_router_advertisements()
    leg = RouterInterface(port_id=new_id(), network=network, mac_address=mac_of(number * 16 + 1),
                          ip_address=subnet.gateway_ip, cidr=cidr, ipv6_ra_mode=mode)
    return machine, address, leg


def test_machines_on_two_ipv6_subnets_route_through_the_router_it_advertises(lab):
    host = lab.host()
    first, first_address, first_leg = v6_segment(lab, host, 0x71, "slaac")
    second, second_address, second_leg = v6_segment(lab, host, 0x72, "dhcpv6-stateful")
    router = Router(id=new_id(), interfaces=(first_leg, second_leg), routes=(("2001:db8:99::/48", first_address),))
    lab.sync_router(host, router)
    namespace = routers.namespace_name(router)
    for leg in (first_leg, second_leg):
        assert f"{leg.ip_address}/64" in iplib.run(namespace, ["ip", "-6", "addr"]).stdout
    assert f"2001:db8:99::/48 via {first_address}" in iplib.run(namespace, ["ip", "-6", "route"]).stdout

    # The router's advertisements: itself as default router, the mode's flags.
    first_router = eui64_address("fe80::/64", first_leg.mac_address)
    second_router = eui64_address("fe80::/64", second_leg.mac_address)
    assert first.default_route6() == first_router
    assert first.wait_for_address6(first_address)
    assert second.default_route6() == second_router
    advert = second.router_advertisement(source=second_router)
    assert (advert["managed"], advert["router_lifetime"]) == (True, routers.ROUTER_LIFETIME)
    assert advert["prefixes"] == [{"prefix": "2001:db8:72::/64", "on_link": True, "autonomous": False}]
    # The stateful machine's address comes from the network's DHCP server, not the router's dnsmasq.
    lease = second.dhcp6()
    assert lease["new_ip6_address"] == second_address
    assert lease["new_dhcp6_server_id"] and second.addresses6() == [second_address]

    assert first.ping6(second_address)
    assert second.ping6(first_address)
    # Routed as it is: no NAT table for IPv6 in the router.
    tables = iplib.run(namespace, ["nft", "list", "tables"]).stdout.split("\n")
    assert "table ip stratus_nat" in tables and not any("ip6" in t and "nat" in t for t in tables)

    # A leg taken away: its subnet is no longer advertised nor routed; a static route taken away is gone.
    lab.sync_router(host, replace(router, interfaces=(first_leg,), routes=()))
    assert "2001:db8:99::/48" not in iplib.run(namespace, ["ip", "-6", "route"]).stdout
    assert not first.run("busybox", "ping", "-6", "-c", "2", "-W", "1", second_address).returncode == 0
    pid = dhcp.dnsmasq_pid(host.state_dir / "router-advertisements" / router.id / "pid")
    assert pid and f"--interface={routers.interface_name(routers.INTERNAL_PREFIX, second_leg.port_id)}" \
        not in dhcp.command_line_of(pid)
    # A router that is down advertises nothing and forwards nothing.
    lab.sync_router(host, replace(router, interfaces=(first_leg,), admin_state_up=False))
    assert dhcp.dnsmasq_pid(host.state_dir / "router-advertisements" / router.id / "pid") is None
    routers.delete_router(host, router)
    assert not iplib.namespace_exists(namespace)
