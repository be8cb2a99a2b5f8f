"""The stock `openstack` CLI and openstacksdk against the live server."""
import pytest

from tests.network.conftest import unique

pytestmark = pytest.mark.live


def test_network_subnet_port_with_the_cli(cloud):
    os = cloud.openstack
    name = unique("cli")
    network = os("network", "create", "--mtu", "1400", "--tag", "blue", name, "-f", "json")
    assert network["mtu"] == 1400 and network["tags"] == ["blue"] and network["status"] == "ACTIVE"
    subnet = os("subnet", "create", "--network", name, "--subnet-range", "10.120.0.0/24", "--dns-nameserver",
                "192.0.2.53", "--allocation-pool", "start=10.120.0.10,end=10.120.0.100", f"{name}-sub", "-f", "json")
    assert subnet["cidr"] == "10.120.0.0/24" and subnet["gateway_ip"] == "10.120.0.1"
    port = os("port", "create", "--network", name, "--fixed-ip", f"subnet={name}-sub,ip-address=10.120.0.42",
              f"{name}-port", "-f", "json")
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.120.0.42"}]
    listed = os("port", "list", "--fixed-ip", "ip-address=10.120.0.42", "-f", "json")
    assert [p["ID"] for p in listed] == [port["id"]]
    assert [n["Name"] for n in os("network", "list", "--tag", "blue", "-f", "json")] == [name]
    os("port", "set", "--name", f"{name}-renamed", port["id"])
    assert os("port", "show", port["id"], "-f", "json")["name"] == f"{name}-renamed"
    os("network", "set", "--name", f"{name}-2", name)
    shown = os("network", "show", f"{name}-2", "-f", "json")
    assert shown["subnets"] == [subnet["id"]]
    failed = os("network", "delete", f"{name}-2", expect_fail=True)
    assert "still in use" in failed.stderr
    os("port", "delete", port["id"])
    os("subnet", "delete", subnet["id"])
    os("network", "delete", f"{name}-2")
    assert os("network", "list", "--name", f"{name}-2", "-f", "json") == []


def test_security_groups_routers_floating_ips_with_the_cli(cloud):
    os = lambda *args, **kwargs: cloud.openstack(*args, cloud="stratus-demo", **kwargs)  # noqa: E731
    admin = cloud.openstack
    name = unique("cli")
    public = admin("network", "create", "--external", f"{name}-public", "-f", "json")
    admin("subnet", "create", "--network", public["id"], "--subnet-range", "172.30.0.0/24", "--no-dhcp",
          f"{name}-public-sub", "-f", "json")
    group = os("security", "group", "create", f"{name}-sg", "-f", "json")
    rule = os("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
              "--remote-ip", "0.0.0.0/0", group["id"], "-f", "json")
    assert (rule["port_range_min"], rule["port_range_max"], rule["protocol"]) == (22, 22, "tcp")
    rules = os("security", "group", "rule", "list", group["id"], "-f", "json")
    assert rule["id"] in {r["ID"] for r in rules}
    os("network", "create", f"{name}-private", "-f", "json")
    subnet = os("subnet", "create", "--network", f"{name}-private", "--subnet-range", "10.121.0.0/24",
                f"{name}-private-sub", "-f", "json")
    router = os("router", "create", f"{name}-router", "-f", "json")
    os("router", "set", "--external-gateway", public["id"], f"{name}-router")
    os("router", "add", "subnet", f"{name}-router", f"{name}-private-sub")
    shown = os("router", "show", f"{name}-router", "-f", "json")
    assert shown["external_gateway_info"]["network_id"] == public["id"]
    assert any(i["subnet_id"] == subnet["id"] for i in shown["interfaces_info"])
    port = os("port", "create", "--network", f"{name}-private", "--security-group", group["id"], f"{name}-vm",
              "-f", "json")
    floating_ip = os("floating", "ip", "create", public["id"], "-f", "json")
    os("floating", "ip", "set", "--port", port["id"], floating_ip["id"])
    associated = os("floating", "ip", "show", floating_ip["id"], "-f", "json")
    assert associated["port_id"] == port["id"] and associated["router_id"] == router["id"]
    assert associated["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    os("floating", "ip", "unset", "--port", floating_ip["id"])
    os("floating", "ip", "delete", floating_ip["id"])
    os("router", "remove", "subnet", f"{name}-router", f"{name}-private-sub")
    os("router", "unset", "--external-gateway", f"{name}-router")
    os("router", "delete", f"{name}-router")
    os("port", "delete", port["id"])
    os("security", "group", "delete", group["id"])
    admin("network", "delete", public["id"])


def test_quotas_with_the_cli(cloud):
    project = cloud.openstack("project", "show", "demo", "-f", "json")["id"]
    cloud.openstack("quota", "set", "--networks", "42", "--routers", "7", project)
    shown = cloud.openstack("quota", "show", "--network", project, "-f", "json")
    values = {row["Resource"]: row["Limit"] for row in shown} if isinstance(shown, list) else shown
    assert values["networks"] == 42 and values["routers"] == 7
    cloud.openstack("quota", "delete", "--network", project)
    shown = cloud.openstack("quota", "show", "--network", project, "-f", "json")
    values = {row["Resource"]: row["Limit"] for row in shown} if isinstance(shown, list) else shown
    assert values["networks"] == 100


def test_openstacksdk(cloud):
    conn = cloud.connect("stratus-demo")
    network = conn.network.create_network(name=unique("sdk"))
    subnet = conn.network.create_subnet(network_id=network.id, cidr="10.122.0.0/24", ip_version=4)
    ports = [conn.network.create_port(network_id=network.id) for _ in range(3)]
    assert len({port.fixed_ips[0]["ip_address"] for port in ports}) == 3
    # The SDK follows ports_links page by page.
    listed = list(conn.network.ports(network_id=network.id, limit=1, paginated=True))
    assert sorted(p.id for p in listed) == sorted(p.id for p in ports)
    assert conn.network.find_network(network.name).id == network.id
    assert conn.network.get_subnet(subnet.id).gateway_ip == "10.122.0.1"
    groups = [g.name for g in conn.network.security_groups()]
    assert "default" in groups
    zones = {z.name for z in conn.network.availability_zones()}
    assert zones == {"nova"}
    assert conn.network.find_extension("router") is not None
    for port in ports:
        conn.network.delete_port(port)
    conn.network.delete_subnet(subnet)
    conn.network.delete_network(network)
    assert conn.network.find_network(network.name) is None
