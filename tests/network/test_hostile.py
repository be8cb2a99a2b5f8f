"""Hostile and malformed requests get a 4xx NeutronError, never a 500,
and write nothing."""
import pytest

pytestmark = pytest.mark.live

NOT_UUID = "not-a-uuid"


@pytest.fixture(scope="module")
def rows(cloud, tokens):
    """A network with a subnet and a port, a router and a group to aim at."""
    import requests

    def post(path, body):
        response = requests.post(f"{cloud.url}/network/v2.0/{path}", json=body, timeout=30,
                                 headers={"X-Auth-Token": tokens["admin"]})
        assert response.status_code == 201, response.text
        return next(iter(response.json().values()))

    network = post("networks", {"network": {"name": "hostile"}})
    subnet = post("subnets", {"subnet": {"network_id": network["id"], "cidr": "10.123.0.0/24", "ip_version": 4}})
    port = post("ports", {"port": {"network_id": network["id"]}})
    router = post("routers", {"router": {"name": "hostile"}})
    group = post("security-groups", {"security_group": {"name": "hostile"}})
    rule = post("security-group-rules", {"security_group_rule": {"security_group_id": group["id"],
                                                                 "direction": "ingress"}})
    return {"network": network, "subnet": subnet, "port": port, "router": router, "group": group, "rule": rule}


BODIES = [None, [], "text", 42, {"network": None}, {"network": []}, {"network": "x"}, {"networks": None},
          {"networks": [None]}, {"networks": [{"name": "a"}, {"name": ["b"]}]}, {"network": {}, "networks": []}]

CREATES = [
    ("networks", {"network": {"name": ["a"]}}),
    ("networks", {"network": {"name": "x" * 300}}),
    ("networks", {"network": {"admin_state_up": "perhaps"}}),
    ("networks", {"network": {"provider:network_type": "vlan"}}),
    ("networks", {"network": {"provider:segmentation_id": -1}}),
    ("networks", {"network": {"provider:segmentation_id": 2 ** 40}}),
    ("networks", {"network": {"availability_zone_hints": "nova"}}),
    ("networks", {"network": {"mtu": 1}}),
    ("subnets", {"subnet": {"network_id": NOT_UUID, "cidr": "10.1.0.0/24"}}),
    ("subnets", {"subnet": {"network_id": "{network}", "cidr": "10.1.0.0/24", "ip_version": 6}}),
    ("subnets", {"subnet": {"network_id": "{network}", "cidr": "2001:db8::/64"}}),
    ("subnets", {"subnet": {"network_id": "{network}", "cidr": 10}}),
    ("subnets", {"subnet": {"network_id": "{network}", "cidr": "10.2.0.0/24", "allocation_pools": "all"}}),
    ("subnets", {"subnet": {"network_id": "{network}", "cidr": "10.2.0.0/24", "allocation_pools": [{"start": "x"}]}}),
    ("subnets", {"subnet": {"network_id": "{network}", "cidr": "10.2.0.0/24",
                            "allocation_pools": [{"start": "10.2.0.9", "end": "10.2.0.3"}]}}),
    ("subnets", {"subnet": {"network_id": "{network}", "cidr": "10.2.0.0/24", "gateway_ip": "10.2.0.0"}}),
    ("subnets", {"subnet": {"network_id": "{network}", "cidr": "10.2.0.0/24", "host_routes": [{"destination": "x"}]}}),
    ("subnets", {"subnet": {"network_id": "{network}", "cidr": "10.2.0.0/24",
                            "allocation_pools": [{"start": "10.2.0.2", "end": "10.2.0.9"},
                                                 {"start": "10.2.0.5", "end": "10.2.0.20"}]}}),
    ("subnets", {"subnet": {"network_id": "{network}", "subnetpool_id": NOT_UUID}}),
    ("subnets", {"subnet": {"network_id": "{network}", "cidr": "10.2.0.0/24", "prefixlen": 24}}),
    ("subnets", {"subnets": [{"network_id": "{network}", "cidr": "10.2.0.0/24"}, {"network_id": NOT_UUID}]}),
    ("subnetpools", {"subnetpool": {"name": "p", "prefixes": []}}),
    ("subnetpools", {"subnetpool": {"name": "p", "prefixes": ["10.9.0.0/33"]}}),
    ("subnetpools", {"subnetpool": {"name": "p", "prefixes": ["10.9.0.0/16"], "default_prefixlen": 4}}),
    ("subnetpools", {"subnetpool": {"name": "p", "prefixes": ["10.9.0.0/16"], "max_prefixlen": 200}}),
    ("ports", {"port": {"network_id": NOT_UUID}}),
    ("ports", {"port": {"network_id": "{network}", "fixed_ips": "10.123.0.5"}}),
    ("ports", {"port": {"network_id": "{network}", "fixed_ips": [{}]}}),
    ("ports", {"port": {"network_id": "{network}", "fixed_ips": [{"subnet_id": NOT_UUID}]}}),
    ("ports", {"port": {"network_id": "{network}", "fixed_ips": [{"subnet_id": "{port}"}]}}),
    ("ports", {"port": {"network_id": "{network}", "mac_address": "zz:zz"}}),
    ("ports", {"port": {"network_id": "{network}", "security_groups": [NOT_UUID]}}),
    ("ports", {"port": {"network_id": "{network}", "security_groups": ["{network}"]}}),
    ("ports", {"port": {"network_id": "{network}", "allowed_address_pairs": [{"ip_address": "nope"}]}}),
    ("ports", {"port": {"network_id": "{network}", "binding:vnic_type": "direct"}}),
    ("ports", {"port": {"network_id": "{network}", "binding:profile": "x"}}),
    ("security-group-rules", {"security_group_rule": {"security_group_id": NOT_UUID, "direction": "ingress"}}),
    ("security-group-rules", {"security_group_rule": {"security_group_id": "{group}", "direction": "ingress",
                                                      "protocol": "tcp", "port_range_min": 70000}}),
    ("security-group-rules", {"security_group_rule": {"security_group_id": "{group}", "direction": "ingress",
                                                      "remote_group_id": "{network}"}}),
    ("security-group-rules", {"security_group_rule": {"security_group_id": "{group}", "direction": "ingress",
                                                      "remote_ip_prefix": "10.0.0.0/33"}}),
    ("routers", {"router": {"external_gateway_info": {"network_id": "{network}"}}}),
    ("routers", {"router": {"external_gateway_info": "public"}}),
    ("routers", {"router": {"routes": [{"destination": "10.0.0.0/8"}]}}),
    ("routers", {"router": {"distributed": True}}),
    ("floatingips", {"floatingip": {"floating_network_id": NOT_UUID}}),
    ("floatingips", {"floatingip": {"floating_network_id": "{network}"}}),
]

ACTIONS = [
    ("PUT", "routers/{router}/add_router_interface", {"subnet_id": NOT_UUID}),
    ("PUT", "routers/{router}/add_router_interface", {"subnet_id": "{network}"}),
    ("PUT", "routers/{router}/add_router_interface", {"port_id": "{network}"}),
    ("PUT", "routers/{router}/add_router_interface", []),
    ("PUT", "routers/{router}/remove_router_interface", {"subnet_id": "{subnet}"}),
    ("PUT", "ports/{port}", {"port": {"network_id": "{network}"}}),
    ("PUT", "ports/{port}", {"port": {"fixed_ips": [{"ip_address": "10.9.9.9"}]}}),
    ("PUT", "subnets/{subnet}", {"subnet": {"cidr": "10.0.0.0/8"}}),
    ("PUT", "subnets/{subnet}", {"subnet": {"gateway_ip": "192.0.2.1"}}),
    ("PUT", "networks/{network}", {"network": {"provider:segmentation_id": 9}}),
    ("PUT", "networks/{network}/tags", {"tags": ["x" * 300]}),
    ("PUT", "networks/{network}/tags", None),
    ("PUT", "quotas/{network}", {"quota": {"network": -5}}),
    ("PUT", "quotas/{network}", {"quota": "lots"}),
    ("PUT", "security-group-rules/{rule}", {"security_group_rule": {"direction": "egress"}}),
    ("PATCH", "security-group-rules/{rule}", {"security_group_rule": {"description": "x"}}),
    ("PUT", "routers/{router}", {"router": {"routes": "none"}}),
    ("PUT", "routers/{router}", {"router": {"external_gateway_info": {"network_id": "{network}"}}}),
    ("PUT", "security-groups/{group}", {"security_group": {"stateful": "sometimes"}}),
    ("PUT", "networks/{network}", {"network": {"mtu": 100000}}),
    ("PUT", "ports/{port}", {"port": {"mac_address": "zz"}}),
    ("PUT", "ports/{port}", {"port": {"security_groups": "{group}"}}),
    ("POST", "networks/{network}", {"network": {}}),
    ("GET", "networks?limit=-1", None),
    ("GET", "networks?limit=x", None),
    ("GET", "networks?sort_key=name&sort_dir=up", None),
    ("GET", "networks?marker=not-a-uuid", None),
    ("GET", "networks?mtu=big", None),
    ("GET", "ports?fixed_ips=colour=red", None),
    ("GET", "networks/{network}/tags/missing", None),
    ("DELETE", "security-group-rules/" + NOT_UUID, None),
    ("DELETE", "floatingips/" + NOT_UUID, None),
    ("GET", "network-ip-availabilities/" + NOT_UUID, None),
]


def fill(value, rows):
    if isinstance(value, str):
        for name, row in rows.items():
            value = value.replace("{" + name + "}", row["id"])
        return value
    if isinstance(value, list):
        return [fill(item, rows) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, rows) for key, item in value.items()}
    return value


def assert_refused(response):
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert set(response.json()["NeutronError"]) == {"type", "message", "detail"}


@pytest.mark.parametrize("body", BODIES)
def test_malformed_envelopes(admin, body):
    assert_refused(admin.post("networks", body))


@pytest.mark.parametrize("collection, body", CREATES)
def test_bad_creates_are_refused_and_write_nothing(admin, rows, collection, body):
    member = next(iter(body))
    before = len(admin.get(collection).json()[collection.replace("-", "_")])
    assert_refused(admin.post(collection, fill(body, rows)))
    assert len(admin.get(collection).json()[collection.replace("-", "_")]) == before, member


@pytest.mark.parametrize("method, path, body", ACTIONS)
def test_bad_updates_and_queries_are_refused(admin, rows, method, path, body):
    response = admin.api.request(method, "/network/v2.0/" + fill(path, rows), token=admin.token, json=fill(body, rows))
    assert_refused(response)
    assert admin.get(f"ports/{rows['port']['id']}").json()["port"]["fixed_ips"] == rows["port"]["fixed_ips"]


def declared_queries():
    """Every filter and sort key each collection declares, with junk values."""
    from network.api import routers, security_groups, views

    for viewset in (views.NetworkViewSet, views.SubnetViewSet, views.SubnetPoolViewSet, views.PortViewSet,
                    security_groups.SecurityGroupViewSet,
                    security_groups.SecurityGroupRuleViewSet, routers.RouterViewSet, routers.FloatingIPViewSet):
        collection = viewset.collection_name.replace("_", "-")
        for name in {**viewset.COMMON_FILTERS, **viewset.filters}:
            for junk in ("", "junk", "-1", "%00", "a" * 300):
                yield collection, {name: junk}
        for key in {**viewset.COMMON_SORT_KEYS, **viewset.sort_keys}:
            yield collection, {"sort_key": key, "sort_dir": "desc", "limit": "1"}
        yield collection, {"tags": "x", "not-tags-any": "y", "fields": "id"}


@pytest.mark.parametrize("params", [{"fixed_ips": "ip_address=junk"}, {"fixed_ips": "subnet_id=junk"},
                                    {"fixed_ips": "ip_address_substr=%"}, {"fixed_ips": "nothing"}])
def test_fixed_ip_filters_answer(admin, params):
    response = admin.get("ports", params=params)
    assert response.status_code in (200, 400), (response.status_code, response.text)


@pytest.mark.parametrize("collection, params", list(declared_queries()))
def test_every_declared_filter_and_sort_key_answers(admin, collection, params):
    response = admin.get(collection, params=params)
    assert response.status_code in (200, 400), (response.status_code, response.text)
    if response.status_code == 400:
        assert set(response.json()["NeutronError"]) == {"type", "message", "detail"}
