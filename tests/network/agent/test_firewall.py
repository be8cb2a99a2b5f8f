"""firewall: security-group rules and anti-spoofing per port, seen from fake
machines on one bridge: what gets through and what does not."""
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from network.agent import bridges, firewall, iplib
from network.agent.resources import AddressPair, FixedIP, Network, Port, SecurityGroupRule

from .conftest import mac_of, new_id

ALLOW_EGRESS = SecurityGroupRule("egress", "IPv4")
ALLOW_PING = SecurityGroupRule("ingress", "IPv4", "icmp")


def make_port(network, number, rules=(ALLOW_EGRESS,), **fields):
    return Port(id=new_id(), network_id=network.id, mac_address=mac_of(number),
                fixed_ips=(FixedIP("s", f"10.40.0.{number}"),), security_group_rules=tuple(rules),
                **fields)


@pytest.fixture
def segment(lab):
    """A host with a bridge and a function making a machine with a port
    at 10.40.0.<number>, its rules applied."""
    host = lab.host()
    network = Network(id=new_id())
    bridges.ensure_network(host, network)

    def machine(number, rules=(ALLOW_EGRESS,), **fields):
        port = make_port(network, number, rules, **fields)
        firewall.apply_port(host, port)
        machine = lab.machine(host, network, port)
        machine.set_address(f"10.40.0.{number}/24")
        return machine

    machine.host, machine.network = host, network
    return machine


def test_ingress_is_denied_until_a_rule_allows_it_and_again_once_it_is_removed(segment):
    a, b = segment(10), segment(11)
    assert a.unreachable("10.40.0.11")

    firewall.apply_port(segment.host, replace(b.port, security_group_rules=(ALLOW_EGRESS, ALLOW_PING)))
    assert a.reachable("10.40.0.11")

    firewall.apply_port(segment.host, b.port)
    assert a.unreachable("10.40.0.11")

    firewall.apply_port(segment.host, replace(b.port, security_group_rules=(ALLOW_EGRESS, ALLOW_PING)))
    assert a.reachable("10.40.0.11")


def test_replies_pass_but_a_port_without_egress_rules_cannot_start_traffic(segment):
    a = segment(10, rules=(ALLOW_EGRESS, ALLOW_PING))
    b = segment(11, rules=(ALLOW_PING,))
    assert a.reachable("10.40.0.11")      # b's echo replies leave as established
    assert b.unreachable("10.40.0.10")    # b may not send a new request


def test_tcp_port_range_and_remote_prefix(segment):
    ssh_from_a = SecurityGroupRule("ingress", "IPv4", "tcp", 2200, 2300, remote_ip_prefix="10.40.0.10/32")
    server = segment(11, rules=(ALLOW_EGRESS, ssh_from_a))
    a, c = segment(10), segment(12)
    server.serve_tcp(2222)
    server.serve_tcp(2400)

    assert a.tcp_connects("10.40.0.11", 2222)
    assert not a.tcp_connects("10.40.0.11", 2400)
    assert not c.tcp_connects("10.40.0.11", 2222)


def test_a_remote_group_admits_its_members_only(segment):
    from_members = SecurityGroupRule("ingress", "IPv4", "icmp", remote_addresses=("10.40.0.12",))
    target = segment(11, rules=(ALLOW_EGRESS, from_members))
    outsider, member = segment(10), segment(12)
    assert member.reachable("10.40.0.11")
    assert outsider.unreachable("10.40.0.11")


def group_sets(host):
    """The remote-group sets in the host's table: {name: elements}."""
    family, table = firewall.tables(host)[1].split()
    listed = json.loads(iplib.run(host.namespace, ["nft", "-j", "list", "table", family, table]).stdout)
    return {item["set"]["name"]: item["set"].get("elem", []) for item in listed["nftables"]
            if "set" in item and item["set"]["name"].startswith(firewall.GROUP_SET_PREFIX)}


def test_ports_naming_one_remote_group_share_its_set_and_see_its_members_change(segment):
    group = new_id()

    def from_group(*members):
        return SecurityGroupRule("ingress", "IPv4", "icmp", remote_addresses=members, remote_group_id=group)

    first = segment(11, rules=(ALLOW_EGRESS, from_group("10.40.0.12")))
    second = segment(13, rules=(ALLOW_EGRESS, from_group("10.40.0.12")))
    member, outsider = segment(12), segment(10)
    assert member.reachable("10.40.0.11") and member.reachable("10.40.0.13")
    assert outsider.unreachable("10.40.0.11")
    assert group_sets(segment.host) == {f"rg4-{group}": ["10.40.0.12"]}   # once, not once per port

    # The group gains a member: written through one port, admitted by both.
    firewall.apply_port(segment.host, replace(first.port, security_group_rules=(
        ALLOW_EGRESS, from_group("10.40.0.12", "10.40.0.10"))))
    assert outsider.reachable("10.40.0.13")

    assert firewall.remove_stale_group_sets(segment.host, {group}) == []
    firewall.remove_port(segment.host, first.port)
    firewall.remove_port(segment.host, second.port)
    assert firewall.remove_stale_group_sets(segment.host, set()) == [f"rg4-{group}"]
    assert group_sets(segment.host) == {}


def test_a_port_cannot_spoof_an_ip_or_mac_unless_allowed(segment):
    segment(11, rules=(ALLOW_EGRESS, ALLOW_PING))
    a = segment(10)
    assert a.reachable("10.40.0.11")

    a.replace_address("10.40.0.10/24", "10.40.0.50/24")
    assert a.unreachable("10.40.0.11")

    firewall.apply_port(segment.host, replace(a.port, allowed_address_pairs=(AddressPair("10.40.0.48/30"),)))
    assert a.reachable("10.40.0.11")

    a.replace_address("10.40.0.50/24", "10.40.0.10/24")
    a.set_mac(mac_of(99))
    assert a.unreachable("10.40.0.11")


def test_port_security_off_lets_a_port_send_from_any_address(segment):
    segment(11, rules=(ALLOW_EGRESS, ALLOW_PING))
    a = segment(10, port_security_enabled=False)
    a.replace_address("10.40.0.10/24", "10.40.0.50/24")
    assert a.reachable("10.40.0.11")
    assert firewall.port_chains(segment.host).get(firewall.tables(segment.host)[1], set()) & {f"in-{a.port.id}"} \
        == set()


def test_remove_and_resync_drop_the_rules_of_ports_not_wanted(segment):
    a, b, c = segment(10), segment(11), segment(12)
    firewall.remove_port(segment.host, b.port)
    firewall.remove_port(segment.host, b.port)
    assert a.reachable("10.40.0.11")       # no rules left: nothing filters b
    assert a.unreachable("10.40.0.12")

    firewall.resync(segment.host, [a.port])
    chains = firewall.port_chains(segment.host)
    bridge_table, sg_table = firewall.tables(segment.host)
    assert chains[sg_table] == {f"in-{a.port.id}", f"out-{a.port.id}"}
    assert chains[bridge_table] == {f"spoof-{a.port.id}"}
    assert a.reachable("10.40.0.12")


@pytest.mark.parametrize("rule, message", [
    (SecurityGroupRule("ingress", "IPv4", "bogus"), "protocol 'bogus'"),
    (SecurityGroupRule("ingress", "IPv4", "icmp", 300), r"port_range_min \(ICMP type\) 300"),
    (SecurityGroupRule("ingress", "IPv4", "tcp", 80, 22), "port range 80-22"),
    (SecurityGroupRule("ingress", "IPv4", remote_ip_prefix="10.0.0.300/8"), "remote_ip_prefix '10.0.0.300/8'"),
    (SecurityGroupRule("ingress", "IPv4", remote_ip_prefix="fd00::/8"), "remote_ip_prefix fd00::/8 is not IPv4"),
    (SecurityGroupRule("sideways", "IPv4"), "direction 'sideways'"),
])
def test_a_rule_it_cannot_express_is_refused_naming_the_field_and_nothing_changes(segment, rule, message):
    a, b = segment(10), segment(11, rules=(ALLOW_EGRESS, ALLOW_PING))
    with pytest.raises(firewall.InvalidRule, match=message):
        firewall.apply_port(segment.host, replace(b.port, security_group_rules=(ALLOW_EGRESS, rule)))
    assert a.reachable("10.40.0.11")      # b's rules as they were


def test_networks_with_the_same_addresses_do_not_share_connection_state(lab):
    """A flow allowed on one network must not open the same addresses' flow
    on another network of the node (a conntrack zone per bridge)."""
    host = lab.host()
    allow_udp = SecurityGroupRule("ingress", "IPv4", "udp", 6000, 6000)
    machines = {}
    for network_name in ("red", "blue"):
        network = Network(id=new_id())
        bridges.ensure_network(host, network)
        for number, rules in ((10, (ALLOW_EGRESS,)),
                              (11, (ALLOW_EGRESS, allow_udp) if network_name == "red" else (ALLOW_EGRESS,))):
            port = make_port(network, number, rules)
            firewall.apply_port(host, port)
            machine = lab.machine(host, network, port)
            machine.set_address(f"10.40.0.{number}/24")
            machines[network_name, number] = machine
    machines["red", 11].serve_udp_echo(6000)
    machines["blue", 11].serve_udp_echo(6000)

    assert machines["red", 10].udp_exchange("10.40.0.11", 6000, source_port=5000)
    assert not machines["blue", 10].udp_exchange("10.40.0.11", 6000, source_port=5000)

    blue_server = machines["blue", 11].port
    firewall.apply_port(host, replace(blue_server, security_group_rules=(ALLOW_EGRESS, allow_udp)))
    assert machines["blue", 10].udp_exchange("10.40.0.11", 6000, source_port=5000)


def test_broadcasts_reach_only_the_ports_whose_rules_allow_them(segment):
    allow_udp = SecurityGroupRule("ingress", "IPv4", "udp", 5000, 6000)
    sender = segment(10, rules=(ALLOW_EGRESS, allow_udp))   # takes the unicast echo back
    listener = segment(11)
    listener.serve_udp_echo(6000)
    assert not sender.udp_exchange("10.40.0.255", 6000, source_port=5000)

    firewall.apply_port(segment.host, replace(listener.port, security_group_rules=(ALLOW_EGRESS, allow_udp)))
    assert sender.udp_exchange("10.40.0.255", 6000, source_port=5000)


def test_ipv6_rules_and_source_addresses(lab):
    host = lab.host()
    network = Network(id=new_id())
    bridges.ensure_network(host, network)
    allow_ping6 = SecurityGroupRule("ingress", "IPv6", "ipv6-icmp")
    egress6 = SecurityGroupRule("egress", "IPv6")
    machines = []
    for number in (10, 11):
        port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(number),
                    fixed_ips=(FixedIP("s6", f"fd00::{number}"),), security_group_rules=(egress6,))
        firewall.apply_port(host, port)
        machine = lab.machine(host, network, port)
        machine.run("ip", "addr", "add", f"fd00::{number}/64", "dev", "eth0", "nodad", check=True)
        machines.append(machine)
    a, b = machines

    def ping6(machine, address, count, wait):
        return machine.run("busybox", "ping", "-6", "-c", str(count), "-W", str(wait), address).returncode == 0

    assert not ping6(a, "fd00::11", 2, 1)
    firewall.apply_port(host, replace(b.port, security_group_rules=(egress6, allow_ping6)))
    assert any(ping6(a, "fd00::11", 1, 2) for _ in range(3))

    a.run("ip", "addr", "del", "fd00::10/64", "dev", "eth0", check=True)
    a.run("ip", "addr", "add", "fd00::50/64", "dev", "eth0", "nodad", check=True)
    assert not ping6(a, "fd00::11", 2, 1)


def test_ports_applied_at_once_each_keep_their_own_rules(segment):
    """Concurrent updates on one host (the agent plumbs ports in parallel)
    neither fail nor hand two ports the same mark."""
    machines = [segment(10 + n) for n in range(4)]
    with_ping = [replace(m.port, security_group_rules=(ALLOW_EGRESS, ALLOW_PING)) for m in machines[1:]]
    fresh = [make_port(segment.network, 20 + n, rules=(ALLOW_EGRESS,)) for n in range(6)]
    with ThreadPoolExecutor(max_workers=len(with_ping) + len(fresh)) as pool:
        list(pool.map(lambda port: firewall.apply_port(segment.host, port), with_ping + fresh))

    assert all(machines[0].reachable(f"10.40.0.{11 + n}") for n in range(3))
    firewall.apply_port(segment.host, replace(with_ping[0], security_group_rules=(ALLOW_EGRESS,)))
    assert machines[0].unreachable("10.40.0.11")
    assert machines[0].reachable("10.40.0.12")
