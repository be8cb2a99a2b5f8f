"""bridges: a bridge per network, VXLAN between hosts, flat interfaces,
plug/unplug and resync, on real kernel objects in namespaces."""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from network.agent import bridges, iplib
from network.agent.resources import FixedIP, Network, Port, vxlan_name

from .conftest import mac_of, new_id


def link(host, name):
    with iplib.ip(host.namespace) as handle:
        return next((l for l in iplib.links(handle) if l["name"] == name), None)


def master_of(host, name):
    with iplib.ip(host.namespace) as handle:
        device = next(l for l in iplib.links(handle) if l["name"] == name)
        masters = [l["name"] for l in iplib.links(handle) if l["index"] == device["master"]]
        return masters[0] if masters else None


def test_ensure_network_makes_the_bridge_and_vxlan_once(lab):
    host = lab.host(underlay_number=1)
    network = Network(id=new_id(), vni=4242, mtu=1400)
    bridges.ensure_network(host, network, peers=["192.168.250.2"])
    first = link(host, network.bridge)
    bridges.ensure_network(host, network, peers=["192.168.250.2"])

    assert link(host, network.bridge)["index"] == first["index"]
    assert first["kind"] == "bridge" and first["mtu"] == 1400
    vxlan = link(host, vxlan_name(4242))
    data = vxlan["message"].get("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    assert (data.get_attr("IFLA_VXLAN_ID"), data.get_attr("IFLA_VXLAN_LOCAL")) == (4242, "192.168.250.1")
    assert master_of(host, vxlan_name(4242)) == network.bridge
    assert bridges.vxlan_peers(host, network) == {"192.168.250.2"}


@pytest.mark.parametrize("network, underlay, message", [
    (Network(id="vxlan-net", vni=5), False, "no underlay address"),
    (Network(id="vxlan-net", vni=5), "missing0", "underlay interface missing0 does not exist"),
    (Network(id="flat-net", physical_interface="missing1"), False, "physical interface missing1 does not exist"),
])
def test_a_network_the_host_cannot_carry_is_refused_before_anything_is_made(lab, network, underlay, message):
    host = lab.host()
    if underlay:
        host = replace(host, underlay_interface=underlay, local_ip="192.168.250.1")
    with pytest.raises(ValueError, match=message):
        bridges.ensure_network(host, network)
    assert link(host, network.bridge) is None


def test_vxlan_peers_follow_the_desired_list(lab):
    host = lab.host(underlay_number=1)
    network = Network(id=new_id(), vni=77)
    bridges.ensure_network(host, network, peers=["192.168.250.2", "192.168.250.3"])
    bridges.set_vxlan_peers(host, network, ["192.168.250.3", "192.168.250.4"])
    assert bridges.vxlan_peers(host, network) == {"192.168.250.3", "192.168.250.4"}


def test_flat_network_bridges_its_physical_interface_and_delete_keeps_it(lab):
    host = lab.host()
    with iplib.ip(host.namespace) as handle:
        iplib.ensure_veth(handle, "physnet0", "uplink", lab.namespace("ext"))
    network = Network(id=new_id(), physical_interface="physnet0", mtu=1500)
    bridges.ensure_network(host, network)
    assert master_of(host, "physnet0") == network.bridge

    bridges.delete_network(host, network)
    assert link(host, network.bridge) is None
    assert link(host, "physnet0") is not None and link(host, "physnet0")["master"] is None


def test_plug_and_unplug_a_tap(lab):
    host = lab.host()
    network = Network(id=new_id())
    bridges.ensure_network(host, network)
    port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(1))
    lab.machine(host, network, port)
    assert master_of(host, port.tap) == network.bridge
    bridges.unplug(host, port.tap)
    assert master_of(host, port.tap) is None
    bridges.unplug(host, "gone-already")


def test_delete_network_removes_bridge_and_vxlan(lab):
    host = lab.host(underlay_number=1)
    network = Network(id=new_id(), vni=901)
    bridges.ensure_network(host, network)
    bridges.delete_network(host, network)
    bridges.delete_network(host, network)
    assert link(host, network.bridge) is None and link(host, vxlan_name(901)) is None


def test_resync_removes_stale_stratus_devices_and_nothing_else(lab):
    host = lab.host(underlay_number=1)
    kept = Network(id=new_id(), vni=10)
    stale = Network(id=new_id(), vni=11)
    bridges.ensure_network(host, kept)
    bridges.ensure_network(host, stale)
    with iplib.ip(host.namespace) as handle:
        handle.link("add", ifname="br-operator", kind="bridge")
    fresh = Network(id=new_id(), vni=12)

    bridges.resync(host, [kept, fresh], peers={fresh.id: ["192.168.250.9"]})

    assert link(host, kept.bridge) and link(host, vxlan_name(10))
    assert link(host, fresh.bridge) and bridges.vxlan_peers(host, fresh) == {"192.168.250.9"}
    assert link(host, stale.bridge) is None and link(host, vxlan_name(11)) is None
    assert link(host, "br-operator") is not None


def vxlan_pair(lab, hosts, vni, cidr_prefix, first_number):
    """A network with this VNI on both hosts and a machine on each, with
    static addresses cidr_prefix.<n>."""
    network = Network(id=new_id(), vni=vni)
    machines = []
    for number, host in enumerate(hosts, start=first_number):
        others = [h.local_ip for h in hosts if h is not host]
        bridges.ensure_network(host, network, peers=others)
        port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(number),
                    fixed_ips=(FixedIP("s", f"{cidr_prefix}.{number}"),))
        machine = lab.machine(host, network, port)
        machine.set_address(f"{cidr_prefix}.{number}/24")
        machines.append(machine)
    return machines


def test_machines_on_two_hosts_ping_over_vxlan_and_other_vnis_are_apart(lab):
    hosts = [lab.host(underlay_number=1), lab.host(underlay_number=2)]
    red = vxlan_pair(lab, hosts, 100, "10.20.0", 11)
    # Same CIDR, different VNI: its machines must not reach the red ones.
    blue = vxlan_pair(lab, hosts, 200, "10.20.0", 21)

    assert red[0].reachable("10.20.0.12")
    assert blue[0].reachable("10.20.0.22")
    assert red[0].unreachable("10.20.0.22")
    assert blue[1].unreachable("10.20.0.11")


def test_ports_of_one_network_plumbed_at_once_share_one_bridge_and_vxlan(lab):
    host = lab.host(underlay_number=1)
    network = Network(id=new_id(), vni=3030)
    ports = [Port(id=new_id(), network_id=network.id, mac_address=mac_of(n)) for n in range(6)]
    for port in ports:
        lab.machine(host, network, port, plug=False)

    def plumb(port):
        bridges.ensure_network(host, network, peers=["192.168.250.2"])
        bridges.plug(host, network, port.tap)

    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        list(pool.map(plumb, ports))

    assert all(master_of(host, port.tap) == network.bridge for port in ports)
    assert master_of(host, vxlan_name(3030)) == network.bridge
    assert bridges.vxlan_peers(host, network) == {"192.168.250.2"}
