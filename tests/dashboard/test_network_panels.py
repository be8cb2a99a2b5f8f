"""The dashboard's network panels through Django's test client against
the live API: a network's page with its subnets and ports, subnets made
and deleted, routers' interfaces and gateways, floating IPs, security
groups and their rules, and the topology document. Each refusal of the
API is shown in place in its words; another project's resource by URL is
the 404 page."""
import uuid
from html import unescape

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from compute.models import Instance, VmState
from tests.network import conftest as neutron
from tests.network.conftest import unique

pytestmark = pytest.mark.live

# The Networking tests' callers: tokens of the admin and demo projects.
tokens, admin, demo = neutron.tokens, neutron.admin, neutron.demo


def messages_of(page):
    return [str(message) for message in page.context["messages"]]


def follow(client, path, data=None):
    """POSTs the form and opens where it leads (the page that says what happened)."""
    response = client.post(path, data or {}, follow=True)
    assert response.status_code == 200, response.content.decode()[:2000]
    return response


@pytest.fixture
def external(admin):
    """An external network with a subnet: where gateways and floating IPs come from."""
    network = admin.network(**{"router:external": True})
    admin.subnet(network, "198.51.100.0/24", enable_dhcp=False)
    yield network
    for floating_ip in admin.get("floatingips", params={"floating_network_id": network["id"]}).json()["floatingips"]:
        admin.delete(f"floatingips/{floating_ip['id']}")
    for router in admin.get("routers", params={"external_gateway_info:network_id": network["id"]}).json()["routers"]:
        admin.put(f"routers/{router['id']}", {"router": {"external_gateway_info": None}})
    assert admin.delete(f"networks/{network['id']}").status_code == 204


def test_a_network_page_lists_its_subnets_and_ports_and_makes_and_deletes_subnets(login, demo, admin):
    client = login("demo")
    name = unique("dash-net")
    made = client.post("/dashboard/networks/", {"name": name})
    assert made.status_code == 302
    path = made["Location"]
    network_id = path.rstrip("/").rsplit("/", 1)[-1]
    page = client.get(path)
    assert page.status_code == 200 and f"Network {name}" in page.content.decode()
    assert b"No subnets yet" in page.content

    form = {"name": f"{name}-a", "cidr": "10.81.0.0/24", "gateway_ip": "10.81.0.254",
            "allocation_pools": "10.81.0.10-10.81.0.20\n10.81.0.30-10.81.0.40",
            "dns_nameservers": "192.0.2.53, 192.0.2.54"}  # DHCP left off
    page = follow(client, path, form)
    html = page.content.decode()
    assert f"Created subnet {name}-a." in messages_of(page)
    subnet = demo.get("subnets", params={"network_id": network_id}).json()["subnets"][0]
    assert subnet["gateway_ip"] == "10.81.0.254" and subnet["enable_dhcp"] is False
    assert subnet["allocation_pools"] == [{"start": "10.81.0.10", "end": "10.81.0.20"},
                                          {"start": "10.81.0.30", "end": "10.81.0.40"}]
    assert subnet["dns_nameservers"] == ["192.0.2.53", "192.0.2.54"]
    row = html[html.index(f'id="subnet-{subnet["id"]}"'):].split("</tr>")[0]
    for shown in ("10.81.0.0/24", "10.81.0.254", "off", "10.81.0.10 – 10.81.0.20", "192.0.2.53, 192.0.2.54"):
        assert shown in row, (shown, row)

    # No gateway, DHCP on.
    page = follow(client, path, {"name": f"{name}-b", "cidr": "10.82.0.0/24", "no_gateway": "on",
                                 "enable_dhcp": "on"})
    second = next(s for s in demo.get("subnets", params={"network_id": network_id}).json()["subnets"]
                  if s["name"] == f"{name}-b")
    assert second["gateway_ip"] is None and second["enable_dhcp"] is True

    # A port on the network is listed with its address.
    port = demo.port({"id": network_id}, fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "10.81.0.15"}])
    page = client.get(path).content.decode()
    assert f'id="port-{port["id"]}"' in page and f"10.81.0.15 ({name}-a)" in page

    # Bad input: the API's message in place, naming the field, the form kept.
    bad = client.post(path, {"name": f"{name}-c", "cidr": "10.83.0.0/24",
                             "allocation_pools": "10.99.0.10-10.99.0.20"})
    assert bad.status_code == 400
    html = bad.content.decode()
    error = html[html.index('id="subnet-error"'):].split("</p>")[0]
    assert "allocation" in error.lower() or "pool" in error.lower(), error
    assert 'value="10.83.0.0/24"' in html
    bad = client.post(path, {"name": f"{name}-c", "cidr": "10.83.0.0/33"})
    assert bad.status_code == 400 and "cidr" in bad.content.decode()
    assert len(demo.get("subnets", params={"network_id": network_id}).json()["subnets"]) == 2

    # A subnet with a port in use: the refusal is said on the network's page.
    page = follow(client, f"/dashboard/subnets/{subnet['id']}/delete/")
    assert any("in use" in message.lower() or "port" in message.lower() for message in messages_of(page)), \
        messages_of(page)
    assert demo.get(f"subnets/{subnet['id']}").status_code == 200
    assert demo.delete(f"ports/{port['id']}").status_code == 204
    page = follow(client, f"/dashboard/subnets/{subnet['id']}/delete/")
    assert f'id="subnet-{subnet["id"]}"' not in page.content.decode()
    assert demo.get(f"subnets/{subnet['id']}").status_code == 404

    # Another project's network and subnet: the 404 page, and nothing done.
    others = admin.network(name=unique("admins-net"))
    others_subnet = admin.subnet(others, "10.84.0.0/24")
    try:
        for url in (f"/dashboard/networks/{others['id']}/", f"/dashboard/networks/{uuid.uuid4()}/"):
            page = client.get(url)
            assert page.status_code == 404 and b"Not found (404)" in page.content
        assert client.post(f"/dashboard/networks/{others['id']}/", {"cidr": "10.85.0.0/24"}).status_code == 404
        assert client.post(f"/dashboard/networks/{others['id']}/delete/").status_code == 404
        assert client.post(f"/dashboard/subnets/{others_subnet['id']}/delete/").status_code == 404
        assert admin.get(f"subnets/{others_subnet['id']}").status_code == 200
    finally:
        assert admin.delete(f"networks/{others['id']}").status_code == 204

    # The network's deletion (confirmed in the browser) takes its subnets.
    page = client.get(path).content.decode()
    assert 'data-confirm="Delete network' in page
    page = follow(client, f"/dashboard/networks/{network_id}/delete/")
    assert page.request["PATH_INFO"] == "/dashboard/networks/" and f"Deleted network {name}." in messages_of(page)
    assert demo.get(f"networks/{network_id}").status_code == 404
    assert client.get(path).status_code == 404


def private_network(demo, cidr):
    network = demo.network(name=unique("dash-private"))
    return network, demo.subnet(network, cidr)


def test_a_router_page_adds_and_removes_interfaces_sets_and_clears_the_gateway_and_deletes(
        login, demo, admin, external):
    client = login("demo")
    network, subnet = private_network(demo, "10.86.0.0/24")
    name = unique("dash-router")
    router = demo.create("routers", "router", name=name)
    path = f"/dashboard/routers/{router['id']}/"
    try:
        page = client.get(path)
        assert page.status_code == 200 and b"No interfaces yet" in page.content
        assert subnet["id"] in [choice["id"] for choice in page.context["subnets"]]
        assert external["id"] not in [choice["network_id"] for choice in page.context["subnets"]]

        page = follow(client, path, {"action": "add_interface", "subnet_id": subnet["id"]})
        html = page.content.decode()
        assert "Added the interface." in messages_of(page)
        row = html[html.index(f'id="interface-{subnet["id"]}"'):].split("</tr>")[0]
        assert network["name"] in row and "10.86.0.1" in row
        # The same subnet twice: Neutron's refusal, in place.
        bad = client.post(path, {"action": "add_interface", "subnet_id": subnet["id"]})
        assert bad.status_code == 400 and 'id="router-error"' in bad.content.decode()

        page = follow(client, path, {"action": "set_gateway", "network_id": external["id"]})
        assert "Set the external gateway." in messages_of(page)
        gateway = page.content.decode().split('id="router-gateway">')[1].split("</dd>")[0]
        assert external["name"] in gateway and "198.51.100." in gateway
        assert demo.get(f"routers/{router['id']}").json()["router"]["external_gateway_info"]["network_id"] == \
            external["id"]
        # A network that is not external: the message names it.
        bad = client.post(path, {"action": "set_gateway", "network_id": network["id"]})
        assert bad.status_code == 400 and "is not a valid external network" in bad.content.decode()

        # A router with an interface cannot go: said on its page.
        page = follow(client, f"/dashboard/routers/{router['id']}/delete/")
        assert any("still has ports" in message for message in messages_of(page)), messages_of(page)
        assert 'data-confirm="Remove the interface' in page.content.decode()
        page = follow(client, path, {"action": "remove_interface", "subnet_id": subnet["id"]})
        assert "Removed the interface." in messages_of(page) and b"No interfaces yet" in page.content
        assert 'data-confirm="Clear the external gateway' in page.content.decode()
        page = follow(client, path, {"action": "clear_gateway"})
        assert "Cleared the external gateway." in messages_of(page) and b'id="gateway-clear"' not in page.content
        assert demo.get(f"routers/{router['id']}").json()["router"]["external_gateway_info"] is None

        # Another project's router: the 404 page for reading and for every action.
        others = admin.create("routers", "router", name=unique("admins-router"))
        try:
            assert client.get(f"/dashboard/routers/{others['id']}/").status_code == 404
            assert client.post(f"/dashboard/routers/{others['id']}/", {"action": "add_interface",
                                                                       "subnet_id": subnet["id"]}).status_code == 404
            assert client.post(f"/dashboard/routers/{others['id']}/delete/").status_code == 404
            assert admin.get(f"routers/{others['id']}").status_code == 200
        finally:
            admin.delete(f"routers/{others['id']}")

        page = follow(client, f"/dashboard/routers/{router['id']}/delete/")
        assert page.request["PATH_INFO"] == "/dashboard/routers/" and f"Deleted router {name}." in messages_of(page)
        assert demo.get(f"routers/{router['id']}").status_code == 404
    finally:
        demo.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]})
        demo.delete(f"routers/{router['id']}")
        demo.delete(f"networks/{network['id']}")


def routed_server(demo, project, external, cidr):
    """A network routed to `external` and a server on it: (network, subnet,
    router, server, its port). The server is a row (nothing boots): its
    port is what the pages show."""
    network, subnet = private_network(demo, cidr)
    router = demo.create("routers", "router", name=unique("dash-router"),
                         external_gateway_info={"network_id": external["id"]})
    demo.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    server = Instance.objects.create(name=unique("dash-server"), project_id=project, user_id="u",
                                     flavor_id_at_boot="42", flavor_name="m1.nano", vcpus=1, memory_mb=128,
                                     root_gb=1, vm_state=VmState.ACTIVE)
    port = demo.port(network, device_id=str(server.pk), device_owner="compute:nova")
    return network, subnet, router, server, port


def remove_routed_server(demo, network, subnet, router, server, port):
    demo.delete(f"ports/{port['id']}")
    server.delete()
    demo.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]})
    demo.put(f"routers/{router['id']}", {"router": {"external_gateway_info": None}})
    demo.delete(f"routers/{router['id']}")
    demo.delete(f"networks/{network['id']}")


def test_floating_ips_are_allocated_associated_with_a_servers_port_disassociated_and_released(
        login, demo, admin, external):
    client = login("demo")
    project = client.session["dashboard.account"]["project"]["id"]
    made = routed_server(demo, project, external, "10.87.0.0/24")
    network, subnet, router, server, port = made
    try:
        page = client.get("/dashboard/floating-ips/")
        assert page.status_code == 200
        assert external["id"] in [choice["id"] for choice in page.context["external_networks"]]
        page = follow(client, "/dashboard/floating-ips/", {"floating_network_id": external["id"]})
        assert "Allocated a floating IP." in messages_of(page)
        floating_ip = next(row for row in page.context["floating_ips"] if row["floating_network_id"] == external["id"])
        assert floating_ip["floating_ip_address"].startswith("198.51.100.")
        html = page.content.decode()
        row = html[html.index(f'id="fip-{floating_ip["id"]}"'):].split("</tr>")[0]
        address = port["fixed_ips"][0]["ip_address"]
        assert f"{server.name} ({address})" in row  # the server's port is offered by its server's name
        # From a network that is not external: the API's message in place.
        bad = client.post("/dashboard/floating-ips/", {"floating_network_id": network["id"]})
        assert bad.status_code == 400 and "is not a valid external network" in bad.content.decode()

        action = f"/dashboard/floating-ips/{floating_ip['id']}/"
        page = follow(client, action, {"action": "associate", "port_id": port["id"]})
        assert "Associated the floating IP." in messages_of(page)
        body = demo.get(f"floatingips/{floating_ip['id']}").json()["floatingip"]
        assert body["port_id"] == port["id"] and body["fixed_ip_address"] == address
        html = page.content.decode()
        row = html[html.index(f'id="fip-{floating_ip["id"]}"'):].split("</tr>")[0]
        assert f"{server.name} ({address})" in row.split('class="association">')[1].split("</td>")[0]
        # A port that is not there: the refusal said on the page, nothing changed.
        page = follow(client, action, {"action": "associate", "port_id": str(uuid.uuid4())})
        assert any("could not be found" in message for message in messages_of(page)), messages_of(page)
        assert demo.get(f"floatingips/{floating_ip['id']}").json()["floatingip"]["port_id"] == port["id"]

        page = follow(client, action, {"action": "disassociate"})
        assert "Disassociated the floating IP." in messages_of(page)
        assert demo.get(f"floatingips/{floating_ip['id']}").json()["floatingip"]["port_id"] is None

        # Another project's floating IP: the 404 page, whatever the action.
        others = admin.create("floatingips", "floatingip", floating_network_id=external["id"])
        for data in ({"action": "release"}, {"action": "associate", "port_id": port["id"]}, {"action": "x"}):
            assert client.post(f"/dashboard/floating-ips/{others['id']}/", data).status_code == 404
        assert admin.get(f"floatingips/{others['id']}").status_code == 200

        assert f'data-confirm="Release {floating_ip["floating_ip_address"]}?"' in page.content.decode()
        page = follow(client, action, {"action": "release"})
        assert "Released the floating IP." in messages_of(page)
        assert demo.get(f"floatingips/{floating_ip['id']}").status_code == 404
        assert b"No floating IPs yet" in page.content
    finally:
        remove_routed_server(demo, *made)


def test_security_groups_are_made_and_deleted_with_their_rules(login, demo, admin):
    client = login("demo")
    page = client.get("/dashboard/security-groups/")
    assert page.status_code == 200 and "default" in [group["name"] for group in page.context["groups"]]
    name = unique("dash-sg")
    made = client.post("/dashboard/security-groups/", {"name": name, "description": "web servers"})
    assert made.status_code == 302
    path = made["Location"]
    group_id = path.rstrip("/").rsplit("/", 1)[-1]
    page = client.get(path)
    html = page.content.decode()
    assert f"Security group {name}" in html and "web servers" in html
    assert [(rule["direction"], rule["ethertype"]) for rule in page.context["rules"]] == \
        [("egress", "IPv4"), ("egress", "IPv6")]
    # "default" is refused as a name: the API's message in place.
    bad = client.post("/dashboard/security-groups/", {"name": "default"})
    assert bad.status_code == 400 and "Default security group already exists." in bad.content.decode()
    try:
        page = follow(client, path, {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                                     "port_range_min": "8000", "port_range_max": "8080", "remote": "cidr",
                                     "remote_ip_prefix": "192.0.2.0/24"})
        assert "Added the rule." in messages_of(page)
        default = next(group for group in demo.get("security-groups").json()["security_groups"]
                       if group["name"] == "default")
        page = follow(client, path, {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp",
                                     "remote": "group", "remote_group_id": default["id"],
                                     "remote_ip_prefix": "ignored when the remote is a group"})
        rules = {(rule["protocol_label"], rule["ports"], rule["remote"]) for rule in page.context["rules"]}
        assert ("tcp", "8000–8080", "192.0.2.0/24") in rules and ("icmp", "any", "group default") in rules
        rules = demo.get("security-group-rules", params={"security_group_id": group_id}).json()["security_group_rules"]
        tcp = next(rule for rule in rules if rule["protocol"] == "tcp")
        assert (tcp["port_range_min"], tcp["port_range_max"], tcp["remote_ip_prefix"]) == (8000, 8080, "192.0.2.0/24")
        assert next(rule for rule in rules if rule["protocol"] == "icmp")["remote_group_id"] == default["id"]

        # Bad rules: each refusal in Neutron's words, in place, nothing added.
        for form, said in (
                ({"protocol": "tcp", "port_range_min": "90", "port_range_max": "80"}, "port_range_min must be <="),
                ({"protocol": "", "port_range_min": "22"}, "Must also specify protocol if port range is given."),
                ({"protocol": "tcp", "port_range_min": "ssh"}, "port_range_min"),
                ({"ethertype": "IPv6", "remote_ip_prefix": "192.0.2.0/24"}, "Conflicting value ethertype IPv6"),
                ({"protocol": "tcp", "port_range_min": "8000", "port_range_max": "8080",
                  "remote_ip_prefix": "192.0.2.0/24"}, "Security group rule already exists.")):
            bad = client.post(path, {"direction": "ingress", "ethertype": "IPv4", "remote": "cidr", **form})
            html = bad.content.decode()
            assert bad.status_code in (400, 409) and 'id="rule-error"' in html, (form, bad.status_code)
            assert said in unescape(html.split('id="rule-error">')[1].split("</p>")[0]), (form, said)
        assert len(demo.get("security-group-rules", params={"security_group_id": group_id})
                   .json()["security_group_rules"]) == 4

        # Deleting a rule (confirmed first) and the group.
        page = client.get(path).content.decode()
        assert 'data-confirm="Delete this ingress tcp rule?"' in page
        page = follow(client, f"/dashboard/security-group-rules/{tcp['id']}/delete/")
        assert "Deleted the rule." in messages_of(page) and f'id="rule-{tcp["id"]}"' not in page.content.decode()

        # Another project's group and rule: the 404 page, nothing done.
        others = admin.create("security-groups", "security_group", name=unique("admins-sg"))
        try:
            others_rule = others["security_group_rules"][0]
            assert client.get(f"/dashboard/security-groups/{others['id']}/").status_code == 404
            assert client.post(f"/dashboard/security-groups/{others['id']}/",
                               {"direction": "ingress", "protocol": "tcp"}).status_code == 404
            assert client.post(f"/dashboard/security-groups/{others['id']}/delete/").status_code == 404
            assert client.post(f"/dashboard/security-group-rules/{others_rule['id']}/delete/").status_code == 404
            assert len(admin.get(f"security-groups/{others['id']}").json()["security_group"]
                       ["security_group_rules"]) == len(others["security_group_rules"])
        finally:
            admin.delete(f"security-groups/{others['id']}")

        assert 'data-confirm="Delete security group' in client.get(path).content.decode()
        page = follow(client, f"/dashboard/security-groups/{group_id}/delete/")
        assert page.request["PATH_INFO"] == "/dashboard/security-groups/"
        assert f"Deleted security group {name}." in messages_of(page)
        assert demo.get(f"security-groups/{group_id}").status_code == 404
    finally:
        demo.delete(f"security-groups/{group_id}")


def test_the_topology_document_links_the_projects_networks_routers_and_servers_in_flat_queries(
        login, demo, admin, external):
    client = login("demo")
    project = client.session["dashboard.account"]["project"]["id"]
    made = []

    def add(count, cidr_base):
        made.extend(routed_server(demo, project, external, f"10.{cidr_base + index}.0.0/24")
                    for index in range(count))

    def document():
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/dashboard/topology/data/")
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        return len(captured), response.json()

    others = admin.network(name=unique("admins-net"))
    try:
        add(1, 120)
        document()
        few, data = document()
        network, subnet, router, server, port = made[0]
        drawn = {entry["id"]: entry for entry in data["networks"]}
        assert drawn[network["id"]]["subnets"] == [{"id": subnet["id"], "name": subnet["name"],
                                                    "cidr": "10.120.0.0/24"}]
        assert drawn[external["id"]]["external"] is True
        assert others["id"] not in drawn  # another project's own network is not drawn
        routers = {entry["id"]: entry for entry in data["routers"]}
        assert [leg["network_id"] for leg in routers[router["id"]]["ports"]] == [network["id"]]
        assert routers[router["id"]]["ports"][0]["addresses"] == ["10.120.0.1"]
        assert routers[router["id"]]["gateway"]["network_id"] == external["id"]
        servers = {entry["id"]: entry for entry in data["servers"]}
        assert servers[str(server.pk)]["ports"] == [{"id": port["id"], "network_id": network["id"],
                                                     "addresses": [port["fixed_ips"][0]["ip_address"]]}]

        add(4, 121)
        many, data = document()
        assert {network["id"] for network, *_ in made} <= {entry["id"] for entry in data["networks"]}
        assert len(data["servers"]) >= 5 and len(data["routers"]) >= 5
        assert few > 0 and many == few, (few, many)

        page = client.get("/dashboard/topology/")
        assert page.status_code == 200 and b'id="topology-svg"' in page.content and b"topology.js" in page.content
        assert client.get("/dashboard/static/topology.js").status_code == 200
    finally:
        admin.delete(f"networks/{others['id']}")
        for routed in made:
            remove_routed_server(demo, *routed)


def test_the_network_panels_send_a_logged_out_browser_to_the_login_page(cloud, live_db):
    for path in ("/dashboard/networks/", f"/dashboard/networks/{uuid.uuid4()}/", f"/dashboard/routers/{uuid.uuid4()}/",
                 "/dashboard/floating-ips/", "/dashboard/security-groups/", "/dashboard/topology/",
                 "/dashboard/topology/data/"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/dashboard/login/?next="), path


GARBAGE_IDS = ("x", "0", "%20", "..", "null", "9" * 40, "\u00e9t\u00e9")
PANEL_FORMS = [
    ("/dashboard/networks/", {"name": "x" * 300, "cidr": "garbage"}),
    ("/dashboard/routers/", {"router_id": "x", "subnet_id": "y"}),
    ("/dashboard/routers/", {"name": "r", "external_network": "not-an-id"}),
    ("/dashboard/floating-ips/", {"floating_network_id": "x"}),
    ("/dashboard/security-groups/", {"name": "x" * 300}),
]


def test_garbage_ids_and_forms_on_the_network_panels_are_never_a_5xx(login, demo):
    client = login("demo")
    network = demo.network(name=unique("dash-garbage"))
    group = demo.create("security-groups", "security_group", name=unique("dash-garbage"))
    try:
        for garbage in GARBAGE_IDS:
            for path in ("networks/{}/", "routers/{}/", "security-groups/{}/"):
                assert client.get(f"/dashboard/{path.format(garbage)}").status_code == 404, (path, garbage)
            for path in ("networks/{}/delete/", "subnets/{}/delete/", "routers/{}/delete/", "floating-ips/{}/",
                         "security-groups/{}/delete/", "security-group-rules/{}/delete/"):
                assert client.post(f"/dashboard/{path.format(garbage)}", {"action": "release"}).status_code == 404
        for path, form in PANEL_FORMS:
            response = client.post(path, form)
            assert response.status_code == 400 and b'role="alert"' in response.content, (path, form)
        bad_subnet = {"cidr": "10.88.0.0/24", "gateway_ip": "garbage", "allocation_pools": "a-b\n-\n",
                      "dns_nameservers": "x y z"}
        response = client.post(f"/dashboard/networks/{network['id']}/", bad_subnet)
        assert response.status_code == 400 and b'id="subnet-error"' in response.content
        for rule in ({"direction": "sideways"}, {"direction": "ingress", "ethertype": "IPv5"},
                     {"direction": "ingress", "protocol": "x" * 40},
                     {"direction": "ingress", "protocol": "tcp", "port_range_min": "-1"},
                     {"direction": "ingress", "protocol": "tcp", "port_range_min": "99999999999999999999999"},
                     {"direction": "ingress", "remote": "group", "remote_group_id": "x"},
                     {"direction": "ingress", "remote_ip_prefix": "300.0.0.0/8"}):
            response = client.post(f"/dashboard/security-groups/{group['id']}/", rule)
            assert response.status_code in (400, 404, 409) and b'id="rule-error"' in response.content, rule
        for path in ("networks", "routers", "floating-ips", "security-groups"):
            for query in ({"limit": "x"}, {"limit": "-5"}, {"marker": "x"}, {"marker": str(uuid.uuid4())}):
                assert client.get(f"/dashboard/{path}/", query).status_code < 500, (path, query)
    finally:
        demo.delete(f"security-groups/{group['id']}")
        demo.delete(f"networks/{network['id']}")


def test_the_network_panels_lists_page_on_the_server_in_flat_queries(login, demo):
    client = login("demo")
    networks = [demo.network(name=unique("dash-page")) for _ in range(3)]
    groups = [demo.create("security-groups", "security_group", name=unique("dash-page")) for _ in range(2)]

    def rows(path, **query):
        with CaptureQueriesContext(connection) as captured:
            page = client.get(path, query)
        assert page.status_code == 200
        return page, len(captured)

    try:
        for path, row, listed in (("/dashboard/networks/", 'id="network-', "networks"),
                                  ("/dashboard/security-groups/", 'id="group-', "groups")):
            page, few = rows(path, limit=2)
            assert page.content.decode().count(f"<tr {row}") == 2 and b'id="next-page"' in page.content
            seen = {entry["id"] for entry in page.context[listed]}
            page, _ = rows(path + page.context["next_page"])
            later = {entry["id"] for entry in page.context[listed]}
            assert later and not later & seen and b"First page" in page.content
            _, many = rows(path, limit=1000)
            assert few == many, (path, few, many)
    finally:
        for group in groups:
            demo.delete(f"security-groups/{group['id']}")
        for network in networks:
            demo.delete(f"networks/{network['id']}")
