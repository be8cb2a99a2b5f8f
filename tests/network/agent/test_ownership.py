"""Two agents in one namespace (as tests and a machine serving a real node
beside others run them): each one's cleanup removes what it made and
leaves the other's bridges, VXLANs, rules, DHCP servers and routers."""
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from django.conf import settings

from network.agent import bridges, dhcp, firewall, iplib, routers
from network.agent.node import NodeAgent
from network.agent.resources import (FixedIP, Network, Port, Router, RouterInterface, SecurityGroupRule, Subnet,
                                     vxlan_name)

from .conftest import mac_of, new_id

pytestmark = pytest.mark.django_db


def links(host):
    with iplib.ip(host.namespace) as handle:
        return {link["name"] for link in iplib.links(handle)}


def chains(host):
    return {name for names in firewall.port_chains(host).values() for name in names}


def plumb(lab, host, vni, number):
    """What an agent makes for a network: its bridge and VXLAN, a port's
    rules, a DHCP server and a router with a leg on it."""
    network = Network(id=new_id(), vni=vni)
    bridges.ensure_network(host, network)
    subnet = Subnet(id=new_id(), cidr=f"10.{number}.0.0/24", gateway_ip=f"10.{number}.0.1")
    port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(number),
                fixed_ips=(FixedIP(subnet.id, f"10.{number}.0.10"),))
    firewall.apply_port(host, port)
    # The port's "tap" (a machine's veth), as the hypervisor plugs it and a
    # resync marks it.
    lab.machine(host, network, port)
    bridges.adopt(host, network, [port.tap])
    dhcp_port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(number + 100),
                     fixed_ips=(FixedIP(subnet.id, f"10.{number}.0.2"),))
    lab.enable_dhcp(host, network, [subnet], dhcp_port, [port])
    router = Router(id=new_id(), interfaces=(RouterInterface(
        port_id=new_id(), network=network, mac_address=mac_of(number + 200), ip_address=f"10.{number}.0.1",
        cidr=subnet.cidr),))
    lab.sync_router(host, router)
    return network, port, router


def present(host, network, port, router):
    return {
        "bridge": network.bridge in links(host), "vxlan": vxlan_name(network.vni) in links(host),
        "tap": port.tap in links(host),
        "rules": f"in-{port.id}" in chains(host) and f"spoof-{port.id}" in chains(host),
        "dhcp": dhcp.running_pid(host, network) is not None,
        "router": iplib.namespace_exists(routers.namespace_name(router)),
    }


def test_an_agent_restarted_removes_only_what_it_made_that_the_database_lost(lab):
    shared = lab.host(underlay_number=1)
    first = replace(shared, name="own-a", state_dir=lab.tmp / "own-a")
    second = replace(shared, name="own-b", state_dir=lab.tmp / "own-b")
    mine = plumb(lab, first, 601, 61)
    theirs = plumb(lab, second, 602, 62)
    everything = dict.fromkeys(("bridge", "vxlan", "tap", "rules", "dhcp", "router"), True)
    assert present(first, *mine) == present(second, *theirs) == everything

    # As left by a run that crashed: the database has no row for any of it
    # (no network, port or router), only the kernel and the agent's state
    # files remember. The first agent starts again and resyncs.
    NodeAgent("own-a", first).start()

    assert present(first, *mine) == dict.fromkeys(everything, False)
    assert present(second, *theirs) == everything
    assert firewall.owned_ports(second) == {theirs[1].id} and firewall.owned_ports(first) == set()

    NodeAgent("own-b", second).start()
    assert present(second, *theirs) == dict.fromkeys(everything, False)


def test_an_unmarked_bridge_of_a_wanted_network_is_taken_and_an_unmarked_stale_one_is_left(lab):
    shared = lab.host(underlay_number=1)
    host = replace(shared, name="own-c", state_dir=lab.tmp / "own-c")
    wanted, unknown = Network(id=new_id(), vni=603), Network(id=new_id(), vni=604)
    with iplib.ip(host.namespace) as handle:
        for network in (wanted, unknown):
            handle.link("add", ifname=network.bridge, kind="bridge")   # as an older agent made them

    bridges.ensure_network(host, wanted)
    with iplib.ip(host.namespace) as handle:
        assert iplib.link_alias(handle, wanted.bridge) == host.owner
        assert iplib.link_alias(handle, unknown.bridge) == ""
    bridges.delete_stale(host, [])
    assert wanted.bridge not in links(host) and vxlan_name(wanted.vni) not in links(host)
    assert unknown.bridge in links(host)


# Applies the rules of ports in a process of its own, as a second agent on
# the host would: argv is the host (namespace, name, state dir) and the
# ports as JSON.
APPLY_IN_ANOTHER_PROCESS = """
import json, sys
from pathlib import Path
from network.agent import firewall
from network.agent.resources import FixedIP, Host, Port, SecurityGroupRule
namespace, name, state_dir, ports = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
host = Host(namespace=namespace, name=name, state_dir=Path(state_dir))
for port in ports:
    firewall.apply_port(host, Port(id=port["id"], network_id=port["network_id"], mac_address=port["mac"],
                                   fixed_ips=(FixedIP("s", port["ip"]),),
                                   security_group_rules=tuple(SecurityGroupRule(*r) for r in port["rules"])))
"""


def marks(host):
    """{port id: its mark} in the host's own table."""
    sg_table = firewall.tables(host)[1]
    family, table = sg_table.split()
    listed = iplib.run(host.namespace, ["nft", "-j", "list", "map", family, table, "ingress_ports"]).stdout
    elements = next(item["map"] for item in json.loads(listed)["nftables"] if "map" in item).get("elem", [])
    return {value["jump"]["target"].split("-", 1)[1]: key for key, value in elements}


def test_two_agents_in_one_namespace_keep_their_own_rules_through_each_others_changes_and_resyncs(lab):
    """Two agents on one host namespace (each its own process), a network
    each with two machines: the second machine of each network answers
    pings, the first does not. Their rules never mix, whatever either
    agent applies, resyncs or removes."""
    shared = lab.host()
    agents = [replace(shared, name=f"pair-{n}", state_dir=lab.tmp / f"pair-{n}") for n in "ab"]
    allow_egress, allow_ping = ("egress", "IPv4"), ("ingress", "IPv4", "icmp")
    sites = []
    for number, agent in enumerate(agents):
        network = Network(id=new_id())
        bridges.ensure_network(agent, network)
        ports = [dict(id=new_id(), network_id=network.id, mac=mac_of(70 + 10 * number + n),
                      ip=f"10.{70 + number}.0.{10 + n}", rules=[allow_egress] + ([allow_ping] if n else []))
                 for n in range(2)]
        sites.append((agent, network, ports))

    # Both agents write at once, from their own processes.
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda site: subprocess.run(
            [sys.executable, "-c", APPLY_IN_ANOTHER_PROCESS, shared.namespace, site[0].name,
             str(site[0].state_dir), json.dumps(site[2])], capture_output=True, text=True,
            cwd=settings.BASE_DIR), sites))
    assert [run.returncode for run in runs] == [0, 0], [run.stderr for run in runs]

    def resource(port):
        return Port(id=port["id"], network_id=port["network_id"], mac_address=port["mac"],
                    fixed_ips=(FixedIP("s", port["ip"]),),
                    security_group_rules=tuple(SecurityGroupRule(*rule) for rule in port["rules"]))

    machines = []
    for agent, network, ports in sites:
        pair = [lab.machine(agent, network, resource(port)) for port in ports]
        for machine, port in zip(pair, ports):
            machine.set_address(f"{port['ip']}/24")
        machines.append(pair)

    def behaves():
        for (_, _, ports), (quiet, answering) in zip(sites, machines):
            assert quiet.reachable(ports[1]["ip"]), "the answering machine's ping rule is lost"
            assert answering.unreachable(ports[0]["ip"]), "the quiet machine lets pings in"

    def owns_exactly():
        for agent, _, ports in sites:
            assert firewall.owned_ports(agent) == {port["id"] for port in ports}
        first, second = (marks(agent) for agent, _, _ in sites)
        assert not set(first.values()) & set(second.values()), "two agents' ports share a mark"

    owns_exactly()
    behaves()
    for agent, _, ports in sites + sites[::-1]:
        firewall.resync(agent, [resource(port) for port in ports])
        owns_exactly()
    behaves()

    # One agent's port goes: its resync (no record but its own tables)
    # removes that port's rules and nothing of the other agent's.
    agent, _, ports = sites[0]
    firewall.resync(agent, [resource(ports[1])])
    assert firewall.owned_ports(agent) == {ports[1]["id"]}
    assert firewall.owned_ports(sites[1][0]) == {port["id"] for port in sites[1][2]}
    quiet, answering = machines[1]
    assert quiet.reachable(sites[1][2][1]["ip"]) and answering.unreachable(sites[1][2][0]["ip"])
    for agent, _, _ in sites:
        firewall.resync(agent, [])
        assert firewall.owned_ports(agent) == set()
