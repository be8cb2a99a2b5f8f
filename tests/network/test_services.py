"""Security groups and rules, quotas, routers, floating IPs, availability
zones and IP availability on the wire, against the live server."""
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.network.conftest import Neutron, neutron_error, unique

pytestmark = pytest.mark.live


@pytest.fixture
def fresh(api, cloud, tokens):
    """A member of a brand-new project: (Neutron client, project id)."""
    admin_token = tokens["admin"]
    project = api.post("/identity/v3/projects", token=admin_token,
                       json={"project": {"name": unique("proj")}}).json()["project"]
    name, password = unique("user"), uuid.uuid4().hex
    user = api.post("/identity/v3/users", token=admin_token,
                    json={"user": {"name": name, "password": password}}).json()["user"]
    role = api.get("/identity/v3/roles?name=member", token=admin_token).json()["roles"][0]["id"]
    api.put(f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{role}", token=admin_token)
    issued = api.post("/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"name": name, "domain": {"id": "default"},
                                                                    "password": password}}},
        "scope": {"project": {"id": project["id"]}}}})
    assert issued.status_code == 201, issued.text
    return Neutron(api, issued.headers["X-Subject-Token"]), project["id"]


def test_default_security_group_on_first_use(fresh):
    member, project_id = fresh
    groups = member.get("security-groups").json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"]) for r in groups[0]["security_group_rules"]}
    assert rules == {("egress", "IPv4", None), ("egress", "IPv6", None),
                     ("ingress", "IPv4", groups[0]["id"]), ("ingress", "IPv6", groups[0]["id"])}
    assert len(member.get("security-groups").json()["security_groups"]) == 1  # made once
    port = member.port(member.network())
    assert port["security_groups"] == [groups[0]["id"]]
    neutron_error(member.delete(f"security-groups/{groups[0]['id']}"), 409, "SecurityGroupCannotRemoveDefault")
    neutron_error(member.post("security-groups", {"security_group": {"name": "default"}}), 409,
                  "SecurityGroupDefaultAlreadyExists")
    other = member.create("security-groups", "security_group", name="web")
    neutron_error(member.put(f"security-groups/{other['id']}", {"security_group": {"name": "default"}}), 409,
                  "SecurityGroupDefaultAlreadyExists")
    assert member.get(f"security-groups/{other['id']}").json()["security_group"]["name"] == "web"


def test_security_group_rules(fresh, admin):
    member, _ = fresh
    group = member.create("security-groups", "security_group", name="web")
    assert {r["direction"] for r in group["security_group_rules"]} == {"egress"}
    ssh = member.create("security-group-rules", "security_group_rule", security_group_id=group["id"],
                        direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22,
                        remote_ip_prefix="192.0.2.0/24")
    assert (ssh["protocol"], ssh["port_range_min"], ssh["port_range_max"], ssh["remote_ip_prefix"]) == \
        ("tcp", 22, 22, "192.0.2.0/24")
    # The CLI sends the project: the rule is the group's project's.
    owned = member.create("security-group-rules", "security_group_rule", security_group_id=group["id"],
                          direction="egress", protocol="udp", port_range_min=53, port_range_max=53,
                          project_id=group["project_id"])
    assert owned["project_id"] == group["project_id"]
    renamed = member.put(f"security-groups/{group['id']}", {"security_group": {"tenant_id": "someone-else"}})
    assert neutron_error(renamed, 400, "HTTPBadRequest") == "Cannot update read-only attribute tenant_id"
    ping = member.create("security-group-rules", "security_group_rule", security_group_id=group["id"],
                         direction="ingress", protocol="icmp", port_range_min=8, remote_group_id=group["id"])
    assert ping["remote_group_id"] == group["id"] and ping["port_range_max"] is None
    shown = member.get(f"security-groups/{group['id']}").json()["security_group"]
    assert {r["id"] for r in shown["security_group_rules"]} >= {ssh["id"], ping["id"]}
    again = member.post("security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 22,
        "port_range_max": 22, "remote_ip_prefix": "192.0.2.0/24"}})
    assert ssh["id"] in neutron_error(again, 409, "SecurityGroupRuleExists")
    bad = [
        ({"direction": "sideways"}, 400, "HTTPBadRequest", "direction"),
        ({"direction": "ingress", "port_range_min": 22}, 400, "SecurityGroupProtocolRequiredWithPorts", "protocol"),
        ({"direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 22}, 400,
         "SecurityGroupInvalidPortRange", "port_range_min"),
        ({"direction": "ingress", "protocol": "bogus"}, 400, "SecurityGroupRuleInvalidProtocol", "bogus"),
        ({"direction": "ingress", "remote_ip_prefix": "::/0"}, 400, "SecurityGroupRuleParameterConflict", "::/0"),
        ({"direction": "ingress", "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": group["id"]}, 400,
         "SecurityGroupRemoteGroupAndRemoteIpPrefix", "remote_group_id"),
        ({"direction": "ingress", "protocol": "icmp", "port_range_min": 300}, 400, "SecurityGroupInvalidIcmpValue",
         "300"),
        # Neutron's words, which Tempest's negative tests look for.
        ({"direction": "ingress", "protocol": "tcp", "port_range_min": -16, "port_range_max": 80}, 400,
         "SecurityGroupInvalidPortValue", "Invalid value for port -16"),
        ({"direction": "ingress", "protocol": "icmp", "port_range_min": -1, "port_range_max": 25}, 400,
         "SecurityGroupInvalidPortValue", "Invalid value for port -1"),
        ({"direction": "ingress", "protocol": "tcp", "port_range_max": 6}, 400, "SecurityGroupInvalidPortRange",
         "port_range_min must be <= port_range_max"),
        ({"direction": "ingress", "protocol": "tcp", "remote_group_id": "bad_group_id"}, 404,
         "SecurityGroupNotFound", "bad_group_id"),
        ({"direction": "ingress", "protocol": "tcp", "remote_group_id": str(uuid.uuid4())}, 404,
         "SecurityGroupNotFound", "Security group"),
    ]
    for attributes, status, kind, words in bad:
        response = member.post("security-group-rules", {"security_group_rule": {"security_group_id": group["id"],
                                                                                 **attributes}})
        assert words in neutron_error(response, status, kind), attributes
    others = admin.create("security-groups", "security_group", name=unique("admins"))
    neutron_error(member.post("security-group-rules", {"security_group_rule": {
        "security_group_id": others["id"], "direction": "ingress"}}), 404, "SecurityGroupNotFound")
    neutron_error(member.get(f"security-groups/{others['id']}"), 404, "SecurityGroupNotFound")
    port = member.port(member.network(), security_groups=[group["id"]])
    neutron_error(member.delete(f"security-groups/{group['id']}"), 409, "SecurityGroupInUse")
    assert member.put(f"ports/{port['id']}", {"port": {"security_groups": []}}).json()["port"]["security_groups"] == []
    assert member.delete(f"security-group-rules/{ssh['id']}").status_code == 204
    assert member.delete(f"security-groups/{group['id']}").status_code == 204


def test_quotas(fresh, admin, demo):
    member, project_id = fresh
    defaults = member.get(f"quotas/{project_id}").json()["quota"]
    assert defaults == {"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
                        "security_group": 10, "security_group_rule": 100}
    assert member.get(f"quotas/{project_id}/default").json()["quota"] == defaults
    neutron_error(member.put(f"quotas/{project_id}", {"quota": {"network": 1000}}), 403, "HTTPForbidden")
    neutron_error(demo.get(f"quotas/{project_id}"), 403, "HTTPForbidden")
    set_to = admin.put(f"quotas/{project_id}", {"quota": {"network": 3, "port": 4}}).json()["quota"]
    assert (set_to["network"], set_to["port"], set_to["router"]) == (3, 4, 10)
    assert project_id in {q["project_id"] for q in admin.get("quotas").json()["quotas"]}
    neutron_error(admin.put(f"quotas/{project_id}", {"quota": {"networks": 3}}), 400, "HTTPBadRequest")
    neutron_error(admin.put(f"quotas/{project_id}", {"quota": {"network": "many"}}), 400, "HTTPBadRequest")
    # Counted atomically: of eight concurrent creates, exactly three fit.
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: member.post("networks", {"network": {"name": unique("q")}}), range(8)))
    assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * 5
    message = neutron_error(next(r for r in responses if r.status_code == 409), 409, "OverQuota")
    assert message == "Quota exceeded for resources: ['network']."
    network = next(r for r in responses if r.status_code == 201).json()["network"]
    member.subnet(network, "10.90.0.0/24")
    for _ in range(4):
        member.port(network)
    neutron_error(member.post("ports", {"port": {"network_id": network["id"]}}), 409, "OverQuota")
    details = member.get(f"quotas/{project_id}/details").json()["quota"]
    assert details["network"] == {"limit": 3, "used": 3, "reserved": 0}
    assert details["port"] == {"limit": 4, "used": 4, "reserved": 0}
    # Ports too are counted atomically: of eight concurrent creates under a limit of six, two fit.
    assert admin.put(f"quotas/{project_id}", {"quota": {"port": 6}}).status_code == 200
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: member.post("ports", {"port": {"network_id": network["id"]}}), range(8)))
    assert sorted(r.status_code for r in responses) == [201] * 2 + [409] * 6
    assert len(member.get("ports", params={"network_id": network["id"]}).json()["ports"]) == 6
    below = admin.put(f"quotas/{project_id}", {"quota": {"network": 1, "check_limit": True}})
    assert "already used 3" in neutron_error(below, 400, "HTTPBadRequest")
    assert member.get(f"quotas/{project_id}").json()["quota"]["network"] == 3
    assert admin.delete(f"quotas/{project_id}").status_code == 204
    assert member.get(f"quotas/{project_id}").json()["quota"]["network"] == 100


@pytest.fixture
def external(admin):
    """An external network with a subnet: the outside world of routers and floating IPs."""
    network = admin.network(**{"router:external": True})
    subnet = admin.subnet(network, "172.31.0.0/24", enable_dhcp=False)
    yield network, subnet
    for floating_ip in admin.get("floatingips", params={"floating_network_id": network["id"]}).json()["floatingips"]:
        admin.delete(f"floatingips/{floating_ip['id']}")
    for router in admin.get("routers", params={"external_gateway_info:network_id": network["id"]}).json()["routers"]:
        admin.put(f"routers/{router['id']}", {"router": {"external_gateway_info": None}})


def test_routers_and_floating_ips(demo, admin, external):
    public, public_subnet = external
    assert public["id"] in {n["id"] for n in demo.get("networks", params={"router:external": "true"}).json()["networks"]}
    private = demo.network()
    subnet = demo.subnet(private, "10.91.0.0/24")
    router = demo.create("routers", "router", name=unique("r"), external_gateway_info={"network_id": public["id"]})
    gateway = router["external_gateway_info"]
    assert gateway["network_id"] == public["id"] and gateway["enable_snat"] is True
    assert gateway["external_fixed_ips"][0]["subnet_id"] == public_subnet["id"]
    leg = demo.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    assert leg.status_code == 200, leg.text
    assert leg.json()["subnet_id"] == subnet["id"]
    interface = demo.get(f"ports/{leg.json()['port_id']}").json()["port"]
    assert interface["device_owner"] == "network:router_interface" and interface["device_id"] == router["id"]
    assert interface["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.91.0.1"}]
    twice = demo.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    assert "already has a port on subnet" in neutron_error(twice, 400, "BadRequest")
    neutron_error(demo.delete(f"ports/{interface['id']}"), 409, "ServicePortInUse")
    neutron_error(demo.delete(f"routers/{router['id']}"), 409, "RouterInUse")
    routed = demo.put(f"routers/{router['id']}", {"router": {"routes": [
        {"destination": "10.200.0.0/16", "nexthop": "10.91.0.99"}]}})
    assert routed.json()["router"]["routes"] == [{"destination": "10.200.0.0/16", "nexthop": "10.91.0.99"}]
    unreachable = demo.put(f"routers/{router['id']}", {"router": {"routes": [
        {"destination": "10.200.0.0/16", "nexthop": "10.250.0.1"}]}})
    neutron_error(unreachable, 400, "InvalidRoutes")

    server_port = demo.port(private)
    floating_ip = demo.create("floatingips", "floatingip", floating_network_id=public["id"])
    assert floating_ip["floating_ip_address"].startswith("172.31.0.") and floating_ip["port_id"] is None
    associated = demo.put(f"floatingips/{floating_ip['id']}", {"floatingip": {"port_id": server_port["id"]}})
    assert associated.status_code == 200, associated.text
    body = associated.json()["floatingip"]
    assert (body["port_id"], body["fixed_ip_address"], body["router_id"]) == \
        (server_port["id"], server_port["fixed_ips"][0]["ip_address"], router["id"])
    neutron_error(demo.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]}), 409,
                  "RouterInterfaceInUseByFloatingIP")
    second = demo.post("floatingips", {"floatingip": {"floating_network_id": public["id"],
                                                      "port_id": server_port["id"]}})
    neutron_error(second, 409, "FloatingIPPortAlreadyAssociated")
    isolated = demo.network()
    demo.subnet(isolated, "10.92.0.0/24")
    lonely = demo.port(isolated)
    no_route = demo.put(f"floatingips/{floating_ip['id']}", {"floatingip": {"port_id": lonely["id"]}})
    neutron_error(no_route, 404, "ExternalGatewayForFloatingIPNotFound")
    assert demo.get(f"floatingips/{floating_ip['id']}").json()["floatingip"]["port_id"] == server_port["id"]
    neutron_error(demo.post("floatingips", {"floatingip": {"floating_network_id": private["id"]}}), 400, "BadRequest")
    neutron_error(admin.delete(f"networks/{public['id']}"), 409, "NetworkInUse")
    disassociated = demo.put(f"floatingips/{floating_ip['id']}", {"floatingip": {"port_id": None}}).json()
    assert disassociated["floatingip"]["port_id"] is None and disassociated["floatingip"]["router_id"] is None
    removed = demo.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]})
    assert removed.status_code == 200 and removed.json()["port_id"] == interface["id"]
    neutron_error(demo.get(f"ports/{interface['id']}"), 404, "PortNotFound")
    assert demo.delete(f"floatingips/{floating_ip['id']}").status_code == 204
    assert demo.delete(f"routers/{router['id']}").status_code == 204
    assert admin.get("ports", params={"network_id": public["id"]}).json()["ports"] == []


def test_router_interface_by_port_and_policy(demo, admin, external):
    private = demo.network()
    subnet = demo.subnet(private, "10.93.0.0/24")
    # Neutron takes an empty gateway object as no gateway (Tempest sends one).
    router = demo.create("routers", "router", name=unique("r"), external_gateway_info={})
    assert router["external_gateway_info"] is None
    port = demo.port(private, fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "10.93.0.254"}])
    leg = demo.put(f"routers/{router['id']}/add_router_interface", {"port_id": port["id"]})
    assert leg.status_code == 200 and leg.json()["port_id"] == port["id"]
    neutron_error(demo.put(f"routers/{router['id']}/add_router_interface", {}), 400, "HTTPBadRequest")
    denied = demo.put(f"routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": external[0]["id"], "enable_snat": False}}})
    assert "update_router:external_gateway_info:enable_snat" in neutron_error(denied, 403, "PolicyNotAuthorized")
    gateway = {"network_id": external[0]["id"]}
    assert demo.put(f"routers/{router['id']}", {"router": {"external_gateway_info": gateway}}).status_code == 200
    missing = demo.put(f"routers/{router['id']}", {"router": {"external_gateway_info": {"enable_snat": True}}})
    assert "external_gateway_info.network_id" in neutron_error(missing, 400, "HTTPBadRequest")
    # The CLI's `router unset --external-gateway` sends an empty object.
    cleared = demo.put(f"routers/{router['id']}", {"router": {"external_gateway_info": {}}})
    assert cleared.status_code == 200 and cleared.json()["router"]["external_gateway_info"] is None
    assert admin.get("ports", params={"device_id": router["id"], "device_owner": "network:router_gateway"}).json()[
        "ports"] == []
    theirs = admin.create("routers", "router", name=unique("admin"))
    neutron_error(demo.get(f"routers/{theirs['id']}"), 404, "RouterNotFound")
    neutron_error(demo.put(f"routers/{theirs['id']}/add_router_interface", {"subnet_id": subnet["id"]}), 404,
                  "RouterNotFound")
    assert demo.put(f"routers/{router['id']}/remove_router_interface", {"port_id": port["id"]}).status_code == 200
    neutron_error(demo.put(f"routers/{router['id']}/remove_router_interface", {"port_id": port["id"]}), 404,
                  "RouterInterfaceNotFound")


def test_availability_zones_and_ip_availability(admin, demo):
    zones = admin.get("availability_zones").json()["availability_zones"]
    assert {(z["name"], z["resource"], z["state"]) for z in zones} == {("nova", "network", "available"),
                                                                       ("nova", "router", "available")}
    network = admin.network()
    admin.subnet(network, "10.94.0.0/28")
    admin.port(network)
    admin.port(network)
    one = admin.get(f"network-ip-availabilities/{network['id']}").json()["network_ip_availability"]
    assert (one["total_ips"], one["used_ips"]) == (13, 2)
    assert one["subnet_ip_availability"][0]["cidr"] == "10.94.0.0/28"
    listed = admin.get("network-ip-availabilities", params={"network_id": network["id"]}).json()
    assert [a["network_id"] for a in listed["network_ip_availabilities"]] == [network["id"]]
    neutron_error(demo.get("network-ip-availabilities"), 403, "HTTPForbidden")
    neutron_error(admin.get(f"network-ip-availabilities/{uuid.uuid4()}"), 404, "NetworkNotFound")


def test_deleted_under_a_rule_or_a_floating_ip(demo, admin, external):
    """A group or port deleted while a rule or a floating IP is made for it:
    the one that goes second is told why (404/409), never a 500."""
    public, _ = external
    private = demo.network()
    subnet = demo.subnet(private, "10.95.0.0/24")
    router = demo.create("routers", "router", name=unique("r"), external_gateway_info={"network_id": public["id"]})
    demo.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    for round_ in range(4):
        group = demo.create("security-groups", "security_group", name=unique("race"))
        port = demo.port(private, port_security_enabled=False)

        def act(index):
            if index == 0:
                return demo.delete(f"security-groups/{group['id']}")
            if index == 1:
                return demo.delete(f"ports/{port['id']}")
            if index == 7:
                return demo.post("ports", {"port": {"network_id": private["id"], "security_groups": [group["id"]]}})
            if index % 2:
                return demo.post("floatingips", {"floatingip": {"floating_network_id": public["id"],
                                                                "port_id": port["id"]}})
            return demo.post("security-group-rules", {"security_group_rule": {
                "security_group_id": group["id"], "direction": "ingress", "protocol": "tcp",
                "port_range_min": 1000 + index, "port_range_max": 1000 + index}})

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(act, range(8)))
        assert all(r.status_code < 500 for r in responses), [r.text for r in responses if r.status_code >= 500]
        assert demo.get("floatingips", params={"port_id": port["id"]}).json()["floatingips"] == []
        if responses[0].status_code == 204:
            assert demo.get("security-group-rules", params={"security_group_id": group["id"]}).json()[
                "security_group_rules"] == []
        for floating_ip in demo.get("floatingips").json()["floatingips"]:
            demo.delete(f"floatingips/{floating_ip['id']}")
        if responses[7].status_code == 201:  # the port won: the group was kept for it
            assert responses[0].status_code == 409 and demo.get(f"security-groups/{group['id']}").status_code == 200
            demo.delete(f"ports/{responses[7].json()['port']['id']}")
    demo.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]})


def test_router_gateway_network_and_routes_as_neutron(demo, admin):
    router = demo.create("routers", "router", name=unique("r"))
    missing, theirs, private = str(uuid.uuid4()), admin.network(), demo.network()
    for network_id in (missing, theirs["id"]):
        unknown = demo.put(f"routers/{router['id']}", {"router": {"external_gateway_info": {"network_id": network_id}}})
        assert network_id in neutron_error(unknown, 404, "NetworkNotFound")
        unknown = demo.post("floatingips", {"floatingip": {"floating_network_id": network_id}})
        assert network_id in neutron_error(unknown, 404, "NetworkNotFound")
    internal = demo.put(f"routers/{router['id']}", {"router": {"external_gateway_info": {"network_id": private["id"]}}})
    assert "not a valid external network" in neutron_error(internal, 400, "BadRequest")

    subnet = demo.subnet(private, "10.94.0.0/24")
    assert demo.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]}).status_code == 200
    route = {"destination": "10.201.0.0/16", "nexthop": "10.94.0.99"}
    assert demo.put(f"routers/{router['id']}", {"router": {"routes": [route]}}).json()["router"]["routes"] == [route]
    # Neutron takes null as no routes (Tempest clears them so).
    cleared = demo.put(f"routers/{router['id']}", {"router": {"routes": None}})
    assert cleared.status_code == 200, cleared.text
    assert demo.get(f"routers/{router['id']}").json()["router"]["routes"] == []
    # A null route inside the list is no route: 400 naming the field, nothing changed.
    for body in ({"routes": [None]}, {"routes": [route, None]}):
        refused = demo.put(f"routers/{router['id']}", {"router": body})
        assert refused.status_code == 400 and "routes" in refused.text, refused.text
    assert demo.get(f"routers/{router['id']}").json()["router"]["routes"] == []
    assert demo.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]}).status_code == 200


def test_subnets_of_external_networks_say_so(demo, external):
    """subnet-external-network: every project sees an external network's
    subnets, marked `router:external`, and can filter on it."""
    assert "subnet-external-network" in {e["alias"] for e in demo.get("extensions").json()["extensions"]}
    public, public_subnet = external
    private = demo.subnet(demo.network(), "10.95.0.0/24")
    assert private["router:external"] is False
    shown = demo.get(f"subnets/{public_subnet['id']}").json()["subnet"]
    assert shown["router:external"] is True and shown["network_id"] == public["id"]
    outside = {s["id"] for s in demo.get("subnets", params={"router:external": "true"}).json()["subnets"]}
    inside = {s["id"] for s in demo.get("subnets", params={"router:external": "false"}).json()["subnets"]}
    assert public_subnet["id"] in outside and private["id"] not in outside
    assert private["id"] in inside and public_subnet["id"] not in inside
    refused = demo.post("subnets", {"subnet": {"network_id": private["network_id"], "cidr": "10.96.0.0/24",
                                               "ip_version": 4, "router:external": True}})
    assert "router:external" in neutron_error(refused, 400, "HTTPBadRequest")


def test_service_providers_with_the_cli(cloud, demo):
    """service-type: the CLI lists the router provider there is."""
    listed = cloud.openstack("network", "service", "provider", "list", "-f", "json", cloud="stratus-demo")
    assert [(p["Service Type"], p["Name"], p["Default"]) for p in listed] == [("L3_ROUTER_NAT", "stratus", True)]
    assert demo.get("service-providers", params={"service_type": "FIREWALL"}).json() == {"service_providers": []}
