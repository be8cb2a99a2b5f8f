"""routers: a qrouter namespace joining tenant subnets to an external network
with SNAT and floating IPs; the outside world is a namespace on the external
bridge that has no route to the tenant subnets."""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from network.agent import bridges, iplib, routers
from network.agent.resources import (FixedIP, FloatingIP, Network, Port, Router, RouterGateway,
                                     RouterInterface)

from .conftest import mac_of, new_id


class Site:
    """A host with an external flat network whose far end is `outside`
    (172.24.4.1, the upstream gateway), and tenant networks with a machine each."""

    def __init__(self, lab):
        self.lab = lab
        self.host = lab.host()
        self.outside = lab.namespace("out")
        with iplib.ip(self.host.namespace) as handle:
            iplib.ensure_veth(handle, "physext", "eth0", self.outside)
        iplib.run(self.outside, ["ip", "addr", "add", "172.24.4.1/24", "dev", "eth0"], check=True)
        iplib.run(self.outside, ["ip", "link", "set", "eth0", "up"], check=True)
        self.external = Network(id=new_id(), physical_interface="physext", mtu=1500)
        bridges.ensure_network(self.host, self.external)
        self.gateway = RouterGateway(port_id=new_id(), network=self.external, mac_address=mac_of(200),
                                     ip_address="172.24.4.10", cidr="172.24.4.0/24", gateway_ip="172.24.4.1")

    def tenant(self, third_octet, number):
        """A network 10.<third_octet>.0.0/24, a machine at .10 routed via .1,
        and the router interface for it."""
        network = Network(id=new_id())
        bridges.ensure_network(self.host, network)
        address = f"10.{third_octet}.0.10"
        port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(number),
                    fixed_ips=(FixedIP("s", address),))
        machine = self.lab.machine(self.host, network, port)
        machine.set_address(f"{address}/24")
        machine.set_default_route(f"10.{third_octet}.0.1")
        interface = RouterInterface(port_id=new_id(), network=network, mac_address=mac_of(number + 100),
                                    ip_address=f"10.{third_octet}.0.1", cidr=f"10.{third_octet}.0.0/24")
        return machine, interface

    def ping_from_outside(self, address, count, wait):
        argv = ["busybox", "ping", "-c", str(count), "-W", str(wait), address]
        return iplib.run(self.outside, argv, check=False).returncode == 0

    def outside_connects(self, address, port):
        argv = ["busybox", "nc", "-w", "2", address, str(port)]
        return iplib.run(self.outside, argv, check=False).returncode == 0

    def outside_reaches(self, address):
        return any(self.ping_from_outside(address, 1, 2) for _ in range(3))

    def outside_cannot_reach(self, address):
        return not self.ping_from_outside(address, 2, 1)


@pytest.fixture
def site(lab):
    return Site(lab)


def test_snat_takes_a_machine_to_the_outside_and_without_it_there_is_no_way_back(site):
    machine, interface = site.tenant(50, 10)
    router = Router(id=new_id(), interfaces=(interface,), gateway=site.gateway)
    site.lab.sync_router(site.host, router)
    site.lab.sync_router(site.host, router)
    assert machine.reachable("172.24.4.1")

    site.lab.sync_router(site.host, replace(router, enable_snat=False))
    assert machine.unreachable("172.24.4.1")


def test_a_floating_ip_reaches_its_machine_from_outside_until_it_is_removed(site):
    machine, interface = site.tenant(50, 10)
    router = Router(id=new_id(), interfaces=(interface,), gateway=site.gateway, enable_snat=False,
                    floating_ips=(FloatingIP("172.24.4.20", "10.50.0.10"),))
    site.lab.sync_router(site.host, router)
    machine.serve_tcp(2222)
    # TCP: the router itself answers pings to the floating IP it holds; only
    # the machine listens on the port.
    assert site.outside_connects("172.24.4.20", 2222)
    assert machine.reachable("172.24.4.1")   # out through its floating IP, with SNAT off

    site.lab.sync_router(site.host, replace(router, floating_ips=()))
    assert not site.outside_connects("172.24.4.20", 2222)
    assert site.outside_cannot_reach("172.24.4.20")
    assert machine.unreachable("172.24.4.1")


def test_a_machine_reaches_a_neighbour_through_the_neighbours_floating_ip(site):
    machine, interface = site.tenant(50, 10)
    neighbour_port = Port(id=new_id(), network_id=interface.network.id, mac_address=mac_of(12),
                          fixed_ips=(FixedIP("s", "10.50.0.12"),))
    neighbour = site.lab.machine(site.host, interface.network, neighbour_port)
    neighbour.set_address("10.50.0.12/24")
    neighbour.set_default_route("10.50.0.1")
    router = Router(id=new_id(), interfaces=(interface,), gateway=site.gateway,
                    floating_ips=(FloatingIP("172.24.4.22", "10.50.0.12"),))
    site.lab.sync_router(site.host, router)
    neighbour.serve_tcp(2222)
    # TCP, not ping: a reply straight from the neighbour's fixed IP would
    # not match the connection (busybox ping takes any echo reply).
    assert machine.tcp_connects("172.24.4.22", 2222)


def test_the_router_joins_its_subnets_and_holds_its_static_routes(site):
    first, first_leg = site.tenant(50, 10)
    second, second_leg = site.tenant(60, 11)
    router = Router(id=new_id(), interfaces=(first_leg, second_leg),
                    routes=(("10.77.0.0/16", "10.50.0.10"),))
    site.lab.sync_router(site.host, router)
    namespace = routers.namespace_name(router)
    assert first.reachable("10.60.0.10")
    assert "10.77.0.0/16 via 10.50.0.10" in iplib.run(namespace, ["ip", "route"]).stdout

    site.lab.sync_router(site.host, replace(router, interfaces=(first_leg,), routes=()))
    assert first.unreachable("10.60.0.10")
    assert "10.77.0.0/16" not in iplib.run(namespace, ["ip", "route"]).stdout
    with iplib.ip(site.host.namespace) as handle:
        assert iplib.link_index(handle, routers.veth_name(second_leg.port_id)) is None


def test_resync_deletes_the_routers_no_longer_wanted(site):
    _, interface = site.tenant(50, 10)
    kept = Router(id=new_id(), interfaces=(interface,))
    stale = Router(id=new_id(), gateway=site.gateway)
    site.lab.sync_router(site.host, kept)
    site.lab.sync_router(site.host, stale)

    routers.resync(site.host, [kept])

    assert iplib.namespace_exists(routers.namespace_name(kept))
    assert not iplib.namespace_exists(routers.namespace_name(stale))
    with iplib.ip(site.host.namespace) as handle:
        assert iplib.link_index(handle, routers.veth_name(site.gateway.port_id)) is None


def test_syncs_of_one_router_at_once_leave_it_whole(site):
    machine, interface = site.tenant(50, 10)
    router = Router(id=new_id(), interfaces=(interface,), gateway=site.gateway,
                    floating_ips=(FloatingIP("172.24.4.20", "10.50.0.10"),))
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: site.lab.sync_router(site.host, router), range(4)))
    assert site.outside_reaches("172.24.4.20")


def test_a_host_that_never_had_a_router_leaves_its_namespace_alone(lab):
    """qrouter-<id> is the same name on every host: deleting a router this
    host never made must not remove another host's."""
    site = Site(lab)
    router = Router(id=new_id(), gateway=site.gateway)
    lab.sync_router(site.host, router)
    routers.delete_router(lab.host(), router)
    assert iplib.namespace_exists(routers.namespace_name(router))
    with iplib.ip(routers.namespace_name(router)) as handle:
        assert iplib.link_index(handle, routers.interface_name(routers.EXTERNAL_PREFIX, site.gateway.port_id))
