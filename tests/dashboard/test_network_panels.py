"""The dashboard's network panels through Django's test client against
the live API: a network's page with its subnets and ports, subnets made
and deleted, routers' interfaces and gateways, floating IPs, security
groups and their rules, and the topology document. Each refusal of the
API is shown in place in its words; another project's resource by URL is
the 404 page."""
import uuid

import pytest

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
