"""Neutron's bulk create: POST of `{"<collection>": [...]}` makes every
member or none, for networks, subnets, ports and security group rules,
against the live server (openstacksdk where it sends that form)."""
import pytest

from tests.network.conftest import neutron_error, unique

pytestmark = pytest.mark.live


def test_networks_and_subnets_in_one_request(demo):
    names = [unique("bulk"), unique("bulk")]
    response = demo.post("networks", {"networks": [{"name": names[0]}, {"name": names[1], "admin_state_up": False}]})
    assert response.status_code == 201, response.text
    made = response.json()["networks"]
    assert [n["name"] for n in made] == names and [n["status"] for n in made] == ["ACTIVE", "DOWN"]
    listed = {n["id"] for n in demo.get("networks", params={"name": names}).json()["networks"]}
    assert listed == {n["id"] for n in made}

    response = demo.post("subnets", {"subnets": [
        {"network_id": made[0]["id"], "cidr": "10.61.0.0/24", "ip_version": 4, "name": "first"},
        {"network_id": made[1]["id"], "cidr": "fd00:61::/64", "ip_version": 6}]})
    assert response.status_code == 201, response.text
    subnets = response.json()["subnets"]
    assert [(s["network_id"], s["cidr"], s["gateway_ip"]) for s in subnets] == [
        (made[0]["id"], "10.61.0.0/24", "10.61.0.1"), (made[1]["id"], "fd00:61::/64", "fd00:61::1")]
    assert demo.get(f"networks/{made[1]['id']}").json()["network"]["subnets"] == [subnets[1]["id"]]


def test_an_invalid_member_leaves_none_made(demo):
    name = unique("bulk")
    refused = demo.post("networks", {"networks": [{"name": name}, {"name": name, "mtu": "big"}]})
    assert "mtu" in neutron_error(refused, 400, "HTTPBadRequest")
    assert demo.get("networks", params={"name": name}).json()["networks"] == []

    network = demo.network()
    overlapping = demo.post("subnets", {"subnets": [
        {"network_id": network["id"], "cidr": "10.62.0.0/24", "ip_version": 4},
        {"network_id": network["id"], "cidr": "10.62.0.0/25", "ip_version": 4}]})
    assert "overlaps" in neutron_error(overlapping, 400, "InvalidInput")
    assert demo.get("subnets", params={"network_id": network["id"]}).json()["subnets"] == []

    demo.subnet(network, "10.62.0.0/24")
    taken = demo.post("ports", {"ports": [
        {"network_id": network["id"], "name": "first", "fixed_ips": [{"ip_address": "10.62.0.5"}]},
        {"network_id": network["id"], "fixed_ips": [{"ip_address": "10.62.0.5"}]}]})
    neutron_error(taken, 409, "IpAddressAlreadyAllocated")
    assert demo.get("ports", params={"network_id": network["id"], "name": "first"}).json()["ports"] == []


@pytest.mark.parametrize("body", [{"networks": []}, {"networks": {"name": "x"}}, {"networks": ["x"]}])
def test_a_bad_bulk_body_is_refused(demo, body):
    assert "networks" in neutron_error(demo.post("networks", body), 400, "HTTPBadRequest")


def test_another_projects_network_in_a_bulk_is_not_found(admin, demo):
    mine, theirs = demo.network(), admin.network()
    refused = demo.post("ports", {"ports": [{"network_id": mine["id"]}, {"network_id": theirs["id"]}]})
    neutron_error(refused, 404, "NetworkNotFound")
    assert demo.get("ports", params={"network_id": mine["id"]}).json()["ports"] == []


def test_sdk_creates_ports_and_rules_in_bulk(cloud, demo):
    conn = cloud.connect("stratus-demo")
    network = demo.network()
    subnet = demo.subnet(network, "10.63.0.0/24")
    made = list(conn.network.create_ports([
        {"network_id": network["id"], "name": "a"},
        {"network_id": network["id"], "name": "b", "fixed_ips": [{"subnet_id": subnet["id"],
                                                                   "ip_address": "10.63.0.50"}]}]))
    assert [port.name for port in made] == ["a", "b"]
    assert made[1].fixed_ips == [{"subnet_id": subnet["id"], "ip_address": "10.63.0.50"}]
    assert {port.id for port in conn.network.ports(network_id=network["id"])} >= {port.id for port in made}

    group = conn.network.create_security_group(name=unique("bulk"))
    rules = list(conn.network.create_security_group_rules([
        {"security_group_id": group.id, "direction": "ingress", "protocol": "tcp",
         "port_range_min": 22, "port_range_max": 22},
        {"security_group_id": group.id, "direction": "ingress", "protocol": "icmp"}]))
    assert [(rule.protocol, rule.port_range_min) for rule in rules] == [("tcp", 22), ("icmp", None)]
    listed = {rule.id for rule in conn.network.security_group_rules(security_group_id=group.id)}
    assert {rule.id for rule in rules} <= listed
