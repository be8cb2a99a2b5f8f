"""Subnet pools (subnet_allocation): subnets cut from a pool's prefixes,
with the stock CLI and on the wire, against the live server."""
import uuid

import pytest

from tests.network.conftest import neutron_error, unique

pytestmark = pytest.mark.live


def test_subnets_cut_from_a_pool_with_the_cli(cloud):
    def os(*args, **kwargs):
        return cloud.openstack(*args, cloud="stratus-demo", **kwargs)

    pool_name, network = unique("pool"), unique("net")
    pool = os("subnet", "pool", "create", "--pool-prefix", "10.80.0.0/16", "--default-prefix-length", "24",
              pool_name, "-f", "json")
    assert (pool["prefixes"], pool["default_prefixlen"], pool["ip_version"]) == (["10.80.0.0/16"], 24, 4)
    os("network", "create", network, "-f", "json")
    cut = [os("subnet", "create", "--subnet-pool", pool_name, "--network", network, unique("s"), "-f", "json")
           for _ in range(2)]
    assert [s["cidr"] for s in cut] == ["10.80.0.0/24", "10.80.1.0/24"]
    assert {s["subnetpool_id"] for s in cut} == {pool["id"]}
    assert cut[0]["gateway_ip"] == "10.80.0.1"
    chosen = os("subnet", "create", "--subnet-pool", pool_name, "--network", network, "--subnet-range",
                "10.80.5.0/24", unique("s"), "-f", "json")
    assert chosen["cidr"] == "10.80.5.0/24"
    small = os("subnet", "create", "--subnet-pool", pool_name, "--network", network, "--prefix-length", "28",
               unique("s"), "-f", "json")
    assert small["cidr"] == "10.80.2.0/28"
    listed = os("subnet", "list", "--subnet-pool", pool_name, "-f", "json")
    assert {s["ID"] for s in listed} == {s["id"] for s in cut + [chosen, small]}

    in_use = os("subnet", "pool", "delete", pool_name, expect_fail=True)
    assert "subnet" in in_use.stderr.lower()
    for subnet in cut + [chosen, small]:
        os("subnet", "delete", subnet["id"])
    os("subnet", "pool", "delete", pool_name)
    os("subnet", "pool", "show", pool_name, expect_fail=True)


def test_bad_pool_requests_are_refused(demo):
    pool = demo.create("subnetpools", "subnetpool", name=unique("pool"), prefixes=["10.81.0.0/24"],
                       default_prefixlen=25, min_prefixlen=24, max_prefixlen=28)
    network = demo.network()

    def cut(**attributes):
        return demo.post("subnets", {"subnet": {"network_id": network["id"], "subnetpool_id": pool["id"],
                                                "ip_version": 4, **attributes}})

    outside = cut(cidr="10.82.0.0/25")
    assert "is not in subnet pool" in neutron_error(outside, 400, "SubnetAllocationError")
    assert "prefix length" in neutron_error(cut(prefixlen=30), 400, "SubnetAllocationError")
    first = cut()
    assert first.status_code == 201 and first.json()["subnet"]["cidr"] == "10.81.0.0/25"
    overlapping = cut(cidr="10.81.0.64/26")
    assert "overlaps" in neutron_error(overlapping, 409, "SubnetAllocationError")
    assert cut().json()["subnet"]["cidr"] == "10.81.0.128/25"
    assert "Insufficient prefix space" in neutron_error(cut(), 409, "SubnetAllocationError")
    assert len(demo.get("subnets", params={"subnetpool_id": pool["id"]}).json()["subnets"]) == 2

    # A pool grows; it does not shrink under its subnets.
    shrunk = demo.put(f"subnetpools/{pool['id']}", {"subnetpool": {"prefixes": ["10.81.0.0/25"]}})
    assert "Illegal update to prefixes" in neutron_error(shrunk, 400, "InvalidInput")
    grown = demo.put(f"subnetpools/{pool['id']}", {"subnetpool": {"prefixes": ["10.81.0.0/24", "10.81.1.0/24"]}})
    assert grown.status_code == 200 and grown.json()["subnetpool"]["prefixes"] == ["10.81.0.0/23"]
    assert cut().json()["subnet"]["cidr"] == "10.81.1.0/25"
    mixed = demo.post("subnetpools", {"subnetpool": {"name": "mixed", "prefixes": ["10.83.0.0/16", "fd00:83::/48"]}})
    assert "prefixes" in neutron_error(mixed, 400, "HTTPBadRequest")
    bounds = demo.post("subnetpools", {"subnetpool": {"name": "b", "prefixes": ["10.84.0.0/16"],
                                                      "min_prefixlen": 28, "max_prefixlen": 24}})
    assert "Illegal prefix bounds" in neutron_error(bounds, 400, "InvalidInput")
    missing = demo.post("subnets", {"subnet": {"network_id": network["id"], "ip_version": 4}})
    assert "cidr" in neutron_error(missing, 400, "HTTPBadRequest")
    unknown = cut(subnetpool_id=str(uuid.uuid4()))
    neutron_error(unknown, 404, "SubnetPoolNotFound")


def test_pool_policy_and_ipv6(admin, demo):
    private = admin.create("subnetpools", "subnetpool", name=unique("pool"), prefixes=["10.85.0.0/16"],
                           default_prefixlen=24)
    shared = admin.create("subnetpools", "subnetpool", name=unique("pool"), prefixes=["fd00:85::/48"],
                          default_prefixlen=64, shared=True)
    assert (shared["ip_version"], shared["min_prefixlen"], shared["max_prefixlen"]) == (6, 64, 128)
    seen = {p["id"] for p in demo.get("subnetpools").json()["subnetpools"]}
    assert shared["id"] in seen and private["id"] not in seen
    neutron_error(demo.get(f"subnetpools/{private['id']}"), 404, "SubnetPoolNotFound")
    denied = demo.post("subnetpools", {"subnetpool": {"name": "s", "prefixes": ["10.86.0.0/16"], "shared": True}})
    neutron_error(denied, 403, "PolicyNotAuthorized")
    network = demo.network()
    theirs = demo.post("subnets", {"subnet": {"network_id": network["id"], "subnetpool_id": private["id"],
                                              "ip_version": 4}})
    neutron_error(theirs, 404, "SubnetPoolNotFound")
    neutron_error(demo.delete(f"subnetpools/{shared['id']}"), 403, "PolicyNotAuthorized")
    subnet = demo.create("subnets", "subnet", network_id=network["id"], subnetpool_id=shared["id"], ip_version=6,
                         ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
    assert subnet["cidr"] == "fd00:85::/64" and subnet["gateway_ip"] == "fd00:85::1"
    wrong = demo.post("subnets", {"subnet": {"network_id": network["id"], "subnetpool_id": shared["id"],
                                             "ip_version": 4}})
    assert "IPv6" in neutron_error(wrong, 400, "InvalidInput")
    neutron_error(admin.delete(f"subnetpools/{shared['id']}"), 409, "SubnetPoolInUse")
    assert demo.delete(f"subnets/{subnet['id']}").status_code == 204
    assert admin.delete(f"subnetpools/{shared['id']}").status_code == 204
    assert admin.put(f"subnetpools/{private['id']}/tags", {"tags": ["blue"]}).json()["tags"] == ["blue"]
    assert admin.get(f"subnetpools/{private['id']}").json()["subnetpool"]["tags"] == ["blue"]
