"""network.ports, the functions compute and the node agent call: what they
do shows on the API as a user sees it."""
import pytest
from django.test import Client

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
