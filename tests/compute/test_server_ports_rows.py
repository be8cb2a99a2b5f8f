"""A server's ports as rows: the addresses of a page of servers are read
in queries that do not grow with the page, and a delete with no node to
ask (the reconciler's local delete) deletes the ports made for the server
and gives back the one the user brought."""
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compute import conf, networking, tasks
from compute.models import Instance, TaskState, VmState
from network import ipam, ports
from network.models import Port, Subnet
from tests.compute.pipeline import upload_tiny_image

pytestmark = pytest.mark.live

V = {"HTTP_OPENSTACK_API_VERSION": "compute 2.60"}


def project_of(client, token):
    return client.get("/identity/v3/auth/tokens", HTTP_X_AUTH_TOKEN=token,
                      HTTP_X_SUBJECT_TOKEN=token).json()["token"]["project"]["id"]


def network_with_subnet(project_id):
    network = ipam.create_network(project_id=project_id, name=f"rows-{uuid.uuid4().hex[:6]}")
    Subnet.objects.create(network=network, project_id=project_id, cidr="10.90.0.0/16", gateway_ip="10.90.0.1",
                          allocation_pools=[{"start": "10.90.0.2", "end": "10.90.255.254"}])
    return network


def server_with_port(project_id, network, name, **fields):
    instance = Instance.objects.create(name=name, project_id=project_id, user_id="u", flavor_id_at_boot="42",
                                       flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1,
                                       vm_state=VmState.ACTIVE, **fields)
    port = ports.create_port(network, project_id, device_id=str(instance.pk), device_owner="compute:nova")
    networking.set_held_ports(instance.pk, [{"port_id": str(port.pk), "created": True}])
    return instance, port


@pytest.mark.django_db
def test_server_list_reads_the_addresses_of_a_page_at_once(cloud):
    client = Client()
    token = cloud.token("stratus")
    headers = {"HTTP_X_AUTH_TOKEN": token, **V}
    project_id = project_of(client, token)
    network = network_with_subnet(project_id)
    prefix = f"q-{uuid.uuid4().hex[:6]}"

    def listed():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/compute/v2.1/servers/detail?name=^{prefix}", **headers)
        assert response.status_code == 200
        return len(captured), response.json()["servers"]

    listed()  # the token is validated once, then cached
    for index in range(2):
        server_with_port(project_id, network, f"{prefix}-a{index}")
    few, servers = listed()
    assert len(servers) == 2 and all(len(server["addresses"][network.name]) == 1 for server in servers)
    for index in range(20):
        server_with_port(project_id, network, f"{prefix}-b{index}")
    many, servers = listed()
    assert len(servers) == 22
    assert many == few, (few, many)
    addresses = {server["addresses"][network.name][0]["addr"] for server in servers}
    assert len(addresses) == 22
    assert {server["addresses"][network.name][0]["OS-EXT-IPS:type"] for server in servers} == {"fixed"}


@pytest.mark.django_db
def test_the_reconcilers_local_delete_deletes_made_ports_and_gives_back_the_users():
    network = network_with_subnet("rows")
    long_ago = timezone.now() - timedelta(seconds=2 * conf.TASK_STATE_DEADLINE)
    instance, made = server_with_port("rows", network, "local-delete", task_state=TaskState.DELETING)
    users = ports.create_port(network, "rows")
    ports.attach_port(users, instance.pk, "compute:nova", host="gone-host")
    networking.hold_port(instance.pk, users.pk, created=False)
    Instance.objects.filter(pk=instance.pk).update(updated_at=long_ago)

    tasks.reconcile()

    assert Instance.objects.get(pk=instance.pk).deleted
    assert not Port.objects.filter(pk=made.pk).exists()
    given_back = Port.objects.get(pk=users.pk)
    assert (given_back.device_id, given_back.binding_host_id, given_back.status) == ("", "", "DOWN")


@pytest.fixture
def lone_project(cloud):
    """A project of its own and a member's token for it."""
    name = f"lone-{uuid.uuid4().hex[:6]}"
    project = cloud.openstack("project", "create", name, "-f", "json")
    cloud.openstack("user", "create", "--password", "s3cret-pw", "--project", name, name, "-f", "json")
    cloud.openstack("role", "add", "--project", name, "--user", name, "member")
    token = cloud.openstack("--os-username", name, "--os-password", "s3cret-pw", "--os-project-name", name,
                            "token", "issue", "-f", "json")["id"]
    return project["id"], token


@pytest.mark.django_db
def test_a_create_naming_no_network_uses_the_projects_one_network_as_nova_does(cloud, lone_project, tmp_path):
    project_id, token = lone_project
    client = Client()
    body = {"server": {"name": "lone", "flavorRef": "42", "imageRef": upload_tiny_image(cloud, tmp_path)}}

    def create(version, **extra):
        return client.post("/compute/v2.1/servers", {"server": {**body["server"], **extra}},
                           content_type="application/json", HTTP_X_AUTH_TOKEN=token,
                           HTTP_OPENSTACK_API_VERSION=f"compute {version}")

    response = create("2.1")
    assert response.status_code == 202, response.content
    assert Instance.objects.get(pk=response.json()["server"]["id"]).request_spec["networks"] == "none"

    only = network_with_subnet(project_id)
    for version, extra in (("2.1", {}), ("2.37", {"networks": "auto"})):
        response = create(version, **extra)
        assert response.status_code == 202, response.content
        spec = Instance.objects.get(pk=response.json()["server"]["id"]).request_spec
        assert spec["networks"] == [{"network_id": str(only.pk), "port_id": None, "fixed_ip": None}]

    network_with_subnet(project_id)
    for version, extra in (("2.1", {}), ("2.37", {"networks": "auto"})):
        response = create(version, **extra)
        assert response.status_code == 409, response.content
        assert response.json()["conflictingRequest"]["message"].startswith("More than one possible network found.")
