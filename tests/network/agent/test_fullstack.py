"""The drivers together, as the agent will drive them: a network spanning two
hosts over VXLAN, DHCP on one of them, security groups on both."""
from dataclasses import replace

from network.agent import bridges, firewall
from network.agent.resources import FixedIP, Network, Port, SecurityGroupRule, Subnet

from .conftest import mac_of, new_id

ALLOW_EGRESS = SecurityGroupRule("egress", "IPv4")
ALLOW_PING = SecurityGroupRule("ingress", "IPv4", "icmp")


def test_machines_on_two_hosts_take_dhcp_leases_over_vxlan_and_obey_their_rules(lab):
    network_node, compute_node = lab.host(underlay_number=1), lab.host(underlay_number=2)
    network = Network(id=new_id(), vni=5000)
    subnet = Subnet(id=new_id(), cidr="10.60.0.0/24", gateway_ip="10.60.0.1")
    for host, peer in ((network_node, compute_node), (compute_node, network_node)):
        bridges.ensure_network(host, network, peers=[peer.local_ip])
    dhcp_port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(2),
                     fixed_ips=(FixedIP(subnet.id, "10.60.0.2"),))
    ports = [Port(id=new_id(), network_id=network.id, mac_address=mac_of(10 + n),
                  fixed_ips=(FixedIP(subnet.id, f"10.60.0.{10 + n}"),),
                  security_group_rules=(ALLOW_EGRESS, ALLOW_PING))
             for n in range(2)]
    lab.enable_dhcp(network_node, network, [subnet], dhcp_port, ports)
    machines = []
    for host, port in zip((network_node, compute_node), ports):
        firewall.apply_port(host, port)
        machines.append(lab.machine(host, network, port))

    assert [machine.dhcp()["ip"] for machine in machines] == ["10.60.0.10", "10.60.0.11"]
    assert machines[0].reachable("10.60.0.11")

    firewall.apply_port(compute_node, replace(ports[1], security_group_rules=(ALLOW_EGRESS,)))
    assert machines[0].unreachable("10.60.0.11")
    firewall.apply_port(compute_node, ports[1])
    assert machines[0].reachable("10.60.0.11")
