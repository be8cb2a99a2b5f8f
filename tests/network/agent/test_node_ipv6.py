"""IPv6 through the node agents as they run, made through the live API: a
SLAAC machine takes the EUI-64 address the API gave its port and the
router's default route, a DHCPv6-stateful machine on another host and
network gets exactly its port's address, and the two reach each other
through a router with both IPv6 subnets as legs; a router leg added by a
dual-stack port holds both of its addresses."""
import os

import pytest

from network.addressing import eui64_address
from network.agent import iplib, routers
from network.agent import resources as kernel
from tests.network.conftest import unique

from .test_node import admin, bound_port, live_db, new_network, plug, site, wait_until  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root (namespaces, bridges)")


def v6_subnet(admin, network, cidr, mode):  # noqa: F811
    return admin.create("subnets", "subnet", network_id=network["id"], cidr=cidr, ip_version=6,
                        ipv6_ra_mode=mode, ipv6_address_mode=mode)


def v6_address(port, subnet):
    return next(fixed["ip_address"] for fixed in port["fixed_ips"] if fixed["subnet_id"] == subnet["id"])


def test_slaac_and_stateful_machines_on_two_hosts_get_their_ports_addresses_and_route_through_the_router(
        site, admin):  # noqa: F811
    group = admin.create("security-groups", "security_group", name=unique("sg6"))
    admin.create("security-group-rules", "security_group_rule", security_group_id=group["id"],
                 direction="ingress", ethertype="IPv6", protocol="ipv6-icmp")
    slaac_network, _ = new_network(site, admin, "10.83.0.0/24")
    slaac = v6_subnet(admin, slaac_network, "2001:db8:83::/64", "slaac")
    # IPv6 only: its DHCP server is scheduled for the IPv6 subnet alone.
    stateful_network = admin.network()
    site.networks.append(stateful_network)
    stateful = v6_subnet(admin, stateful_network, "2001:db8:84::/64", "dhcpv6-stateful")
    near = bound_port(admin, slaac_network, site.names[0], [group["id"]])
    # On the host that serves no DHCP: the network node must take the network for it.
    far = bound_port(admin, stateful_network, site.names[1], [group["id"]])
    near_address, far_address = v6_address(near, slaac), v6_address(far, stateful)
    assert near_address == eui64_address(slaac["cidr"], near["mac_address"])
    _, near_machine = plug(site, 0, near)
    _, far_machine = plug(site, 1, far)
    for machine in (near_machine, far_machine):
        machine.accept_router_advertisements()

    router = admin.create("routers", "router", name=unique("r6"))
    try:
        legs = {}
        for subnet in (slaac, stateful):
            response = admin.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
            assert response.status_code == 200, response.text
            legs[subnet["id"]] = admin.get(f"ports/{response.json()['port_id']}").json()["port"]

        # SLAAC from the router's advertisements: the API's address, the router's route.
        assert near_machine.wait_for_address6(near_address, timeout=20)
        assert near_machine.default_route6(timeout=20) == eui64_address("fe80::/64", legs[slaac["id"]]["mac_address"])
        # DHCPv6 over VXLAN from the network's DHCP server: exactly the port's address.
        assert far_machine.dhcp6()["new_ip6_address"] == far_address
        assert far_machine.addresses6() == [far_address]
        assert far_machine.default_route6(timeout=20) == eui64_address("fe80::/64",
                                                                        legs[stateful["id"]]["mac_address"])

        assert wait_until(lambda: near_machine.ping6(far_address, attempts=1), timeout=10,
                          message="the IPv6 route through the router")
        assert far_machine.ping6(near_address)
    finally:
        for subnet in (slaac, stateful):
            admin.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]})
        admin.delete(f"routers/{router['id']}")


def leg_addresses(router_id, port_id):
    """The global addresses on the router's leg of `port_id` (None: no such leg)."""
    namespace = routers.namespace_name(kernel.Router(id=router_id))
    device = routers.interface_name(routers.INTERNAL_PREFIX, port_id)
    if not iplib.namespace_exists(namespace):
        return None
    result = iplib.run(namespace, ["ip", "-o", "addr", "show", "dev", device, "scope", "global"], check=False)
    return {line.split()[3] for line in result.stdout.splitlines()} if result.returncode == 0 else None


def test_a_router_leg_added_by_port_holds_every_fixed_ip_of_the_port_and_answers_on_each(
        site, admin, cloud):  # noqa: F811
    os_cli = cloud.openstack
    group = admin.create("security-groups", "security_group", name=unique("sgleg"))
    network, v4 = new_network(site, admin, "10.85.0.0/24")
    v6 = v6_subnet(admin, network, "2001:db8:85::/64", "dhcpv6-stateful")
    leg = os_cli("port", "create", "--network", network["id"],
                 "--fixed-ip", f"subnet={v4['id']},ip-address=10.85.0.254",
                 "--fixed-ip", f"subnet={v6['id']},ip-address=2001:db8:85::fe", unique("leg"), "-f", "json")
    router = os_cli("router", "create", unique("rleg"), "-f", "json")
    try:
        os_cli("router", "add", "port", router["id"], leg["id"])
        shown = os_cli("router", "show", router["id"], "-f", "json")
        assert sorted((i["subnet_id"], i["ip_address"]) for i in shown["interfaces_info"]) == sorted(
            [(v4["id"], "10.85.0.254"), (v6["id"], "2001:db8:85::fe")])
        # The router's namespace on the network node: one leg with both addresses.
        wait_until(lambda: leg_addresses(router["id"], leg["id"]) == {"10.85.0.254/24", "2001:db8:85::fe/64"},
                   timeout=20, message="the leg's two addresses in the router's namespace")

        # A machine on the other host holding the port's addresses reaches the router on both subnets.
        port = bound_port(admin, network, site.names[1], [group["id"]])
        address4, address6 = v6_address(port, v4), v6_address(port, v6)
        _, machine = plug(site, 1, port)
        machine.set_address(f"{address4}/24")
        machine.run("ip", "-6", "addr", "add", f"{address6}/64", "dev", "eth0", "nodad", check=True)
        assert machine.reachable("10.85.0.254")
        assert machine.ping6("2001:db8:85::fe")

        # The IPv6 subnet taken off by subnet: the leg keeps its IPv4 address only.
        os_cli("router", "remove", "subnet", router["id"], v6["id"])
        wait_until(lambda: leg_addresses(router["id"], leg["id"]) == {"10.85.0.254/24"}, timeout=20,
                   message="the IPv6 address to leave the leg")
        assert machine.reachable("10.85.0.254")
        assert not machine.ping6("2001:db8:85::fe", attempts=1)
        os_cli("router", "remove", "port", router["id"], leg["id"])
        wait_until(lambda: not iplib.namespace_exists(routers.namespace_name(kernel.Router(id=router["id"]))),
                   timeout=20, message="the router's namespace to go")
    finally:
        # Whatever a failure left attached goes first (the router is deleted only without legs).
        admin.put(f"routers/{router['id']}/remove_router_interface", {"port_id": leg["id"]})
        assert admin.delete(f"routers/{router['id']}").status_code == 204
        wait_until(lambda: not iplib.namespace_exists(routers.namespace_name(kernel.Router(id=router["id"]))),
                   timeout=20, message="the router's namespace to go")


def test_a_router_gateway_with_an_ipv6_address_routes_tenant_ipv6_subnets_to_the_outside_without_nat(
        site, admin):  # noqa: F811
    group = admin.create("security-groups", "security_group", name=unique("sggw6"))
    admin.create("security-group-rules", "security_group_rule", security_group_id=group["id"],
                 direction="ingress", ethertype="IPv6", protocol="ipv6-icmp")
    external = admin.network(**{"router:external": True})
    site.networks.append(external)
    external_v4 = admin.subnet(external, "172.30.88.0/24")
    external_v6 = v6_subnet(admin, external, "2001:db8:e88::/64", None)
    tenant = admin.network()
    site.networks.append(tenant)
    tenant_v6 = v6_subnet(admin, tenant, "2001:db8:88::/64", "slaac")
    # The outside world: a machine on the external network, with a route back to the tenant prefix
    # through the router's IPv6 gateway address (as an upstream router is given one).
    outside_port = bound_port(admin, external, site.names[0], [group["id"]])
    outside_address = v6_address(outside_port, external_v6)
    _, outside = plug(site, 0, outside_port)
    outside.run("ip", "-6", "addr", "add", f"{outside_address}/64", "dev", "eth0", "nodad", check=True)
    inside_port = bound_port(admin, tenant, site.names[1], [group["id"]])
    inside_address = v6_address(inside_port, tenant_v6)
    _, inside = plug(site, 1, inside_port)
    inside.accept_router_advertisements()

    router = admin.create("routers", "router", name=unique("rgw6"), external_gateway_info={
        "network_id": external["id"]})
    try:
        fixed = {entry["subnet_id"]: entry["ip_address"]
                 for entry in router["external_gateway_info"]["external_fixed_ips"]}
        assert set(fixed) == {external_v4["id"], external_v6["id"]}
        response = admin.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": tenant_v6["id"]})
        assert response.status_code == 200, response.text
        namespace = routers.namespace_name(kernel.Router(id=router["id"]))
        gateway_port = admin.get("ports", params={"device_id": router["id"],
                                                  "device_owner": "network:router_gateway"}).json()["ports"][0]
        gateway_device = routers.interface_name(routers.EXTERNAL_PREFIX, gateway_port["id"])

        def gateway_addresses():
            if not iplib.namespace_exists(namespace):
                return set()
            result = iplib.run(namespace, ["ip", "-o", "addr", "show", "dev", gateway_device, "scope", "global"],
                               check=False)
            return {line.split()[3].split("/")[0] for line in result.stdout.splitlines()}

        # Both addresses on the gateway leg, and the IPv6 default route to the external subnet's gateway.
        wait_until(lambda: gateway_addresses() == set(fixed.values()), timeout=20,
                   message="the gateway's two addresses")
        assert f"default via {external_v6['gateway_ip']} dev {gateway_device}" in iplib.run(
            namespace, ["ip", "-6", "route", "show", "default"]).stdout
        outside.run("ip", "-6", "route", "add", tenant_v6["cidr"], "via", fixed[external_v6["id"]], check=True)

        # The machine's own address both ways: routed, not translated.
        assert inside.wait_for_address6(inside_address, timeout=20)
        assert inside.default_route6(timeout=20)
        assert wait_until(lambda: inside.ping6(outside_address, attempts=1), timeout=10,
                          message="the outside over the router's IPv6 gateway")
        assert outside.ping6(inside_address)
        assert "ip6" not in iplib.run(namespace, ["nft", "list", "tables"]).stdout
    finally:
        admin.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": tenant_v6["id"]})
        assert admin.delete(f"routers/{router['id']}").status_code == 204
        wait_until(lambda: not iplib.namespace_exists(routers.namespace_name(kernel.Router(id=router["id"]))),
                   timeout=20, message="the router's namespace to go")
