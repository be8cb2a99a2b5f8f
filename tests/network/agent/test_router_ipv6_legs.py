"""Two IPv6 subnets of one network added to a router with the stock CLI
(`openstack router add subnet`) make one leg, as in Neutron: one router
port holding both gateways, one interface in the router's namespace with
both addresses, advertising both prefixes; removing one subnet keeps the
other on the same leg. A network agent for a host played by a namespace
runs in this process on the cloud's database; a machine on the network's
bridge hears the advertisements."""
import os
import uuid
from dataclasses import replace

import pytest

from network.addressing import eui64_address
from network.agent import iplib, node, routers
from network.agent import resources as kernel
from network.models import Agent, Port
from tests.network.conftest import unique

from .conftest import mac_of, new_id

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root (namespaces, bridges)")


@pytest.fixture
def live_db(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        yield


def leg_devices(namespace):
    with iplib.ip(namespace) as handle:
        return [link["name"] for link in iplib.links(handle) if link["name"].startswith(routers.INTERNAL_PREFIX)]


def global_addresses(namespace, device):
    out = iplib.run(namespace, ["ip", "-6", "-o", "addr", "show", "dev", device, "scope", "global"]).stdout
    return sorted(line.split()[3] for line in out.splitlines())


def test_two_ipv6_subnets_of_a_network_share_one_router_leg_advertising_both(lab, cloud, live_db):
    cli = cloud.openstack
    name = unique("legs")
    network = cli("network", "create", name, "-f", "json")
    subnets = [cli("subnet", "create", "--network", name, "--ip-version", "6", "--ipv6-ra-mode", "slaac",
                   "--ipv6-address-mode", "slaac", "--subnet-range", f"2001:db8:{number}::/64", f"{name}-{number}",
                   "-f", "json") for number in (171, 172)]
    router = cli("router", "create", name, "-f", "json")
    host_name = f"legs{uuid.uuid4().hex[:6]}"
    host = replace(lab.host(underlay_number=1), name=host_name)
    agent = node.NodeAgent(host_name, host, dhcp=False, l3=True)
    agent.register()
    namespace = routers.namespace_name(kernel.Router(id=router["id"]))
    try:
        for subnet in subnets:
            cli("router", "add", "subnet", name, subnet["id"])
        (leg,) = cli("port", "list", "--router", name, "-f", "json")
        assert sorted(fixed["ip_address"] for fixed in leg["Fixed IP Addresses"]) == [
            "2001:db8:171::1", "2001:db8:172::1"]

        agent.sync_router(router["id"])
        device = routers.interface_name(routers.INTERNAL_PREFIX, leg["ID"])
        assert leg_devices(namespace) == [device]
        assert global_addresses(namespace, device) == ["2001:db8:171::1/64", "2001:db8:172::1/64"]
        machine = lab.machine(host, kernel.Network(id=network["id"]),
                              kernel.Port(id=new_id(), network_id=network["id"], mac_address=mac_of(171)))
        source = eui64_address("fe80::/64", Port.objects.get(pk=leg["ID"]).mac_address)
        advert = machine.router_advertisement(source=source)
        assert sorted(prefix["prefix"] for prefix in advert["prefixes"]) == ["2001:db8:171::/64", "2001:db8:172::/64"]
        assert advert["router_lifetime"] == routers.ROUTER_LIFETIME

        # One subnet removed: the same leg keeps the other, and advertises it alone.
        cli("router", "remove", "subnet", name, subnets[0]["id"])
        (kept,) = cli("port", "list", "--router", name, "-f", "json")
        assert kept["ID"] == leg["ID"] and [f["subnet_id"] for f in kept["Fixed IP Addresses"]] == [subnets[1]["id"]]
        agent.sync_router(router["id"])
        assert leg_devices(namespace) == [device]
        assert global_addresses(namespace, device) == ["2001:db8:172::1/64"]
        assert [prefix["prefix"] for prefix in machine.router_advertisement(source=source)["prefixes"]] == [
            "2001:db8:172::/64"]
        cli("router", "remove", "subnet", name, subnets[1]["id"])
        assert cli("port", "list", "--router", name, "-f", "json") == []
    finally:
        routers.delete_router(host, kernel.Router(id=router["id"]))
        Agent.objects.filter(host=host_name).delete()
        for port in Port.objects.filter(device_id=router["id"]):
            cli("router", "remove", "port", name, str(port.pk))
        cli("router", "delete", name)
        cli("network", "delete", name)
    assert not iplib.namespace_exists(namespace)
