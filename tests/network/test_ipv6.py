"""IPv6 subnets through the live API: SLAAC and DHCPv6-stateless subnets
give each port its EUI-64 address from its MAC (existing ports too, and a
new MAC a new address), DHCPv6-stateful subnets hand out pool addresses,
and modes that do not fit are refused in Neutron's format."""
import ipaddress

import pytest

from tests.network.conftest import neutron_error

pytestmark = pytest.mark.live


def eui64(prefix, mac):
    """RFC 4291's modified EUI-64 interface identifier of `mac` in `prefix`."""
    octets = bytearray(int(part, 16) for part in mac.split(":"))
    octets[0] ^= 0x02
    identifier = bytes(octets[:3]) + b"\xff\xfe" + bytes(octets[3:])
    return str(ipaddress.ip_network(prefix).network_address + int.from_bytes(identifier, "big"))


def v6_subnet(caller, network, cidr, **attributes):
    return caller.create("subnets", "subnet", network_id=network["id"], cidr=cidr, ip_version=6, **attributes)


def addresses(port):
    return {fixed["subnet_id"]: fixed["ip_address"] for fixed in port["fixed_ips"]}


def test_slaac_ports_get_their_eui64_address_beside_their_ipv4_one(admin):
    network = admin.network()
    v4 = admin.subnet(network, "10.90.0.0/24")
    slaac = v6_subnet(admin, network, "2001:db8:90::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert (slaac["ipv6_ra_mode"], slaac["ipv6_address_mode"], slaac["gateway_ip"]) == ("slaac", "slaac",
                                                                                        "2001:db8:90::1")
    port = admin.port(network)
    assert addresses(port) == {v4["id"]: "10.90.0.2", slaac["id"]: eui64("2001:db8:90::/64", port["mac_address"])}

    # A known MAC gives the address one can work out by hand.
    fixed = admin.port(network, mac_address="fa:16:3e:12:34:56")
    assert addresses(fixed)[slaac["id"]] == "2001:db8:90:0:f816:3eff:fe12:3456"
    moved = admin.put(f"ports/{fixed['id']}", {"port": {"mac_address": "fa:16:3e:65:43:21"}})
    assert moved.status_code == 200, moved.text
    assert addresses(moved.json()["port"])[slaac["id"]] == "2001:db8:90:0:f816:3eff:fe65:4321"

    # An address of one's choosing on a SLAAC subnet is refused, and nothing is made.
    chosen = admin.post("ports", {"port": {"network_id": network["id"],
                                           "fixed_ips": [{"ip_address": "2001:db8:90::99"}]}})
    assert "automatic addresses" in neutron_error(chosen, 400, "InvalidInput")
    assert len(admin.get("ports", params={"network_id": network["id"]}).json()["ports"]) == 2


def test_a_slaac_subnet_added_later_addresses_the_existing_ports_and_takes_them_when_deleted(admin):
    network = admin.network()
    admin.subnet(network, "10.91.0.0/24")
    port = admin.port(network)
    stateless = v6_subnet(admin, network, "2001:db8:91::/64", ipv6_address_mode="dhcpv6-stateless")
    shown = admin.get(f"ports/{port['id']}").json()["port"]
    assert addresses(shown)[stateless["id"]] == eui64("2001:db8:91::/64", port["mac_address"])

    assert admin.delete(f"subnets/{stateless['id']}").status_code == 204
    assert stateless["id"] not in addresses(admin.get(f"ports/{port['id']}").json()["port"])


def test_dhcpv6_stateful_hands_out_pool_addresses(admin):
    network = admin.network()
    stateful = v6_subnet(admin, network, "2001:db8:92::/120", ipv6_ra_mode="dhcpv6-stateful",
                         ipv6_address_mode="dhcpv6-stateful")
    assert stateful["allocation_pools"] == [{"start": "2001:db8:92::2", "end": "2001:db8:92::fe"}]
    made = [admin.port(network) for _ in range(2)]
    assert [addresses(port)[stateful["id"]] for port in made] == ["2001:db8:92::2", "2001:db8:92::3"]
    chosen = admin.port(network, fixed_ips=[{"ip_address": "2001:db8:92::50"}])
    assert addresses(chosen) == {stateful["id"]: "2001:db8:92::50"}


@pytest.mark.parametrize("attributes, field", [
    ({"cidr": "2001:db8:93::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"}, "ipv6_ra_mode"),
    ({"cidr": "2001:db8:93::/80", "ipv6_address_mode": "slaac"}, "cidr"),
    ({"cidr": "2001:db8:93::/64", "ipv6_address_mode": "static"}, "ipv6_address_mode"),
    ({"cidr": "10.93.0.0/24", "ip_version": 4, "ipv6_address_mode": "slaac"}, "ipv6_address_mode"),
    ({"cidr": "10.93.0.0/24"}, "ip_version"),
])
def test_modes_that_do_not_fit_are_refused(admin, attributes, field):
    network = admin.network()
    body = {"network_id": network["id"], "ip_version": 6, **attributes}
    message = neutron_error(admin.post("subnets", {"subnet": body}), 400, "HTTPBadRequest")
    assert field in message
    assert admin.get("subnets", params={"network_id": network["id"]}).json()["subnets"] == []


def test_a_router_takes_an_ipv6_leg_beside_an_ipv4_one_and_refuses_an_overlapping_one(admin):
    network = admin.network()
    v4 = admin.subnet(network, "10.94.0.0/24")
    subnet = v6_subnet(admin, network, "2001:db8:94::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    router = admin.create("routers", "router", name="r6")
    for attached in (v4, subnet):
        added = admin.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": attached["id"]})
        assert added.status_code == 200, added.text
    leg = admin.get(f"ports/{added.json()['port_id']}").json()["port"]
    # The leg holds the gateway, not an EUI-64 address of its own.
    assert (leg["device_owner"], leg["fixed_ips"]) == ("network:router_interface", [
        {"subnet_id": subnet["id"], "ip_address": "2001:db8:94::1"}])

    other = admin.network()
    overlapping = v6_subnet(admin, other, "2001:db8:94::/64", ipv6_address_mode="dhcpv6-stateful")
    refused = admin.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": overlapping["id"]})
    assert "overlaps" in neutron_error(refused, 400, "BadRequest")
    assert len(admin.get("ports", params={"device_id": router["id"]}).json()["ports"]) == 2


def test_ip_availability_counts_an_ipv6_subnet_past_64_bits(admin):
    network = admin.network()
    subnet = v6_subnet(admin, network, "2001:db8:9200::/56")
    admin.port(network)
    shown = admin.get(f"network-ip-availabilities/{network['id']}")
    assert shown.status_code == 200, shown.text
    (entry,) = [entry for entry in shown.json()["network_ip_availability"]["subnet_ip_availability"]
                if entry["subnet_id"] == subnet["id"]]
    assert entry["total_ips"] > 2 ** 64 and entry["used_ips"] >= 1
    listed = admin.get("network-ip-availabilities", params={"network_id": network["id"]})
    assert listed.status_code == 200 and listed.json()["network_ip_availabilities"][0]["total_ips"] > 2 ** 64


def test_a_router_interface_by_port_takes_every_fixed_ip_and_a_subnet_removed_takes_only_its_own(admin):
    network = admin.network()
    v4 = admin.subnet(network, "10.95.0.0/24")
    v6 = v6_subnet(admin, network, "2001:db8:95::/64", ipv6_address_mode="dhcpv6-stateful",
                   ipv6_ra_mode="dhcpv6-stateful")
    port = admin.port(network, fixed_ips=[{"subnet_id": v4["id"], "ip_address": "10.95.0.254"},
                                          {"subnet_id": v6["id"], "ip_address": "2001:db8:95::fe"}])
    router = admin.create("routers", "router", name="dual")
    added = admin.put(f"routers/{router['id']}/add_router_interface", {"port_id": port["id"]})
    assert added.status_code == 200, added.text
    assert (added.json()["subnet_id"], sorted(added.json()["subnet_ids"])) == (v4["id"], sorted([v4["id"], v6["id"]]))
    # A subnet of the leg cannot be attached again through another leg.
    again = admin.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": v6["id"]})
    assert "already has a port on subnet" in neutron_error(again, 400, "BadRequest")

    # By subnet, the leg keeps its other address.
    removed = admin.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": v6["id"]})
    assert removed.status_code == 200 and removed.json()["subnet_ids"] == [v6["id"]]
    leg = admin.get(f"ports/{port['id']}").json()["port"]
    assert (leg["device_owner"], addresses(leg)) == ("network:router_interface", {v4["id"]: "10.95.0.254"})
    removed = admin.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": v4["id"]})
    assert removed.status_code == 200
    neutron_error(admin.get(f"ports/{port['id']}"), 404, "PortNotFound")

    # Neutron's rule: one IPv4 subnet per router port; nothing is attached.
    second = admin.subnet(network, "10.96.0.0/24")
    two = admin.port(network, fixed_ips=[{"subnet_id": v4["id"]}, {"subnet_id": second["id"]}])
    refused = admin.put(f"routers/{router['id']}/add_router_interface", {"port_id": two["id"]})
    assert "multiple IPv4 subnets" in neutron_error(refused, 400, "BadRequest")
    assert admin.get(f"ports/{two['id']}").json()["port"]["device_owner"] == ""
    assert admin.get("ports", params={"device_id": router["id"]}).json()["ports"] == []


def test_a_router_gateway_on_a_dual_stack_external_network_gets_an_address_of_each_version(admin):
    external = admin.network(**{"router:external": True})
    v4 = admin.subnet(external, "172.31.95.0/24")
    static = v6_subnet(admin, external, "2001:db8:e95::/64")
    router = admin.create("routers", "router", name="gw6", external_gateway_info={"network_id": external["id"]})
    fixed = {entry["subnet_id"]: entry["ip_address"] for entry in router["external_gateway_info"]["external_fixed_ips"]}
    assert set(fixed) == {v4["id"], static["id"]}
    assert ipaddress.ip_address(fixed[v4["id"]]) in ipaddress.ip_network(v4["cidr"])
    assert ipaddress.ip_address(fixed[static["id"]]) in ipaddress.ip_network(static["cidr"])

    # On a SLAAC external subnet the gateway takes its EUI-64 address, as a port there does.
    slaac_external = admin.network(**{"router:external": True})
    slaac = v6_subnet(admin, slaac_external, "2001:db8:e96::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    updated = admin.put(f"routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": slaac_external["id"]}}})
    assert updated.status_code == 200, updated.text
    gateway_port = admin.get("ports", params={"device_id": router["id"],
                                              "device_owner": "network:router_gateway"}).json()["ports"][0]
    assert updated.json()["router"]["external_gateway_info"]["external_fixed_ips"] == [
        {"subnet_id": slaac["id"], "ip_address": eui64(slaac["cidr"], gateway_port["mac_address"])}]
    assert admin.put(f"routers/{router['id']}", {"router": {"external_gateway_info": {}}}).status_code == 200
    assert admin.delete(f"routers/{router['id']}").status_code == 204


def test_a_floating_ip_takes_the_ipv4_address_of_a_dual_stack_port(admin):
    external = admin.network(**{"router:external": True})
    admin.subnet(external, "172.31.97.0/24")
    network = admin.network()
    v6 = v6_subnet(admin, network, "2001:db8:97::/64", ipv6_address_mode="dhcpv6-stateful",
                   ipv6_ra_mode="dhcpv6-stateful")
    v4 = admin.subnet(network, "10.97.0.0/24")
    router = admin.create("routers", "router", name="fip6", external_gateway_info={"network_id": external["id"]})
    for subnet in (v4, v6):
        assert admin.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]}).status_code == 200
    # Its IPv6 address listed first: the floating IP still takes the IPv4 one.
    port = admin.port(network, fixed_ips=[{"subnet_id": v6["id"]}, {"subnet_id": v4["id"]}])
    floating_ip = admin.create("floatingips", "floatingip", floating_network_id=external["id"], port_id=port["id"])
    assert floating_ip["fixed_ip_address"] == addresses(port)[v4["id"]]
    refused = admin.post("floatingips", {"floatingip": {"floating_network_id": external["id"], "port_id": port["id"],
                                                        "fixed_ip_address": addresses(port)[v6["id"]]}})
    assert "does not have fixed ip" in neutron_error(refused, 400, "BadRequest")


def test_a_second_ipv6_subnet_of_a_network_joins_the_routers_ipv6_leg_there_and_leaves_it_alone(admin):
    network = admin.network()
    v4 = admin.subnet(network, "10.97.0.0/24")
    first = v6_subnet(admin, network, "2001:db8:97::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    second = v6_subnet(admin, network, "2001:db8:98::/64", ipv6_ra_mode="dhcpv6-stateless",
                       ipv6_address_mode="dhcpv6-stateless")
    elsewhere = v6_subnet(admin, admin.network(), "2001:db8:99::/64", ipv6_ra_mode="slaac",
                          ipv6_address_mode="slaac")
    router = admin.create("routers", "router", name="r6-legs")

    def add(subnet):
        added = admin.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
        assert added.status_code == 200, added.text
        return added.json()

    v4_leg, leg = add(v4)["port_id"], add(first)["port_id"]
    assert leg != v4_leg   # an IPv4 subnet has a leg of its own, as in Neutron
    joined = add(second)
    assert (joined["port_id"], joined["subnet_id"], joined["subnet_ids"]) == (leg, second["id"], [second["id"]])
    assert add(elsewhere)["port_id"] not in (leg, v4_leg)   # another network: another leg
    legs = admin.get("ports", params={"device_id": router["id"]}).json()["ports"]
    assert len(legs) == 3
    assert addresses(admin.get(f"ports/{leg}").json()["port"]) == {first["id"]: "2001:db8:97::1",
                                                                   second["id"]: "2001:db8:98::1"}
    again = admin.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": second["id"]})
    assert "already has a port on subnet" in neutron_error(again, 400, "BadRequest")

    # Removing one subnet keeps the other on the same leg.
    removed = admin.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": first["id"]})
    assert removed.status_code == 200 and (removed.json()["port_id"], removed.json()["subnet_ids"]) == (
        leg, [first["id"]])
    assert addresses(admin.get(f"ports/{leg}").json()["port"]) == {second["id"]: "2001:db8:98::1"}
    removed = admin.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": second["id"]})
    assert removed.status_code == 200
    neutron_error(admin.get(f"ports/{leg}"), 404, "PortNotFound")
