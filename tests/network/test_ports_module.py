"""network.ports, the functions compute and the node agent call: what they
do shows on the API as a user sees it."""
import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from network import ipam, ports
from network.models import IPAllocation, Port, Subnet
from tests.network.conftest import unique

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_and_project(cloud, tokens):
    client = Client(HTTP_X_AUTH_TOKEN=tokens["admin"])
    project_id = client.get("/identity/v3/auth/tokens", HTTP_X_SUBJECT_TOKEN=tokens["admin"]).json()[
        "token"]["project"]["id"]
    return client, project_id


def test_bind_and_status_show_on_the_api(client_and_project):
    client, project_id = client_and_project
    network = ipam.create_network(project_id=project_id, name=unique("mod"))
    Subnet.objects.create(network=network, project_id=project_id, cidr="10.130.0.0/24", gateway_ip="10.130.0.1",
                          allocation_pools=[{"start": "10.130.0.2", "end": "10.130.0.254"}])
    port = ports.create_port(network, project_id, device_owner="compute:nova", device_id="server-9")
    assert [p.id for p in ports.ports_of_device("server-9")] == [port.id]
    ports.bind_port(port, "node-7")
    assert ports.set_status(port.id, "ACTIVE") is True
    shown = client.get(f"/network/v2.0/ports/{port.id}").json()["port"]
    assert (shown["status"], shown["binding:host_id"], shown["binding:vif_type"]) == ("ACTIVE", "node-7", "bridge")
    assert shown["revision_number"] == 2 and shown["fixed_ips"][0]["ip_address"] == "10.130.0.2"
    with pytest.raises(ValueError):
        ports.set_status(port.id, "PLUMBED")
    ports.delete_port(port)
    assert ports.set_status(port.id, "DOWN") is False
    assert not Port.objects.filter(pk=port.pk).exists() and not IPAllocation.objects.filter(port_id=port.pk).exists()
    assert client.get(f"/network/v2.0/ports/{port.id}").status_code == 404


def test_a_boots_port_opens_only_the_savepoint_its_mac_retry_needs(client_and_project):
    """Inside the boot's network step (a caller's transaction) a port is
    made, attached and bound with one savepoint, around the insert a
    colliding MAC retries; the rest takes none of its own."""
    _, project_id = client_and_project
    network = ipam.create_network(project_id=project_id, name=unique("sp"))
    Subnet.objects.create(network=network, project_id=project_id, cidr="10.132.0.0/24", gateway_ip="10.132.0.1",
                          allocation_pools=[{"start": "10.132.0.2", "end": "10.132.0.254"}])
    ports.create_port(network, project_id)   # the project's default group is made
    counts = []
    for host in ("node-a", "node-b"):
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            port = ports.create_port(network, project_id, device_id="server-sp", device_owner="compute:nova",
                                     binding_host_id=host)
            ports.attach_port(port, "server-sp", "compute:nova", "node-c")   # a user's port taken
            ports.bind_port(port, host)   # a resize's move
        statements = [query["sql"].split()[0] for query in captured.captured_queries]
        counts.append((len(statements), statements.count("SAVEPOINT"), statements.count("RELEASE")))
    print(f"\nport create, attach and bind in one transaction: {counts[-1][0]} statements, "
          f"{counts[-1][1]} savepoint(s)")
    assert all(count[1:] == (1, 1) for count in counts), counts
    # What failed in it fails the caller's transaction, and nothing is left.
    with pytest.raises(Exception):
        with transaction.atomic():
            port = ports.create_port(network, project_id, device_id="server-sp2", device_owner="compute:nova")
            ports.update_port(port, mac_address=Port.objects.exclude(pk=port.pk).first().mac_address)
    assert not Port.objects.filter(device_id="server-sp2").exists()
