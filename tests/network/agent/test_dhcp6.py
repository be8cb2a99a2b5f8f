"""dhcp on IPv6 subnets: the network's dnsmasq advertises the prefix with
the flags of the subnet's Neutron mode and answers DHCPv6, seen from fake
machines behind their ports' rules: SLAAC machines take the EUI-64 address
the API gives their port, stateful ones get exactly their port's address
from a DHCPv6 client, stateless ones their DNS servers; and port security
lets a machine's own IPv6 addresses, link-local one and neighbour discovery
through but no other source and no advertisement of its own."""
import sys

import pytest

from network.agent import bridges, dhcp, firewall, iplib
from network.agent.resources import FixedIP, Network, Port, SecurityGroupRule, Subnet
from network.addressing import eui64_address

from .conftest import mac_of, new_id

PREFIX = "2001:db8:60::/64"
EGRESS6 = SecurityGroupRule("egress", "IPv6")
PING6 = SecurityGroupRule("ingress", "IPv6", "ipv6-icmp")
# A router advertisement for 2001:db8:bad::/64 (autonomous) sent from eth0.
ROGUE_ADVERTISEMENT = """
import socket, struct
sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
prefix = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + socket.inet_pton(socket.AF_INET6, "2001:db8:bad::")
advert = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0) + prefix
for _ in range(3):
    sock.sendto(advert, ("ff02::1", 0, 0, socket.if_nametoindex("eth0")))
"""


def v6_network(lab, host, mode, dns=()):
    network = Network(id=new_id(), mtu=1450)
    subnet = Subnet(id=new_id(), cidr=PREFIX, gateway_ip="2001:db8:60::1", dns_nameservers=tuple(dns),
                    ipv6_ra_mode=mode, ipv6_address_mode=mode)
    bridges.ensure_network(host, network)
    dhcp_port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(2),
                     fixed_ips=(FixedIP(subnet.id, "2001:db8:60::2"),))
    return network, subnet, dhcp_port


def machine_port(network, subnet, number, rules=(EGRESS6,)):
    mac = mac_of(number)
    address = eui64_address(subnet.cidr, mac) if subnet.ipv6_address_mode != "dhcpv6-stateful" \
        else f"2001:db8:60::{number:x}"
    return Port(id=new_id(), network_id=network.id, mac_address=mac, fixed_ips=(FixedIP(subnet.id, address),),
                security_group_rules=tuple(rules), hostname=f"vm{number}")


def secured_machine(lab, host, network, port):
    firewall.apply_port(host, port)
    machine = lab.machine(host, network, port)
    machine.accept_router_advertisements()
    return machine


def test_slaac_machines_take_their_eui64_address_from_the_advertised_prefix(lab):
    host = lab.host()
    network, subnet, dhcp_port = v6_network(lab, host, "slaac")
    port = machine_port(network, subnet, 0x10)
    lab.enable_dhcp(host, network, [subnet], dhcp_port, [port])
    machine = secured_machine(lab, host, network, port)

    advert = machine.router_advertisement()
    assert (advert["managed"], advert["other"]) == (False, False)
    assert advert["prefixes"] == [{"prefix": PREFIX, "on_link": True, "autonomous": True}]
    # Sent from the DHCP port's link-local address, which is no router.
    assert advert["source"] == eui64_address("fe80::/64", dhcp_port.mac_address)
    assert advert["router_lifetime"] == 0
    assert machine.wait_for_address6(port.fixed_ips[0].ip_address)
    assert machine.addresses6() == [port.fixed_ips[0].ip_address]
    assert machine.default_route6(timeout=2) is None
    # No DHCPv6 server for a SLAAC subnet.
    listening = iplib.run(dhcp.namespace_name(network), ["ss", "-Hlun"]).stdout
    assert ":547" not in listening


def test_stateless_machines_take_slaac_addresses_and_dns_servers_from_dhcpv6(lab):
    host = lab.host()
    network, subnet, dhcp_port = v6_network(lab, host, "dhcpv6-stateless", dns=("2001:db8:53::53",))
    port = machine_port(network, subnet, 0x11)
    lab.enable_dhcp(host, network, [subnet], dhcp_port, [port])
    machine = secured_machine(lab, host, network, port)

    advert = machine.router_advertisement()
    assert (advert["managed"], advert["other"], advert["prefixes"][0]["autonomous"]) == (False, True, True)
    assert machine.wait_for_address6(port.fixed_ips[0].ip_address)
    options = machine.dhcp6(stateless=True)
    assert options["new_dhcp6_name_servers"].split() == ["2001:db8:53::53"]
    assert "new_ip6_address" not in options


def test_stateful_machines_get_exactly_their_ports_address_by_mac(lab):
    host = lab.host()
    network, subnet, dhcp_port = v6_network(lab, host, "dhcpv6-stateful")
    ports = [machine_port(network, subnet, number) for number in (0x20, 0x21)]
    lab.enable_dhcp(host, network, [subnet], dhcp_port, ports[:1])
    machines = [secured_machine(lab, host, network, port) for port in ports]

    advert = machines[0].router_advertisement()
    assert (advert["managed"], advert["other"]) == (True, True)
    # On-link, but no address of the machine's own making.
    assert advert["prefixes"] == [{"prefix": PREFIX, "on_link": True, "autonomous": False}]
    lease = machines[0].dhcp6()
    assert lease["new_ip6_address"] == "2001:db8:60::20"
    # The DHCP port answers DNS by default, and knows the machine's name.
    assert lease["new_dhcp6_name_servers"].split() == ["2001:db8:60::2"]
    assert machines[0].addresses6() == ["2001:db8:60::20"]

    # A port added later is served after a reload.
    pid = dhcp.running_pid(host, network)
    dhcp.set_port(host, network, [subnet], ports[1])
    assert machines[1].dhcp6()["new_ip6_address"] == "2001:db8:60::21"
    assert dhcp.running_pid(host, network) == pid
    assert machines[0].ping6("2001:db8:60::2")


def test_a_machine_with_port_security_sends_only_from_its_own_ipv6_addresses(lab):
    host = lab.host()
    network, subnet, dhcp_port = v6_network(lab, host, "slaac")
    sender, receiver = (machine_port(network, subnet, number, rules=(EGRESS6, PING6)) for number in (0x30, 0x31))
    lab.enable_dhcp(host, network, [subnet], dhcp_port, [sender, receiver])
    machines = [secured_machine(lab, host, network, port) for port in (sender, receiver)]
    a, b = machines
    for machine in machines:
        assert machine.wait_for_address6(machine.port.fixed_ips[0].ip_address)
    target = receiver.fixed_ips[0].ip_address
    receiver_link_local = eui64_address("fe80::/64", receiver.mac_address)

    assert a.ping6(target)
    assert a.ping6(f"{receiver_link_local}%eth0")
    # Another global source, another link-local one: dropped at the port.
    a.run("ip", "-6", "addr", "add", "2001:db8:60::66/64", "dev", "eth0", "nodad", check=True)
    assert not a.run("busybox", "ping", "-6", "-c", "2", "-W", "1", "-I", "2001:db8:60::66", target).returncode == 0
    a.run("ip", "-6", "addr", "add", "fe80::66/64", "dev", "eth0", "nodad", check=True)
    assert not a.run("busybox", "ping", "-6", "-c", "2", "-W", "1", "-I", "fe80::66",
                     f"{receiver_link_local}%eth0").returncode == 0

    # A machine's own router advertisement reaches nobody.
    a.run(sys.executable, "-c", ROGUE_ADVERTISEMENT, check=True)
    assert not b.wait_for_address6(eui64_address("2001:db8:bad::/64", receiver.mac_address), timeout=3)
    assert b.addresses6() == [target]


@pytest.mark.parametrize("mode, flags", [("slaac", (False, False, True)),
                                         ("dhcpv6-stateless", (False, True, True)),
                                         ("dhcpv6-stateful", (True, True, False))])
def test_each_mode_is_advertised_with_neutrons_flags_beside_an_ipv4_subnet(lab, mode, flags):
    host = lab.host()
    network, subnet, dhcp_port = v6_network(lab, host, mode)
    v4 = Subnet(id=new_id(), cidr="10.61.0.0/24", gateway_ip="10.61.0.1")
    dhcp_port = Port(id=dhcp_port.id, network_id=network.id, mac_address=dhcp_port.mac_address,
                     fixed_ips=dhcp_port.fixed_ips + (FixedIP(v4.id, "10.61.0.2"),))
    port = machine_port(network, subnet, 0x40)
    port = Port(id=port.id, network_id=network.id, mac_address=port.mac_address,
                fixed_ips=port.fixed_ips + (FixedIP(v4.id, "10.61.0.40"),),
                security_group_rules=(EGRESS6, SecurityGroupRule("egress", "IPv4")))
    lab.enable_dhcp(host, network, [v4, subnet], dhcp_port, [port])
    machine = secured_machine(lab, host, network, port)

    advert = machine.router_advertisement()
    assert (advert["managed"], advert["other"], advert["prefixes"][0]["autonomous"]) == flags
    assert machine.dhcp()["ip"] == "10.61.0.40"
