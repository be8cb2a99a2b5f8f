"""The node network agent as it runs: two "hosts" (namespaces on a veth
underlay), each with its own `manage.py networkagent` process on the test
cloud's database and broker, the first also the network node (DHCP, L3).
Networks, ports and rules are made through the live API; fake machines
are namespaces whose veth, named like the port's tap, is plugged into the
host's bridge as libvirt plugs a VM's tap."""
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace

import pytest
from django.conf import settings

from network.agent import bridges, dhcp, firewall, iplib
from network.agent import resources as kernel
from network.models import IPAllocation, Port
from tests.conftest import Api, server_env
from tests.network.conftest import Neutron, neutron_error, unique

from .conftest import Lab

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root (namespaces, bridges)")
# Seconds between the agents' periodic resyncs.
RESYNC_INTERVAL = 2


def wait_until(predicate, timeout=10, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


class AgentProcess:
    """`manage.py networkagent` for one host, as a child process."""

    def __init__(self, name, host, log_path, *options, env=None):
        self.name, self.host, self.log_path, self.env = name, host, log_path, env or {}
        self.argv = [sys.executable, str(settings.BASE_DIR / "manage.py"), "networkagent", "--host", name,
                     "--namespace", host.namespace, "--local-ip", host.local_ip,
                     "--underlay-interface", host.underlay_interface, "--state-dir", str(host.state_dir),
                     "--report-interval", "1", "--resync-interval", str(RESYNC_INTERVAL), "--concurrency", "2",
                     *options]
        self.process = None

    def start(self):
        self.log = open(self.log_path, "a")
        self.log_offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(self.argv, env=server_env(**self.env), stdout=self.log, stderr=subprocess.STDOUT,
                                        cwd=settings.BASE_DIR)
        wait_until(lambda: " ready." in self.output() or self.process.poll() is not None, timeout=120,
                   message=f"the network agent of {self.name}")
        assert self.process.poll() is None, self.output()
        return self

    def output(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")[self.log_offset:]

    def kill(self, sig=signal.SIGKILL):
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def live_db(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="module")
def admin(cloud):
    return Neutron(Api(cloud.url), cloud.token("stratus"))


class Site:
    """The two hosts, their agents, and what the tests made through the API."""

    def __init__(self, lab, names, hosts, agents):
        self.lab, self.names, self.hosts, self.agents = lab, names, hosts, agents
        self.networks, self.machines = [], {}


@pytest.fixture(scope="module")
def site(live_db, cloud, admin, tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("netagent"))
    run = uuid.uuid4().hex[:6]
    names = [f"nh{run}-1", f"nh{run}-2"]
    # Named as their agents are, whose marks the tests read.
    hosts = [replace(lab.host(underlay_number=number), name=name) for number, name in enumerate(names, start=1)]
    logs = tmp_path_factory.mktemp("netagent-logs")
    agents = [AgentProcess(names[0], hosts[0], logs / "host1.log").start(),
              AgentProcess(names[1], hosts[1], logs / "host2.log", "--no-dhcp", "--no-l3").start()]
    site = Site(lab, names, hosts, agents)
    try:
        yield site
        network_ids = [network["id"] for network in site.networks]
        for port in Port.objects.filter(network_id__in=network_ids).exclude(device_owner__startswith="network:"):
            assert admin.delete(f"ports/{port.pk}").status_code == 204
        for network_id in network_ids:
            assert admin.delete(f"networks/{network_id}").status_code == 204
        # The network node removes its DHCP server once the network is gone.
        for network_id in network_ids:
            wait_until(lambda: not iplib.namespace_exists(dhcp.namespace_name(kernel.Network(id=network_id))),
                       message="the DHCP namespace to go")
    finally:
        for agent in agents:
            agent.kill(signal.SIGTERM)
        for network in site.networks:
            # Whatever a failed test left of the DHCP servers goes too.
            dhcp.disable(site.hosts[0], kernel.Network(id=network["id"]))
        lab.cleanup()
    assert lab.leftovers() == ([], [])


def plug(site, index, port):
    """The boot pipeline's network step on host `index`, then the "tap"
    appearing on the bridge as libvirt would make it."""
    from workers import queues
    from workers.celery import app

    queue = queues.network(site.names[index])
    result = app.send_task("network.tasks.plug_port", args=(site.names[index], port["id"]), queue=queue,
                           routing_key=queue)
    plugged = result.get(timeout=30)
    resource = kernel.Port(id=port["id"], network_id=port["network_id"], mac_address=port["mac_address"])
    machine = site.lab.machine(site.hosts[index], kernel.Network(id=port["network_id"]), resource)
    site.machines[port["id"]] = machine
    return plugged, machine


def new_network(site, admin, cidr):
    network = admin.network()
    site.networks.append(network)
    subnet = admin.subnet(network, cidr)
    return network, subnet


def bound_port(admin, network, host, groups):
    port = admin.port(network, name=unique("vm"), security_groups=groups)
    response = admin.put(f"ports/{port['id']}", {"port": {"binding:host_id": host}})
    assert response.status_code == 200, response.text
    return response.json()["port"]


@pytest.fixture(scope="module")
def pinging_group(admin):
    """A group that lets its ports talk out and answer pings."""
    group = admin.create("security-groups", "security_group", name=unique("sg"))
    rule = admin.create("security-group-rules", "security_group_rule", security_group_id=group["id"],
                        direction="ingress", ethertype="IPv4", protocol="icmp")
    group["ping_rule"] = rule
    return group


@pytest.fixture(scope="module")
def spanning(site, admin, pinging_group):
    """A tenant network with a machine on each host, both with leases."""
    network, subnet = new_network(site, admin, "10.77.0.0/24")
    ports = [bound_port(admin, network, site.names[index], [pinging_group["id"]]) for index in (0, 1)]
    plugged = [plug(site, index, port) for index, port in enumerate(ports)]
    return network, subnet, ports, plugged


def test_plugged_ports_get_their_fixed_ips_by_dhcp_and_ping_across_hosts_over_vxlan(site, admin, spanning):
    network, subnet, ports, plugged = spanning
    for port, (answer, machine) in zip(ports, plugged):
        assert answer == {"bridge": kernel.bridge_name(network["id"]), "tap": kernel.tap_name(port["id"])}
        assert machine.dhcp()["ip"] == port["fixed_ips"][0]["ip_address"]
        shown = admin.get(f"ports/{port['id']}").json()["port"]
        assert shown["status"] == "ACTIVE"
    first, second = (machine for _, machine in plugged)
    assert first.reachable(ports[1]["fixed_ips"][0]["ip_address"])
    assert second.reachable(ports[0]["fixed_ips"][0]["ip_address"])
    # Each host tunnels to the other one.
    vni = admin.get(f"networks/{network['id']}").json()["network"]["provider:segmentation_id"]
    segment = kernel.Network(id=network["id"], vni=vni)
    assert bridges.vxlan_peers(site.hosts[0], segment) == {site.hosts[1].local_ip}
    assert bridges.vxlan_peers(site.hosts[1], segment) == {site.hosts[0].local_ip}


def test_a_rule_removed_through_the_api_blocks_at_once_and_re_added_allows(site, admin, spanning, pinging_group):
    network, subnet, ports, plugged = spanning
    first = plugged[0][1]
    target = ports[1]["fixed_ips"][0]["ip_address"]
    assert first.reachable(target)

    assert admin.delete(f"security-group-rules/{pinging_group['ping_rule']['id']}").status_code == 204
    wait_until(lambda: first.run("busybox", "ping", "-c", "1", "-W", "1", target).returncode != 0, timeout=3,
               message="the ping to be blocked")
    assert first.unreachable(target)

    pinging_group["ping_rule"] = admin.create(
        "security-group-rules", "security_group_rule", security_group_id=pinging_group["id"],
        direction="ingress", ethertype="IPv4", protocol="icmp")
    wait_until(lambda: first.run("busybox", "ping", "-c", "1", "-W", "1", target).returncode == 0, timeout=3,
               message="the ping to pass again")


def blocked(machine, address):
    return machine.run("busybox", "ping", "-c", "1", "-W", "1", address).returncode != 0


def status_of(admin, kind, item_id):
    return admin.get(f"{kind}s/{item_id}").json()[kind]["status"]


def test_admin_state_down_stops_a_ports_or_a_networks_traffic_and_up_restores_it(site, admin, spanning):
    network, subnet, ports, plugged = spanning
    first, second = (machine for _, machine in plugged)
    addresses = [admin.get(f"ports/{port['id']}").json()["port"]["fixed_ips"][0]["ip_address"] for port in ports]
    assert first.reachable(addresses[1])

    response = admin.put(f"ports/{ports[1]['id']}", {"port": {"admin_state_up": False}})
    assert response.status_code == 200, response.text
    wait_until(lambda: blocked(first, addresses[1]), timeout=5, message="the port's traffic to stop")
    assert blocked(second, addresses[0])   # what it sends is dropped too
    assert wait_until(lambda: status_of(admin, "port", ports[1]["id"]) == "DOWN", message="the port DOWN")
    assert kernel.tap_name(ports[1]["id"]) in firewall.admin_down(site.hosts[1])
    assert first.reachable(dhcp_address(admin, network))   # the other port is untouched

    assert admin.put(f"ports/{ports[1]['id']}", {"port": {"admin_state_up": True}}).status_code == 200
    wait_until(lambda: first.reachable(addresses[1], attempts=1), timeout=5, message="the port's traffic back")
    assert wait_until(lambda: status_of(admin, "port", ports[1]["id"]) == "ACTIVE", message="the port ACTIVE")
    assert firewall.admin_down(site.hosts[1]) == set()

    # A network down: all its ports, on every host, and its DHCP server.
    response = admin.put(f"networks/{network['id']}", {"network": {"admin_state_up": False}})
    assert response.status_code == 200, response.text
    assert response.json()["network"]["status"] == "DOWN"
    wait_until(lambda: blocked(first, addresses[1]) and blocked(second, dhcp_address(admin, network)),
               timeout=5, message="the network's traffic to stop")
    assert wait_until(lambda: {status_of(admin, "port", port["id"]) for port in ports} == {"DOWN"},
                      message="the network's ports DOWN")
    response = admin.put(f"networks/{network['id']}", {"network": {"admin_state_up": True}})
    assert response.json()["network"]["status"] == "ACTIVE"
    wait_until(lambda: first.reachable(addresses[1], attempts=1) and second.reachable(dhcp_address(admin, network),
                                                                                      attempts=1),
               timeout=5, message="the network's traffic back")
    assert wait_until(lambda: {status_of(admin, "port", port["id"]) for port in ports} == {"ACTIVE"},
                      message="the network's ports ACTIVE")


def dhcp_address(admin, network):
    dhcp_ports = admin.get("ports", params={"network_id": network["id"], "device_owner": "network:dhcp"})
    return dhcp_ports.json()["ports"][0]["fixed_ips"][0]["ip_address"]


def fresh_lease(machine):
    """The address DHCP gives the machine now (its old one dropped first)."""
    machine.run("ip", "addr", "flush", "dev", "eth0", check=True)
    return machine.dhcp()["ip"]


def test_a_port_update_reaches_the_dhcp_server_and_the_rules(site, admin, spanning):
    network, subnet, ports, plugged = spanning
    port, machine = ports[1], plugged[1][1]
    old = port["fixed_ips"][0]["ip_address"]
    response = admin.put(f"ports/{port['id']}", {"port": {"fixed_ips": [{"subnet_id": subnet["id"],
                                                                         "ip_address": "10.77.0.99"}]}})
    assert response.status_code == 200, response.text
    assert wait_until(lambda: fresh_lease(machine) == "10.77.0.99", timeout=30, message="the new lease")
    # Anti-spoofing follows: the new address talks, the old one may not.
    assert plugged[0][1].reachable("10.77.0.99")
    machine.replace_address("10.77.0.99/24", f"{old}/24")
    assert plugged[0][1].unreachable(old)
    machine.replace_address(f"{old}/24", "10.77.0.99/24")


def agents_of(admin, host):
    response = admin.get(f"agents?host={host}")
    assert response.status_code == 200, response.text
    return {agent["agent_type"]: agent for agent in response.json()["agents"]}


def test_agents_are_listed_alive_for_admins_only_and_can_be_disabled(site, admin, cloud, tokens):
    network_node = agents_of(admin, site.names[0])
    assert set(network_node) == {"Linux bridge agent", "DHCP agent", "L3 agent"}
    assert all(agent["alive"] and agent["admin_state_up"] for agent in network_node.values())
    assert network_node["DHCP agent"]["binary"] == "stratus-dhcp-agent"
    assert network_node["DHCP agent"]["availability_zone"] == "nova"
    assert set(agents_of(admin, site.names[1])) == {"Linux bridge agent"}

    listed = cloud.openstack("network", "agent", "list", "--host", site.names[1], "-f", "json")
    assert [(agent["Agent Type"], agent["Alive"]) for agent in listed] == [("Linux bridge agent", True)]

    demo = Neutron(admin.api, tokens["demo"])
    neutron_error(demo.get("agents"), 403, "PolicyNotAuthorized")
    agent_id = network_node["L3 agent"]["id"]
    neutron_error(demo.get(f"agents/{agent_id}"), 403, "PolicyNotAuthorized")
    neutron_error(demo.put(f"agents/{agent_id}", {"agent": {"admin_state_up": False}}), 403, "PolicyNotAuthorized")

    response = admin.put(f"agents/{agent_id}", {"agent": {"admin_state_up": False}})
    assert response.status_code == 200, response.text
    assert admin.get(f"agents/{agent_id}").json()["agent"]["admin_state_up"] is False
    response = admin.put(f"agents/{agent_id}", {"agent": {"admin_state_up": "maybe"}})
    assert response.status_code == 400 and "admin_state_up" in response.text
    response = admin.put(f"agents/{agent_id}", {"agent": {"host": "elsewhere"}})
    assert response.status_code == 400
    assert admin.put(f"agents/{agent_id}", {"agent": {"admin_state_up": True}}).status_code == 200
    neutron_error(admin.get(f"agents/{uuid.uuid4()}"), 404, "AgentNotFound")

    # A deleted agent that is still running registers again with its next heartbeat.
    bridge_agent = agents_of(admin, site.names[1])["Linux bridge agent"]
    assert admin.delete(f"agents/{bridge_agent['id']}").status_code == 204
    neutron_error(admin.get(f"agents/{bridge_agent['id']}"), 404, "AgentNotFound")
    back = wait_until(lambda: agents_of(admin, site.names[1]).get("Linux bridge agent"), timeout=10,
                      message="the agent to register again")
    assert back["alive"] and back["id"] != bridge_agent["id"]


def nft_chains(host):
    return {name for names in firewall.port_chains(host).values() for name in names}


def test_a_subnet_change_reaches_the_dhcp_server(site, admin, spanning):
    network, subnet, ports, plugged = spanning
    machine = plugged[1][1]
    response = admin.put(f"subnets/{subnet['id']}", {"subnet": {"dns_nameservers": ["10.77.0.53"]}})
    assert response.status_code == 200, response.text

    def lease_dns():
        machine.run("ip", "addr", "flush", "dev", "eth0", check=True)
        return machine.dhcp().get("dns")

    assert wait_until(lambda: lease_dns() == "10.77.0.53", timeout=30, message="the new DNS server in the lease")


def test_port_security_turned_off_through_the_api_lets_a_machine_use_another_address(site, admin, spanning):
    network, subnet, ports, plugged = spanning
    port, machine, other = ports[0], plugged[0][1], plugged[1][1]
    address = admin.get(f"ports/{port['id']}").json()["port"]["fixed_ips"][0]["ip_address"]
    machine.replace_address(f"{address}/24", "10.77.0.200/24")
    assert other.unreachable("10.77.0.200")      # anti-spoofing drops what it sends

    response = admin.put(f"ports/{port['id']}", {"port": {"security_groups": [], "port_security_enabled": False}})
    assert response.status_code == 200, response.text
    assert wait_until(lambda: other.reachable("10.77.0.200", attempts=1), timeout=5,
                      message="the spoofed address to pass")
    assert not {name for name in nft_chains(site.hosts[0]) if port["id"] in name}
    machine.replace_address("10.77.0.200/24", f"{address}/24")


def test_unplug_removes_the_rules_and_the_bridge_with_the_hosts_last_port(site, admin, pinging_group):
    from workers import queues
    from workers.celery import app

    network, subnet = new_network(site, admin, "10.76.0.0/24")
    port = bound_port(admin, network, site.names[1], [pinging_group["id"]])
    plug(site, 1, port)
    compute_node = site.hosts[1]
    assert f"in-{port['id']}" in nft_chains(compute_node)

    queue = queues.network(site.names[1])
    app.send_task("network.tasks.unplug_port", args=(site.names[1], port["id"]), queue=queue,
                  routing_key=queue).get(timeout=30)
    shown = admin.get(f"ports/{port['id']}").json()["port"]
    assert (shown["status"], shown["binding:host_id"]) == ("DOWN", "")
    assert not {name for name in nft_chains(compute_node) if port["id"] in name}
    with iplib.ip(compute_node.namespace) as handle:
        assert iplib.link_index(handle, kernel.bridge_name(network["id"])) is None


def test_a_router_interface_added_through_the_api_routes_between_networks_and_goes_when_removed(
        site, admin, spanning, pinging_group):
    network, subnet, ports, plugged = spanning
    other_network, other_subnet = new_network(site, admin, "10.79.0.0/24")
    far = bound_port(admin, other_network, site.names[0], [pinging_group["id"]])
    _, far_machine = plug(site, 0, far)
    far_address = fresh_lease(far_machine)
    near_machine = plugged[1][1]
    near_address = admin.get(f"ports/{ports[1]['id']}").json()["port"]["fixed_ips"][0]["ip_address"]
    near_machine.run("ip", "route", "replace", "default", "via", subnet["gateway_ip"], check=True)
    far_machine.run("ip", "route", "replace", "default", "via", other_subnet["gateway_ip"], check=True)

    router = admin.create("routers", "router", name=unique("r"))
    try:
        for each in (subnet, other_subnet):
            response = admin.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": each["id"]})
            assert response.status_code == 200, response.text
        assert wait_until(lambda: near_machine.reachable(far_address, attempts=1), timeout=10,
                          message="the route through the router")
        assert far_machine.reachable(near_address)
        namespace = f"qrouter-{router['id']}"
        assert iplib.namespace_exists(namespace)

        # Down, the router keeps its legs but routes nothing; up, it routes again.
        response = admin.put(f"routers/{router['id']}", {"router": {"admin_state_up": False}})
        assert response.status_code == 200, response.text
        assert response.json()["router"]["status"] == "DOWN"
        wait_until(lambda: blocked(near_machine, far_address), timeout=5, message="the router to stop routing")
        assert near_machine.reachable(subnet["gateway_ip"])
        response = admin.put(f"routers/{router['id']}", {"router": {"admin_state_up": True}})
        assert response.json()["router"]["status"] == "ACTIVE"
        wait_until(lambda: near_machine.reachable(far_address, attempts=1), timeout=5,
                   message="the router to route again")

        response = admin.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": other_subnet["id"]})
        assert response.status_code == 200, response.text
        wait_until(lambda: near_machine.run("busybox", "ping", "-c", "1", "-W", "1", far_address).returncode != 0,
                   timeout=5, message="the route to go")
        response = admin.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]})
        assert response.status_code == 200, response.text
    finally:
        admin.delete(f"routers/{router['id']}")
    wait_until(lambda: not iplib.namespace_exists(namespace), timeout=5, message="the router's namespace to go")


def test_a_floating_ip_set_through_the_api_reaches_the_machine_from_outside_and_goes_when_unset(
        site, admin, spanning, pinging_group):
    network, subnet, ports, plugged = spanning
    external = admin.network(**{"router:external": True})
    site.networks.append(external)
    admin.subnet(external, "172.30.77.0/24")
    # The outside world: a machine on the external network.
    outside_port = bound_port(admin, external, site.names[0], [pinging_group["id"]])
    _, outside = plug(site, 0, outside_port)
    outside_address = fresh_lease(outside)
    inside = plugged[1][1]
    inside.run("ip", "route", "replace", "default", "via", subnet["gateway_ip"], check=True)

    router = admin.create("routers", "router", name=unique("r"), external_gateway_info={"network_id": external["id"]})
    floating_ip = None
    try:
        response = admin.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
        assert response.status_code == 200, response.text
        floating_ip = admin.create("floatingips", "floatingip", floating_network_id=external["id"],
                                   port_id=ports[1]["id"])
        address = floating_ip["floating_ip_address"]
        assert wait_until(lambda: outside.reachable(address, attempts=1), timeout=10,
                          message="the floating IP to answer from outside")
        # Going out, the machine is seen as its floating IP.
        assert inside.reachable(outside_address)
        assert wait_until(lambda: admin.get(f"floatingips/{floating_ip['id']}").json()["floatingip"]["status"]
                          == "ACTIVE", timeout=5, message="the floating IP to be ACTIVE")

        response = admin.put(f"floatingips/{floating_ip['id']}", {"floatingip": {"port_id": None}})
        assert response.status_code == 200, response.text
        wait_until(lambda: outside.run("busybox", "ping", "-c", "1", "-W", "1", address).returncode != 0,
                   timeout=5, message="the floating IP to go")
    finally:
        if floating_ip:
            admin.delete(f"floatingips/{floating_ip['id']}")
        admin.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]})
        admin.delete(f"routers/{router['id']}")
    wait_until(lambda: not iplib.namespace_exists(f"qrouter-{router['id']}"), timeout=5,
               message="the router's namespace to go")


def test_the_periodic_resync_restores_what_was_deleted_by_hand_and_removes_what_the_database_lost(
        site, admin, spanning):
    network, subnet, ports, plugged = spanning
    compute_node = site.hosts[1]
    first = plugged[0][1]
    target = admin.get(f"ports/{ports[1]['id']}").json()["port"]["fixed_ips"][0]["ip_address"]
    assert first.reachable(target)
    extra = bound_port(admin, network, site.names[1], [])
    plug(site, 1, extra)
    assert f"in-{extra['id']}" in nft_chains(compute_node)

    # Behind the agent's back (no message): the bridge and the port rules
    # go from the kernel, a port goes from the database.
    with iplib.ip(compute_node.namespace) as handle:
        iplib.delete_link(handle, kernel.bridge_name(network["id"]))
    iplib.run(compute_node.namespace, ["nft", "delete", "table", *firewall.tables(compute_node)[0].split()])
    IPAllocation.objects.filter(port_id=extra["id"]).delete()
    Port.objects.filter(pk=extra["id"]).delete()

    timeout = RESYNC_INTERVAL * 5
    wait_until(lambda: first.reachable(target, attempts=1), timeout=timeout,
               message="the bridge to come back with the machine's tap on it")
    wait_until(lambda: f"spoof-{ports[1]['id']}" in nft_chains(compute_node), timeout=timeout,
               message="the port's anti-spoofing rules to come back")
    wait_until(lambda: not {name for name in nft_chains(compute_node) if extra["id"] in name}, timeout=timeout,
               message="the rules of the port deleted from the database to go")
    assert extra["id"] not in firewall.owned_ports(compute_node)


def test_kill_and_restart_resyncs_the_kernel_to_the_database(site, admin, spanning, tokens):
    network, subnet, ports, plugged = spanning
    compute_node = site.hosts[1]
    # A second machine on the compute node, whose port is then deleted behind
    # the agent's back (no message: only a resync can notice).
    extra = bound_port(admin, network, site.names[1], [])
    plug(site, 1, extra)
    assert f"in-{extra['id']}" in nft_chains(compute_node)

    site.agents[1].kill()
    wait_until(lambda: not agents_of(admin, site.names[1])["Linux bridge agent"]["alive"], timeout=15,
               message="the stopped agent to be shown dead")
    dead = admin.get("agents", params={"host": site.names[1], "alive": "false"}).json()["agents"]
    assert [agent["agent_type"] for agent in dead] == ["Linux bridge agent"]
    assert admin.get("agents", params={"host": site.names[1], "alive": "true"}).json()["agents"] == []
    assert admin.get("agents", params={"alive": "maybe"}).status_code == 400
    IPAllocation.objects.filter(port_id=extra["id"]).delete()
    Port.objects.filter(pk=extra["id"]).delete()
    vni = admin.get(f"networks/{network['id']}").json()["network"]["provider:segmentation_id"]
    with iplib.ip(compute_node.namespace) as handle:
        iplib.delete_link(handle, kernel.vxlan_name(vni))
        # Left by this agent (its mark on it), and one of another agent's.
        stale = kernel.Network(id=str(uuid.uuid4()), vni=4000)
        handle.link("add", ifname=stale.bridge, kind="bridge")
        iplib.set_alias(handle, stale.bridge, f"stratus:{site.names[1]}")
        foreign = kernel.Network(id=str(uuid.uuid4()), vni=4001)
        handle.link("add", ifname=foreign.bridge, kind="bridge")
        iplib.set_alias(handle, foreign.bridge, "stratus:another-host")
    iplib.run(compute_node.namespace, ["nft", "delete", "table", *firewall.tables(compute_node)[1].split()])

    site.agents[1].start()
    assert agents_of(admin, site.names[1])["Linux bridge agent"]["alive"]
    chains = nft_chains(compute_node)
    assert {f"in-{ports[1]['id']}", f"out-{ports[1]['id']}", f"spoof-{ports[1]['id']}"} <= chains
    assert not {name for name in chains if extra["id"] in name}
    with iplib.ip(compute_node.namespace) as handle:
        names = {link["name"] for link in iplib.links(handle)}
    assert kernel.vxlan_name(vni) in names and kernel.bridge_name(network["id"]) in names
    assert stale.bridge not in names and foreign.bridge in names
    with iplib.ip(compute_node.namespace) as handle:
        iplib.delete_link(handle, foreign.bridge)
    assert bridges.vxlan_peers(compute_node, kernel.Network(id=network["id"], vni=vni)) == {site.hosts[0].local_ip}
    first, second = plugged[0][1], plugged[1][1]
    assert first.reachable(admin.get(f"ports/{ports[1]['id']}").json()["port"]["fixed_ips"][0]["ip_address"])

    # The network node: its DHCP server is killed with the agent, and a port
    # deleted meanwhile leaves its host entry.
    network_node = site.hosts[0]
    dhcp_network = kernel.Network(id=network["id"])
    site.agents[0].kill()
    os.kill(dhcp.running_pid(network_node, dhcp_network), signal.SIGKILL)
    wait_until(lambda: dhcp.running_pid(network_node, dhcp_network) is None, message="dnsmasq to die")
    IPAllocation.objects.filter(port_id=ports[0]["id"]).delete()
    Port.objects.filter(pk=ports[0]["id"]).delete()
    site.agents[0].start()
    assert dhcp.running_pid(network_node, dhcp_network)
    hosts_file = (dhcp.state_dir(network_node, dhcp_network) / "host").read_text()
    assert ports[1]["mac_address"] in hosts_file and ports[0]["mac_address"] not in hosts_file
    assert not {name for name in nft_chains(network_node) if ports[0]["id"] in name}
    assert fresh_lease(second) == admin.get(f"ports/{ports[1]['id']}").json()["port"]["fixed_ips"][0]["ip_address"]
