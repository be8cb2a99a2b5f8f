"""Two agents in one namespace (as tests and a machine serving a real node
beside others run them): each one's cleanup removes what it made and
leaves the other's bridges, VXLANs, rules, DHCP servers and routers."""
from dataclasses import replace

import pytest

from network.agent import bridges, dhcp, firewall, iplib, routers
from network.agent.node import NodeAgent
from network.agent.resources import FixedIP, Network, Port, Router, RouterInterface, Subnet, vxlan_name

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
        "rules": f"in-{port.id}" in chains(host) and f"spoof-{port.id}" in chains(host),
        "dhcp": dhcp.running_pid(host, network) is not None,
        "router": iplib.namespace_exists(routers.namespace_name(router)),
    }


def test_an_agents_cleanup_removes_only_what_it_made(lab):
    shared = lab.host(underlay_number=1)
    first = replace(shared, name="own-a", state_dir=lab.tmp / "own-a")
    second = replace(shared, name="own-b", state_dir=lab.tmp / "own-b")
    mine = plumb(lab, first, 601, 61)
    theirs = plumb(lab, second, 602, 62)
    everything = dict.fromkeys(("bridge", "vxlan", "rules", "dhcp", "router"), True)
    assert present(first, *mine) == present(second, *theirs) == everything

    # The database has nothing for the first agent's host: all it made is stale.
    NodeAgent("own-a", first).remove_stale()

    assert present(first, *mine) == dict.fromkeys(everything, False)
    assert present(second, *theirs) == everything
    assert firewall.owned_ports(second) == {theirs[1].id} and firewall.owned_ports(first) == set()

    NodeAgent("own-b", second).remove_stale()
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
