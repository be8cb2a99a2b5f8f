"""Networking v2.0 on the wire: discovery, Neutron's errors, policy,
networks, subnets and ports with Neutron's filters, fields, sorting,
paging and tags, against the live server."""
import uuid

import pytest
import requests
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from network.agent import resources
from network.models import Network, Port
from tests.network.conftest import neutron_error, unique

pytestmark = pytest.mark.live


def test_version_discovery(api):
    for path in ("/network", "/network/"):
        versions = api.get(path).json()["versions"]
        assert [(v["id"], v["status"]) for v in versions] == [("v2.0", "CURRENT")]
        assert versions[0]["links"][0]["href"].endswith("/network/v2.0/")
    collections = {r["collection"] for r in api.get("/network/v2.0/").json()["resources"]}
    assert {"networks", "subnets", "ports", "security-groups", "routers", "floatingips", "quotas"} <= collections


def test_extensions_list_what_is_implemented(admin):
    aliases = {extension["alias"] for extension in admin.get("extensions").json()["extensions"]}
    assert {"external-net", "provider", "net-mtu", "port-security", "binding", "allowed-address-pairs",
            "standard-attr-tag", "pagination", "sorting", "project-id", "security-group", "router", "extraroute",
            "ext-gw-mode", "quotas", "quota_details", "network-ip-availability", "availability_zone", "agent",
            "auto-allocated-topology"} <= aliases
    # Not built: clients must not be told they are there.
    assert not {"dvr", "l3-ha", "dns-integration", "qos", "trunk"} & aliases
    assert admin.get("extensions/provider").json()["extension"]["alias"] == "provider"
    neutron_error(admin.get("extensions/no-such"), 404, "ExtensionNotFound")


def test_errors_are_neutron_errors(api, admin):
    missing = str(uuid.uuid4())
    message = neutron_error(admin.get(f"networks/{missing}"), 404, "NetworkNotFound")
    assert message == f"Network {missing} could not be found."
    neutron_error(admin.get("ports/not-a-uuid"), 404, "PortNotFound")
    neutron_error(api.get("/network/v2.0/networks"), 401, "HTTPUnauthorized")
    message = neutron_error(admin.post("networks", {"network": {"name": "x", "colour": "red"}}), 400,
                            "HTTPBadRequest")
    assert "colour" in message
    message = neutron_error(admin.post("networks", {"network": {"mtu": "big"}}), 400, "HTTPBadRequest")
    assert "mtu" in message


def test_another_projects_network_is_not_found(admin, demo):
    private = admin.network()
    neutron_error(demo.get(f"networks/{private['id']}"), 404, "NetworkNotFound")
    assert private["id"] not in {n["id"] for n in demo.get("networks").json()["networks"]}
    neutron_error(demo.delete(f"networks/{private['id']}"), 404, "NetworkNotFound")
    neutron_error(demo.post("ports", {"port": {"network_id": private["id"]}}), 404, "NetworkNotFound")
    assert admin.get(f"networks/{private['id']}").status_code == 200
    port = admin.port(private)
    neutron_error(demo.get(f"ports/{port['id']}"), 404, "PortNotFound")


def test_shared_network_is_visible_and_usable_by_all(admin, demo):
    shared = admin.network(shared=True)
    admin.subnet(shared, "10.77.0.0/24")
    seen = demo.get(f"networks/{shared['id']}").json()["network"]
    assert seen["shared"] is True and len(seen["subnets"]) == 1
    assert "provider:network_type" not in seen  # provider attributes are the admin's
    port = demo.port(shared)
    assert port["project_id"] != shared["project_id"] and port["fixed_ips"][0]["ip_address"].startswith("10.77.0.")
    neutron_error(demo.put(f"networks/{shared['id']}", {"network": {"name": "mine"}}), 403, "PolicyNotAuthorized")
    assert admin.get(f"networks/{shared['id']}").json()["network"]["name"] == shared["name"]


@pytest.mark.parametrize("attribute, value", [("provider:network_type", "vxlan"), ("provider:segmentation_id", 5),
                                              ("router:external", True), ("shared", True)])
def test_only_admins_set_provider_and_external_attributes(demo, attribute, value):
    name = unique("denied")
    message = neutron_error(demo.post("networks", {"network": {"name": name, attribute: value}}), 403,
                            "PolicyNotAuthorized")
    assert attribute in message
    assert demo.get(f"networks?name={name}").json()["networks"] == []


def test_provider_attributes(admin):
    vxlan = admin.network()
    assert vxlan["provider:network_type"] == "vxlan" and vxlan["provider:physical_network"] is None
    assert vxlan["provider:segmentation_id"] >= 1 and vxlan["mtu"] == 1450
    chosen = admin.network(**{"provider:network_type": "vxlan", "provider:segmentation_id": 4000})
    assert chosen["provider:segmentation_id"] == 4000
    taken = admin.post("networks", {"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 4000}})
    neutron_error(taken, 409, "SegmentationIdInUse")
    flat = admin.network(**{"provider:network_type": "flat", "provider:physical_network": "public",
                            "router:external": True})
    assert flat["provider:segmentation_id"] is None and flat["mtu"] == 1500 and flat["router:external"] is True
    again = admin.post("networks", {"network": {"provider:network_type": "flat",
                                                "provider:physical_network": "public"}})
    neutron_error(again, 409, "FlatNetworkInUse")
    unknown = admin.post("networks", {"network": {"provider:network_type": "flat",
                                                  "provider:physical_network": "nowhere"}})
    assert "nowhere" in neutron_error(unknown, 400, "InvalidInput")
    neutron_error(admin.post("networks", {"network": {"mtu": 9000}}), 400, "InvalidInput")
    zoned = admin.network(availability_zone_hints=["nova"])
    assert zoned["availability_zone_hints"] == ["nova"] and zoned["availability_zones"] == ["nova"]
    elsewhere = admin.post("networks", {"network": {"availability_zone_hints": ["mars"]}})
    assert neutron_error(elsewhere, 404, "AvailabilityZoneNotFound") == "AvailabilityZone mars could not be found."
    assert admin.delete(f"networks/{flat['id']}").status_code == 204


def test_concurrent_networks_get_distinct_vnis(admin):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: admin.post("networks", {"network": {"name": unique("vni")}}), range(20)))
    assert [r.status_code for r in responses] == [201] * 20
    vnis = [r.json()["network"]["provider:segmentation_id"] for r in responses]
    assert len(set(vnis)) == 20


def test_subnet_addressing(admin):
    network = admin.network()
    subnet = admin.subnet(network, "192.168.50.0/24", dns_nameservers=["192.0.2.53"], enable_dhcp=False,
                          host_routes=[{"destination": "10.9.0.0/16", "nexthop": "192.168.50.254"}])
    assert subnet["gateway_ip"] == "192.168.50.1"
    assert subnet["allocation_pools"] == [{"start": "192.168.50.2", "end": "192.168.50.254"}]
    assert subnet["dns_nameservers"] == ["192.0.2.53"] and subnet["enable_dhcp"] is False
    assert subnet["host_routes"] == [{"destination": "10.9.0.0/16", "nexthop": "192.168.50.254"}]
    pooled = admin.subnet(admin.network(), "10.60.0.0/24", gateway_ip="10.60.0.254",
                          allocation_pools=[{"start": "10.60.0.10", "end": "10.60.0.20"}])
    assert pooled["allocation_pools"] == [{"start": "10.60.0.10", "end": "10.60.0.20"}]
    updated = admin.put(f"subnets/{subnet['id']}", {"subnet": {"dns_nameservers": [], "name": "renamed"}})
    assert updated.json()["subnet"]["dns_nameservers"] == [] and updated.json()["subnet"]["name"] == "renamed"
    assert admin.get(f"networks/{network['id']}").json()["network"]["subnets"] == [subnet["id"]]


@pytest.mark.parametrize("attributes, status, kind, words", [
    ({"cidr": "192.168.50.128/25"}, 400, "InvalidInput", "overlaps with another subnet"),
    ({"cidr": "192.168.0.0/16"}, 400, "InvalidInput", "overlaps with another subnet"),
    ({"cidr": "10.61.0.0/24", "gateway_ip": "10.62.0.1"}, 400, "InvalidInput", "Gateway IP 10.62.0.1"),
    ({"cidr": "10.61.0.0/24", "gateway_ip": "10.61.0.5",
      "allocation_pools": [{"start": "10.61.0.2", "end": "10.61.0.9"}]}, 409, "GatewayConflictWithAllocationPools",
     "10.61.0.5"),
    ({"cidr": "10.61.0.0/24", "allocation_pools": [{"start": "10.61.0.2", "end": "10.61.1.9"}]}, 400,
     "OutOfBoundsAllocationPool", "10.61.1.9"),
    ({"cidr": "10.61.0.7/24"}, 400, "HTTPBadRequest", "'cidr'"),
    ({"cidr": "not-a-cidr"}, 400, "HTTPBadRequest", "'cidr'"),
    ({"cidr": "10.61.0.0/24", "dns_nameservers": ["x"]}, 400, "HTTPBadRequest", "dns_nameservers"),
])
def test_bad_subnets_are_refused(admin, attributes, status, kind, words):
    network = admin.network()
    admin.subnet(network, "192.168.50.0/24")
    response = admin.post("subnets", {"subnet": {"network_id": network["id"], "ip_version": 4, **attributes}})
    assert words in neutron_error(response, status, kind)
    assert len(admin.get(f"subnets?network_id={network['id']}").json()["subnets"]) == 1


def test_subnet_on_another_projects_network(admin, demo):
    neutron_error(demo.post("subnets", {"subnet": {"network_id": admin.network()["id"], "cidr": "10.0.0.0/24",
                                                   "ip_version": 4}}), 404, "NetworkNotFound")


def test_subnet_deleted_under_its_dhcp_port(admin):
    """Only the DHCP port holds an address: the subnet goes, the port stays
    without it (Neutron's answer); a server's port still makes it a 409."""
    network = admin.network()
    subnet = admin.subnet(network, "10.71.0.0/24")
    dhcp = admin.port(network, device_owner="network:dhcp", device_id="dhcp-host",
                      fixed_ips=[{"subnet_id": subnet["id"]}])
    server = admin.port(network, device_owner="compute:nova", fixed_ips=[{"subnet_id": subnet["id"]}])
    neutron_error(admin.delete(f"subnets/{subnet['id']}"), 409, "SubnetInUse")
    assert admin.delete(f"ports/{server['id']}").status_code == 204
    assert admin.delete(f"subnets/{subnet['id']}").status_code == 204
    assert admin.get(f"subnets/{subnet['id']}").status_code == 404
    assert admin.get(f"ports/{dhcp['id']}").json()["port"]["fixed_ips"] == []


def test_port_attributes(admin):
    network = admin.network()
    subnet = admin.subnet(network, "10.70.0.0/24")
    port = admin.port(network, name="p1", device_owner="compute:nova", device_id="server-1",
                      fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "10.70.0.33"}],
                      allowed_address_pairs=[{"ip_address": "10.70.0.200"}], mac_address="FA:16:3E:00:00:01")
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.70.0.33"}]
    assert port["mac_address"] == "fa:16:3e:00:00:01" and port["status"] == "DOWN"
    assert (port["device_owner"], port["device_id"]) == ("compute:nova", "server-1")
    assert port["allowed_address_pairs"] == [{"ip_address": "10.70.0.200", "mac_address": "fa:16:3e:00:00:01"}]
    assert port["binding:vif_type"] == "unbound" and port["port_security_enabled"] is True
    assert len(port["security_groups"]) == 1  # the project's default group
    bound = admin.put(f"ports/{port['id']}", {"port": {"binding:host_id": "node-1"}}).json()["port"]
    assert bound["binding:host_id"] == "node-1" and bound["binding:vif_type"] == "bridge"
    # The bridge the node agent plugs the port into.
    assert bound["binding:vif_details"]["bridge_name"] == resources.bridge_name(bound["network_id"])
    assert bound["revision_number"] == port["revision_number"] + 1
    by_address = admin.port(network, fixed_ips=[{"ip_address": "10.70.0.34"}])
    assert by_address["fixed_ips"][0]["subnet_id"] == subnet["id"]
    moved = admin.put(f"ports/{by_address['id']}", {"port": {"fixed_ips": [{"ip_address": "10.70.0.35"}]}})
    assert moved.json()["port"]["fixed_ips"][0]["ip_address"] == "10.70.0.35"
    moved_network = admin.put(f"ports/{port['id']}", {"port": {"network_id": admin.network()["id"]}})
    assert neutron_error(moved_network, 400, "HTTPBadRequest") == "Cannot update read-only attribute network_id"
    taken = admin.post("ports", {"port": {"network_id": network["id"], "mac_address": "fa:16:3e:00:00:01"}})
    neutron_error(taken, 409, "MacAddressInUse")
    insecure = admin.post("ports", {"port": {"network_id": network["id"], "port_security_enabled": False,
                                             "security_groups": port["security_groups"]}})
    neutron_error(insecure, 400, "PortSecurityAndIPRequiredForSecurityGroups")
    plain = admin.port(network, port_security_enabled=False)
    assert plain["security_groups"] == [] and plain["port_security_enabled"] is False
    assert admin.delete(f"ports/{plain['id']}").status_code == 204
    neutron_error(admin.get(f"ports/{plain['id']}"), 404, "PortNotFound")


def test_only_admins_bind_ports(admin, demo):
    network = demo.network()
    message = neutron_error(demo.post("ports", {"port": {"network_id": network["id"], "binding:host_id": "x"}}),
                            403, "PolicyNotAuthorized")
    assert "binding:host_id" in message
    port = demo.port(network)
    assert "binding:host_id" not in port


def test_filters_fields_sorting_and_paging(admin):
    tag = unique("page")
    names = [unique("list") for _ in range(5)]
    created = [admin.network(name=name) for name in names]
    for network in created:
        assert admin.put(f"networks/{network['id']}/tags", {"tags": [tag]}).status_code == 200
    either = admin.get("networks", params={"name": [names[0], names[3]]}).json()["networks"]
    assert sorted(n["name"] for n in either) == sorted([names[0], names[3]])
    only = admin.get("networks", params={"tags": tag, "fields": ["id", "name"]}).json()["networks"]
    assert len(only) == 5 and all(set(n) == {"id", "name"} for n in only)
    descending = admin.get("networks", params={"tags": tag, "sort_key": "name", "sort_dir": "desc"}).json()
    assert [n["name"] for n in descending["networks"]] == sorted(names, reverse=True)
    seen, params = [], {"tags": tag, "limit": 2, "sort_key": "name", "sort_dir": "asc"}
    page = admin.get("networks", params=params).json()
    while True:
        seen += [n["name"] for n in page["networks"]]
        following = [link["href"] for link in page.get("networks_links", []) if link["rel"] == "next"]
        if not following:
            break
        assert "marker=" in following[0]
        page = requests.get(following[0], headers={"X-Auth-Token": admin.token}, timeout=30).json()
    assert seen == sorted(names)
    neutron_error(admin.get("networks", params={"sort_key": "colour"}), 400, "HTTPBadRequest")
    neutron_error(admin.get("networks", params={"marker": str(uuid.uuid4())}), 400, "HTTPBadRequest")
    assert admin.get("networks", params={"shared": "maybe"}).status_code == 400


def test_tags(admin):
    # Network tags under both names Neutron has given them.
    aliases = {extension["alias"] for extension in admin.get("extensions").json()["extensions"]}
    assert {"tag", "standard-attr-tag"} <= aliases
    network = admin.network()
    path = f"networks/{network['id']}/tags"
    assert admin.put(path, {"tags": ["red", "blue"]}).json()["tags"] == ["red", "blue"]
    assert admin.put(f"{path}/green").status_code == 201
    assert sorted(admin.get(path).json()["tags"]) == ["blue", "green", "red"]
    assert admin.get(f"{path}/green").status_code == 204
    assert admin.delete(f"{path}/red").status_code == 204
    neutron_error(admin.delete(f"{path}/red"), 404, "TagNotFound")
    shown = admin.get(f"networks/{network['id']}").json()["network"]
    assert sorted(shown["tags"]) == ["blue", "green"]
    ids = {n["id"] for n in admin.get("networks", params={"tags-any": "green"}).json()["networks"]}
    assert network["id"] in ids
    ids = {n["id"] for n in admin.get("networks", params={"not-tags": "blue,green"}).json()["networks"]}
    assert network["id"] not in ids
    neutron_error(admin.put(path, {"tags": "red"}), 400, "HTTPBadRequest")
    assert admin.delete(path).status_code == 204 and admin.get(path).json()["tags"] == []


@pytest.mark.django_db
def test_list_query_counts_stay_flat(cloud, tokens):
    """In-process, so the queries are counted; the rows roll back."""
    client = Client()
    headers = {"HTTP_X_AUTH_TOKEN": tokens["admin"]}
    project_id = client.get("/identity/v3/auth/tokens", HTTP_X_AUTH_TOKEN=tokens["admin"],
                            HTTP_X_SUBJECT_TOKEN=tokens["admin"]).json()["token"]["project"]["id"]
    prefix = unique("qc")

    def add(count):
        from network import ipam, ports
        network = ipam.create_network(project_id=project_id, name=f"{prefix}-{uuid.uuid4().hex[:6]}")
        from network.models import Subnet
        Subnet.objects.create(network=network, project_id=project_id, cidr="10.0.0.0/24", gateway_ip="10.0.0.1",
                              allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.254"}])
        for _ in range(count):
            ports.create_port(network, project_id, name=prefix)

    def queries(path):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path, **headers)
        assert response.status_code == 200
        return len(captured), response.json()

    add(2)
    few_ports, body = queries(f"/network/v2.0/ports?name={prefix}")
    few_networks, _ = queries("/network/v2.0/networks")
    assert len(body["ports"]) == 2
    add(30)
    many_ports, body = queries(f"/network/v2.0/ports?name={prefix}")
    many_networks, _ = queries("/network/v2.0/networks")
    assert len(body["ports"]) == 32 and all(p["fixed_ips"] and p["security_groups"] for p in body["ports"])
    assert (many_ports, many_networks) == (few_ports, few_networks)
    assert Network.objects.filter(name__startswith=prefix).count() == 2
    assert Port.objects.filter(name=prefix).count() == 32


def test_ports_filtered_by_part_of_an_address(admin):
    """ip-substring-filtering, as advertised: `fixed_ips=ip_address_substr=`."""
    assert "ip-substring-filtering" in {e["alias"] for e in admin.get("extensions").json()["extensions"]}
    network = admin.network()
    subnet = admin.subnet(network, "10.71.0.0/24")
    ports = {address: admin.port(network, fixed_ips=[{"subnet_id": subnet["id"], "ip_address": address}])["id"]
             for address in ("10.71.0.19", "10.71.0.21")}

    def matching(substring):
        listed = admin.get("ports", params={"network_id": network["id"],
                                            "fixed_ips": f"ip_address_substr={substring}"}).json()["ports"]
        return {port["id"] for port in listed}

    assert matching("10.71.0.1") == {ports["10.71.0.19"]}
    assert matching("10.71.0.") == set(ports.values())
    assert matching("10.72.") == set()
