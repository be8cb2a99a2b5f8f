"""The free-address search: addresses come in order after the last one
given, a freed one comes back once the pool has gone round, a hole in a
nearly full pool is found, a full pool gives none; and a port create asks
the database the same number of questions whatever the subnet holds."""
import ipaddress

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from network import errors, ipam, ports
from network.models import IPAllocation, Port, Subnet

pytestmark = pytest.mark.django_db


def subnet_with_pool(cidr, start, end):
    network = ipam.create_network(project_id="ipam-test")
    net = ipaddress.ip_network(cidr)
    return Subnet.objects.create(network=network, project_id="ipam-test", cidr=cidr,
                                 gateway_ip=str(net.network_address + 1),
                                 allocation_pools=[{"start": start, "end": end}])


def fill(subnet, addresses):
    """Ports holding `addresses`, made in bulk."""
    made = Port.objects.bulk_create([Port(network=subnet.network, project_id="ipam-test",
                                          mac_address=f"fa:16:3f:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}")
                                     for n in range(len(addresses))])
    IPAllocation.objects.bulk_create([IPAllocation(port=port, subnet=subnet, ip_address=address)
                                      for port, address in zip(made, addresses)])
    return made


def new_address(subnet):
    port = ports.create_port(subnet.network, "", count_quota=False, security_groups=[])
    return port, port.fixed_ips.get().ip_address


def test_addresses_follow_the_last_one_and_a_freed_one_comes_back_after_a_round():
    subnet = subnet_with_pool("10.200.0.0/24", "10.200.0.2", "10.200.0.254")
    first, _ = new_address(subnet)
    assert [new_address(subnet)[1] for _ in range(3)] == ["10.200.0.3", "10.200.0.4", "10.200.0.5"]
    ports.delete_port(first)   # 10.200.0.2 is free again, but the search goes on from .5
    assert new_address(subnet)[1] == "10.200.0.6"
    fill(subnet, [f"10.200.0.{n}" for n in range(7, 255)])
    assert new_address(subnet)[1] == "10.200.0.2"   # wrapped round to the freed address
    with pytest.raises(errors.ApiError) as refused:
        new_address(subnet)
    assert refused.value.status == 409 and refused.value.kind == "IpAddressGenerationFailure"


def test_a_hole_in_a_nearly_full_large_pool_is_found():
    subnet = subnet_with_pool("10.201.0.0/22", "10.201.0.10", "10.201.3.200")
    pool = [str(ipaddress.ip_address("10.201.0.10") + n) for n in range(959)]
    fill(subnet, [address for address in pool if address != "10.201.1.77"])
    assert new_address(subnet)[1] == "10.201.1.77"
    with pytest.raises(errors.ApiError):
        new_address(subnet)


def test_queries_of_a_port_create_do_not_grow_with_the_subnet():
    subnet = subnet_with_pool("10.202.0.0/16", "10.202.0.2", "10.202.255.254")
    new_address(subnet)

    def queries_of_one_create():
        with CaptureQueriesContext(connection) as captured:
            new_address(subnet)
        return len(captured)

    few = queries_of_one_create()
    fill(subnet, [str(ipaddress.ip_address("10.202.100.0") + n) for n in range(2000)])
    assert queries_of_one_create() == few
    # The 2,000 end at 10.202.107.207; the create counted above took .208.
    assert new_address(subnet)[1] == "10.202.107.209"
