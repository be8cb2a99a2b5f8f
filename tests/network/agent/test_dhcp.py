"""dhcp: dnsmasq in qdhcp-<network id> hands the ports' fixed IPs to fake
machines over a real bridge, follows port changes on SIGHUP, and leaves
nothing behind when disabled."""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from network.agent import bridges, dhcp, iplib
from network.agent.resources import FixedIP, Network, Port, Subnet

from .conftest import mac_of, new_id


def process_gone(pid):
    """No such process, or only its zombie (empty command line)."""
    try:
        return not open(f"/proc/{pid}/cmdline").read()
    except FileNotFoundError:
        return True


def dhcp_network(lab, host, machine_count):
    network = Network(id=new_id(), mtu=1450)
    subnet = Subnet(id=new_id(), cidr="10.30.0.0/24", gateway_ip="10.30.0.1",
                    host_routes=(("10.99.0.0/16", "10.30.0.254"),))
    bridges.ensure_network(host, network)
    dhcp_port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(2),
                     fixed_ips=(FixedIP(subnet.id, "10.30.0.2"),))
    ports = [Port(id=new_id(), network_id=network.id, mac_address=mac_of(10 + n),
                  fixed_ips=(FixedIP(subnet.id, f"10.30.0.{10 + n}"),), hostname=f"vm{n}")
             for n in range(machine_count)]
    return network, subnet, dhcp_port, ports


def test_machines_get_their_fixed_ips_routes_and_reach_each_other(lab):
    host = lab.host()
    network, subnet, dhcp_port, ports = dhcp_network(lab, host, 2)
    lab.enable_dhcp(host, network, [subnet], dhcp_port, ports)
    machines = [lab.machine(host, network, port) for port in ports]

    leases = [machine.dhcp() for machine in machines]

    assert [lease["ip"] for lease in leases] == ["10.30.0.10", "10.30.0.11"]
    assert [machine.addresses() for machine in machines] == [["10.30.0.10/24"], ["10.30.0.11/24"]]
    assert leases[0]["hostname"] == "vm0"
    assert leases[0]["mtu"] == "1450"
    assert leases[0]["dns"].split() == ["10.30.0.2"]
    # Option 121: metadata via the DHCP port, the host route, the default route.
    assert leases[0]["staticroutes"].split() == [
        "169.254.169.254/32", "10.30.0.2", "10.99.0.0/16", "10.30.0.254", "0.0.0.0/0", "10.30.0.1"]
    assert machines[0].reachable("10.30.0.11")
    assert machines[1].reachable("10.30.0.2")
    # DNS answers the ports' names and forwards nothing.
    answer = machines[0].run("busybox", "nslookup", "vm1", "10.30.0.2").stdout
    assert "10.30.0.11" in answer
    # The metadata route leads into the DHCP namespace.
    machines[0].run("ip", "route", "add", "169.254.169.254/32", "via", "10.30.0.2", check=True)
    assert machines[0].reachable("169.254.169.254")


def test_a_port_added_later_is_served_after_a_reload_not_a_restart(lab):
    host = lab.host()
    network, subnet, dhcp_port, ports = dhcp_network(lab, host, 2)
    pid = lab.enable_dhcp(host, network, [subnet], dhcp_port, ports[:1])
    late = lab.machine(host, network, ports[1])

    assert late.run("busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "2", "-T", "1",
                    "-s", "/bin/true").returncode != 0
    dhcp.set_ports(host, network, [subnet], ports)

    assert late.dhcp()["ip"] == "10.30.0.11"
    assert dhcp.running_pid(host, network) == pid
    # enable() with the same subnets reloads too.
    assert dhcp.enable(host, network, [subnet], dhcp_port, ports) == pid


def test_disable_removes_process_namespace_veth_and_files(lab):
    host = lab.host()
    network, subnet, dhcp_port, ports = dhcp_network(lab, host, 1)
    pid = lab.enable_dhcp(host, network, [subnet], dhcp_port, ports)
    assert iplib.namespace_exists(dhcp.namespace_name(network))

    dhcp.disable(host, network)
    dhcp.disable(host, network)

    assert process_gone(pid)
    assert not iplib.namespace_exists(dhcp.namespace_name(network))
    with iplib.ip(host.namespace) as handle:
        assert iplib.link_index(handle, dhcp.veth_name(network)) is None
    assert not dhcp.state_dir(host, network).exists()


def test_a_new_dhcp_port_address_is_served_and_answers_dns(lab):
    host = lab.host()
    network, subnet, dhcp_port, ports = dhcp_network(lab, host, 1)
    lab.enable_dhcp(host, network, [subnet], dhcp_port, ports)
    moved = replace(dhcp_port, fixed_ips=(FixedIP(subnet.id, "10.30.0.3"),))
    dhcp.enable(host, network, [subnet], moved, ports)
    machine = lab.machine(host, network, ports[0])

    lease = machine.dhcp()

    assert lease["dns"].split() == ["10.30.0.3"]
    assert lease["staticroutes"].split()[:2] == ["169.254.169.254/32", "10.30.0.3"]
    assert "10.30.0.10" in machine.run("busybox", "nslookup", "vm0", "10.30.0.3").stdout
    assert machine.unreachable("10.30.0.2")


def test_a_dhcp_server_that_cannot_start_leaves_nothing_behind(lab):
    host = lab.host()
    network, subnet, dhcp_port, ports = dhcp_network(lab, host, 1)
    with pytest.raises(iplib.CommandFailed, match="bad command line options"):
        lab.enable_dhcp(host, network, [subnet], dhcp_port, ports, upstream_dns=("not-an-address",))
    assert not iplib.namespace_exists(dhcp.namespace_name(network))
    assert not dhcp.state_dir(host, network).exists()
    with iplib.ip(host.namespace) as handle:
        assert iplib.link_index(handle, dhcp.veth_name(network)) is None


def test_resync_stops_dhcp_for_networks_no_longer_wanted(lab):
    host = lab.host()
    kept, kept_subnet, kept_dhcp_port, kept_ports = dhcp_network(lab, host, 1)
    stale, stale_subnet, stale_dhcp_port, stale_ports = dhcp_network(lab, host, 1)
    lab.enable_dhcp(host, kept, [kept_subnet], kept_dhcp_port, kept_ports)
    stale_pid = lab.enable_dhcp(host, stale, [stale_subnet], stale_dhcp_port, stale_ports)

    dhcp.resync(host, [kept])

    assert dhcp.running_pid(host, kept) is not None
    assert dhcp.running_pid(host, stale) is None and process_gone(stale_pid)
    assert not iplib.namespace_exists(dhcp.namespace_name(stale))
    assert iplib.namespace_exists(dhcp.namespace_name(kept))


def test_ports_plumbed_in_parallel_rewrite_the_hosts_files_without_failing(lab):
    host = lab.host()
    network, subnet, dhcp_port, ports = dhcp_network(lab, host, 4)
    lab.enable_dhcp(host, network, [subnet], dhcp_port, [])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: dhcp.set_ports(host, network, [subnet], ports), range(16)))

    machines = [lab.machine(host, network, port) for port in ports]
    assert [machine.dhcp()["ip"] for machine in machines] == [f"10.30.0.{10 + n}" for n in range(4)]


def test_a_host_that_never_served_a_network_leaves_its_dhcp_server_alone(lab):
    """The qdhcp namespace's name is the same on every host: a host with no
    DHCP for the network (another host on this machine serves it) must not
    remove it."""
    server, other = lab.host(), lab.host()
    network, subnet, dhcp_port, ports = dhcp_network(lab, server, 1)
    pid = lab.enable_dhcp(server, network, [subnet], dhcp_port, ports)
    machine = lab.machine(server, network, ports[0])

    dhcp.disable(other, network)
    assert dhcp.running_pid(server, network) == pid
    assert iplib.namespace_exists(dhcp.namespace_name(network))
    assert machine.dhcp()["ip"] == "10.30.0.10"
