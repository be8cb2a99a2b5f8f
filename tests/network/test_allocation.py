"""Addresses are handed out once: concurrent port creates through the live
API get distinct IPs and MACs; an exhausted pool, a fixed IP outside the
subnet or already used, and deleting what ports still use are refused in
Neutron's words, with nothing written."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.network.conftest import neutron_error

pytestmark = pytest.mark.live

THREADS = 50


def test_concurrent_port_creates_get_distinct_addresses(admin, demo):
    # Two projects on one shared network: their creates do not wait on one project's quota lock.
    network = admin.network(shared=True)
    subnet = admin.subnet(network, "10.80.0.0/24")

    def create(index):
        caller = admin if index % 2 else demo
        return caller.post("ports", {"port": {"network_id": network["id"], "name": f"c{index}"}})

    with ThreadPoolExecutor(THREADS) as pool:
        responses = list(pool.map(create, range(THREADS)))
    assert [r.status_code for r in responses] == [201] * THREADS, [r.text for r in responses if r.status_code != 201]
    created = [r.json()["port"] for r in responses]
    addresses = [port["fixed_ips"][0]["ip_address"] for port in created]
    assert len(set(addresses)) == THREADS and len({port["mac_address"] for port in created}) == THREADS
    assert all(port["fixed_ips"][0]["subnet_id"] == subnet["id"] for port in created)
    listed = admin.get("ports", params={"network_id": network["id"]}).json()["ports"]
    assert sorted(p["fixed_ips"][0]["ip_address"] for p in listed) == sorted(addresses)


def test_exhausted_pool_is_a_conflict_and_writes_nothing(admin):
    network = admin.network()
    subnet = admin.subnet(network, "10.81.0.0/24", allocation_pools=[{"start": "10.81.0.10", "end": "10.81.0.12"}])
    with ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(lambda _: admin.post("ports", {"port": {"network_id": network["id"]}}), range(5)))
    assert sorted(r.status_code for r in responses) == [201, 201, 201, 409, 409]
    for refused in (r for r in responses if r.status_code == 409):
        assert neutron_error(refused, 409, "IpAddressGenerationFailure") == \
            f"No more IP addresses available on network {network['id']}."
    ports = admin.get("ports", params={"network_id": network["id"]}).json()["ports"]
    assert sorted(p["fixed_ips"][0]["ip_address"] for p in ports) == ["10.81.0.10", "10.81.0.11", "10.81.0.12"]
    by_subnet = admin.post("ports", {"port": {"network_id": network["id"], "fixed_ips": [{"subnet_id": subnet["id"]}]}})
    neutron_error(by_subnet, 409, "IpAddressGenerationFailure")
    assert len(admin.get("ports", params={"network_id": network["id"]}).json()["ports"]) == 3


def test_fixed_ip_outside_the_subnet_or_in_use(admin):
    network = admin.network()
    subnet = admin.subnet(network, "10.82.0.0/24")
    used = admin.port(network, fixed_ips=[{"ip_address": "10.82.0.50"}])
    cases = [
        ([{"subnet_id": subnet["id"], "ip_address": "10.99.0.5"}], 400, "InvalidIpForSubnet",
         "IP address 10.99.0.5 is not a valid IP for the specified subnet."),
        ([{"ip_address": "10.99.0.5"}], 400, "InvalidIpForNetwork",
         "IP address 10.99.0.5 is not a valid IP for any of the subnets on the specified network."),
        ([{"ip_address": "10.82.0.50"}], 409, "IpAddressAlreadyAllocated",
         f"IP address 10.82.0.50 already allocated in subnet {subnet['id']}"),
        ([{"ip_address": "10.82.0.1"}], 409, "IpAddressAlreadyAllocated",
         f"IP address 10.82.0.1 already allocated in subnet {subnet['id']}"),
        ([{"ip_address": "10.82.0.255"}], 400, "InvalidIpForSubnet",
         "IP address 10.82.0.255 is not a valid IP for the specified subnet."),
        ([{"ip_address": "bogus"}], 400, "HTTPBadRequest", None),
    ]
    for fixed_ips, status, kind, message in cases:
        response = admin.post("ports", {"port": {"network_id": network["id"], "fixed_ips": fixed_ips}})
        said = neutron_error(response, status, kind)
        assert message is None or said == message
        assert message is not None or "fixed_ips" in said
    clash = admin.put(f"ports/{admin.port(network)['id']}", {"port": {"fixed_ips": [{"ip_address": "10.82.0.50"}]}})
    neutron_error(clash, 409, "IpAddressAlreadyAllocated")
    ports = admin.get("ports", params={"network_id": network["id"]}).json()["ports"]
    assert len(ports) == 2 and used["id"] in {p["id"] for p in ports}
    assert all(p["fixed_ips"] for p in ports)  # the refused update kept the other port's address


def test_deleting_a_network_or_subnet_in_use_changes_nothing(admin):
    network = admin.network()
    subnet = admin.subnet(network, "10.83.0.0/24")
    port = admin.port(network)
    neutron_error(admin.delete(f"subnets/{subnet['id']}"), 409, "SubnetInUse")
    message = neutron_error(admin.delete(f"networks/{network['id']}"), 409, "NetworkInUse")
    assert network["id"] in message
    assert admin.get(f"networks/{network['id']}").json()["network"]["subnets"] == [subnet["id"]]
    assert admin.get(f"ports/{port['id']}").json()["port"]["fixed_ips"][0]["subnet_id"] == subnet["id"]
    assert admin.delete(f"ports/{port['id']}").status_code == 204
    assert admin.delete(f"networks/{network['id']}").status_code == 204
    neutron_error(admin.get(f"subnets/{subnet['id']}"), 404, "SubnetNotFound")


def test_network_deleted_while_ports_are_created(admin):
    """Either the delete waits for the ports and is refused, or it goes first
    and the creates find no network: never a 500, never a port left on a
    network that is gone."""
    for _ in range(5):
        network = admin.network()
        admin.subnet(network, "10.84.0.0/24")

        def act(index):
            if index == 3:
                return admin.delete(f"networks/{network['id']}")
            return admin.post("ports", {"port": {"network_id": network["id"]}})

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(act, range(8)))
        deleted, creates = responses[3], responses[:3] + responses[4:]
        assert deleted.status_code in (204, 409), deleted.text
        for response in creates:
            assert response.status_code in (201, 404), response.text
            if response.status_code == 404:
                neutron_error(response, 404, "NetworkNotFound")
        made = [r.json()["port"]["id"] for r in creates if r.status_code == 201]
        if deleted.status_code == 204:
            assert made == [] and admin.get(f"networks/{network['id']}").status_code == 404
        else:
            assert made and {p["id"] for p in admin.get("ports", params={"network_id": network["id"]}).json()[
                "ports"]} == set(made)


def test_network_deleted_while_subnets_are_created(admin):
    for _ in range(5):
        network = admin.network()

        def act(index):
            if index == 2:
                return admin.delete(f"networks/{network['id']}")
            return admin.post("subnets", {"subnet": {"network_id": network["id"], "cidr": f"10.{100 + index}.0.0/24",
                                                     "ip_version": 4}})

        with ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(act, range(6)))
        assert responses[2].status_code == 204, responses[2].text
        for response in responses[:2] + responses[3:]:
            assert response.status_code in (201, 404), response.text
        assert admin.get(f"networks/{network['id']}").status_code == 404
        assert admin.get("subnets", params={"network_id": network["id"]}).json()["subnets"] == []
