"""The node agent's contract with the boot pipeline on simulated nodes
(libvirt's test driver, no kernel objects): plug_port binds and reports
the port ACTIVE, unplug_port takes it off the host, through the same code
as real nodes."""
import uuid

import pytest

from network import ipam, ports
from network.agent import node
from network.agent.resources import bridge_name, tap_name
from network.models import Agent, Port

pytestmark = pytest.mark.django_db


@pytest.fixture
def simulated_hosts():
    hosts = [f"sim-{uuid.uuid4().hex[:6]}-{index}" for index in (1, 2)]
    node.serve_simulated(hosts)
    yield hosts
    for host in hosts:
        node.AGENTS.pop(host, None)


def test_plug_on_a_simulated_node_binds_the_port_and_reports_it_active(simulated_hosts):
    network = ipam.create_network(project_id="p1")
    port = ports.create_port(network, "p1", fixed_ips=[], security_groups=[])
    ports.bind_port(port, simulated_hosts[1])

    assert node.plug_port(port.pk) == {"bridge": bridge_name(str(network.pk)), "tap": tap_name(str(port.pk))}
    assert node.plug_port(port.pk)["tap"] == tap_name(str(port.pk))   # idempotent
    plugged = Port.objects.get(pk=port.pk)
    assert (plugged.status, plugged.binding_host_id) == ("ACTIVE", simulated_hosts[1])
    assert set(Agent.objects.filter(host__in=simulated_hosts).values_list("host", "agent_type")) == {
        (host, Agent.LINUX_BRIDGE) for host in simulated_hosts}

    node.unplug_port(port.pk)
    unplugged = Port.objects.get(pk=port.pk)
    assert (unplugged.status, unplugged.binding_host_id) == ("DOWN", "")


def test_plug_of_a_port_bound_to_a_host_this_process_does_not_serve_is_refused(simulated_hosts):
    network = ipam.create_network(project_id="p1")
    port = ports.create_port(network, "p1", fixed_ips=[], security_groups=[])
    ports.bind_port(port, "elsewhere")
    with pytest.raises(node.AgentError, match="elsewhere"):
        node.plug_port(port.pk)
    with pytest.raises(node.AgentError, match="does not exist"):
        node.plug_port(uuid.uuid4())
    assert Port.objects.get(pk=port.pk).status == "DOWN"
