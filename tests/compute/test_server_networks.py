"""Servers on networks, end to end: the real API, a control worker and
simulated nodes (whose network step binds ports and marks them ACTIVE
without kernel objects), driven by the `openstack` CLI as a tenant."""
import ipaddress
import uuid
from pathlib import Path

import pytest

from compute.models import Instance
from network.models import Network, Port, Router
from tests.compute import pipeline
from tests.compute.pipeline import start_nodes, stop_nodes, upload_tiny_image

# The fixtures of the boot-pipeline tests: a control worker, on the live database.
control, live_db = pipeline.control, pipeline.live_db

pytestmark = pytest.mark.live

DEMO = "stratus-demo"
CIDR = "10.77.0.0/24"


@pytest.fixture(scope="module")
def nodes(cloud, control, tmp_path_factory):
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("netnodes"), 2, "net")
    yield hosts
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def private(cloud):
    """The demo project's network with one subnet."""
    name = f"private-{uuid.uuid4().hex[:6]}"
    network = cloud.openstack("network", "create", name, "-f", "json", cloud=DEMO)
    subnet = cloud.openstack("subnet", "create", "--network", name, "--subnet-range", CIDR, f"{name}-subnet",
                             "-f", "json", cloud=DEMO)
    return {"name": name, "id": network["id"], "subnet_id": subnet["id"]}


def boot(cloud, image, name, *nic_args, cloud_name=DEMO, extra=()):
    return cloud.openstack("server", "create", "--image", image, "--flavor", "m1.nano", *nic_args, *extra,
                           "--wait", name, "-f", "json", cloud=cloud_name)


def server_ports(server_id):
    return list(Port.objects.filter(device_id=server_id))


def addresses(cloud, server_id, cloud_name=DEMO):
    return cloud.connect(cloud_name).compute.get_server(server_id).addresses


def test_server_on_a_network_gets_an_address_and_an_active_port_bound_to_its_host(cloud, nodes, image, private):
    server = boot(cloud, image, f"net-{uuid.uuid4().hex[:6]}", "--network", private["name"])
    assert server["status"] == "ACTIVE"
    shown = addresses(cloud, server["id"])
    (address,) = shown[private["name"]]
    assert ipaddress.ip_address(address["addr"]) in ipaddress.ip_network(CIDR)
    assert address["OS-EXT-IPS:type"] == "fixed" and address["version"] == 4
    ports = cloud.openstack("port", "list", "--server", server["id"], "--long", "-f", "json", cloud=DEMO)
    assert len(ports) == 1 and ports[0]["Status"] == "ACTIVE"
    port = cloud.openstack("port", "show", ports[0]["ID"], "-f", "json")  # admin: sees the binding
    admin_view = cloud.openstack("server", "show", server["id"], "-f", "json")
    assert port["binding_host_id"] == admin_view["OS-EXT-SRV-ATTR:host"] in nodes
    assert port["binding_vif_type"] == "bridge"
    assert port["device_owner"].startswith("compute:")
    assert address["OS-EXT-IPS-MAC:mac_addr"] == port["mac_address"]
    ips = cloud.connect(DEMO).compute.get(f"/servers/{server['id']}/ips").json()
    assert ips == {"addresses": {private["name"]: [{"version": 4, "addr": address["addr"]}]}}
    one = cloud.connect(DEMO).compute.get(f"/servers/{server['id']}/ips/{private['name']}").json()
    assert one == {private["name"]: [{"version": 4, "addr": address["addr"]}]}
    assert cloud.connect(DEMO).compute.get(f"/servers/{server['id']}/ips/no-such-net").status_code == 404
    detail = cloud.connect(DEMO).compute.get(f"/servers/{server['id']}").json()["server"]
    assert detail["security_groups"] == [{"name": "default"}]
    listed = cloud.connect(DEMO).compute.get("/servers/detail").json()["servers"]
    assert next(s for s in listed if s["id"] == server["id"])["security_groups"] == [{"name": "default"}]

    cloud.openstack("server", "delete", "--wait", server["id"], cloud=DEMO)
    assert not Port.objects.filter(pk=ports[0]["ID"]).exists()


def test_a_users_port_is_taken_and_given_back_on_delete(cloud, nodes, image, private):
    port = cloud.openstack("port", "create", "--network", private["name"], f"mine-{uuid.uuid4().hex[:6]}",
                           "-f", "json", cloud=DEMO)
    server = boot(cloud, image, f"port-{uuid.uuid4().hex[:6]}", "--nic", f"port-id={port['id']}")
    taken = Port.objects.get(pk=port["id"])
    assert (taken.device_id, taken.status) == (server["id"], "ACTIVE")
    assert addresses(cloud, server["id"])[private["name"]][0]["addr"] == port["fixed_ips"][0]["ip_address"]
    cloud.openstack("server", "delete", "--wait", server["id"], cloud=DEMO)
    given_back = cloud.openstack("port", "show", port["id"], "-f", "json")
    assert given_back["device_id"] == "" and given_back["binding_host_id"] == ""
    assert given_back["status"] == "DOWN"


def test_a_fixed_ip_asked_for_is_the_servers_address(cloud, nodes, image, private):
    server = boot(cloud, image, f"fixed-{uuid.uuid4().hex[:6]}", "--nic",
                  f"net-id={private['id']},v4-fixed-ip=10.77.0.50")
    assert [a["addr"] for a in addresses(cloud, server["id"])[private["name"]]] == ["10.77.0.50"]
    cloud.openstack("server", "delete", "--wait", server["id"], cloud=DEMO)
    assert not Port.objects.filter(fixed_ips__ip_address="10.77.0.50", network_id=private["id"]).exists()


def test_nic_none_boots_without_a_port(cloud, nodes, image, private):
    server = boot(cloud, image, f"none-{uuid.uuid4().hex[:6]}", "--nic", "none")
    assert server["status"] == "ACTIVE"
    assert addresses(cloud, server["id"]) == {} and server_ports(server["id"]) == []
    cloud.openstack("server", "delete", "--wait", server["id"], cloud=DEMO)


@pytest.fixture(scope="module")
def fresh_project(cloud):
    """A project with no network of its own, and an external network with a
    subnet for its auto-allocated router."""
    name = f"fresh-{uuid.uuid4().hex[:6]}"
    project = cloud.openstack("project", "create", name, "-f", "json")
    cloud.openstack("user", "create", "--password", "s3cret-pw", "--project", name, name, "-f", "json")
    cloud.openstack("role", "add", "--project", name, "--user", name, "member")
    external = f"ext-{uuid.uuid4().hex[:6]}"
    cloud.openstack("network", "create", "--external", external, "-f", "json")
    cloud.openstack("subnet", "create", "--network", external, "--subnet-range", "172.30.4.0/24", "--no-dhcp",
                    f"{external}-subnet", "-f", "json")
    auth = ("--os-username", name, "--os-password", "s3cret-pw", "--os-project-name", name)
    return {"id": project["id"], "auth": auth}


def test_nic_auto_gives_a_fresh_project_a_network_subnet_and_router(cloud, nodes, image, fresh_project):
    auth = fresh_project["auth"]
    server = cloud.openstack(*auth, "server", "create", "--image", image, "--flavor", "m1.nano", "--nic", "auto",
                             "--wait", f"auto-{uuid.uuid4().hex[:6]}", "-f", "json")
    assert server["status"] == "ACTIVE"
    network = Network.objects.get(project_id=fresh_project["id"], name="auto_allocated_network")
    (address,) = addresses(cloud, server["id"], "stratus")[network.name]
    assert ipaddress.ip_address(address["addr"]) in ipaddress.ip_network(network.subnets.get().cidr)
    router = Router.objects.get(project_id=fresh_project["id"])
    assert router.gateway_network.external
    # Asked again (the API, and a second server): the same topology.
    topology = cloud.openstack(*auth, "network", "auto", "allocated", "topology", "create", "-f", "json")
    assert topology["id"] == str(network.pk)
    second = cloud.openstack(*auth, "server", "create", "--image", image, "--flavor", "m1.nano", "--nic", "auto",
                             "--wait", f"auto-{uuid.uuid4().hex[:6]}", "-f", "json")
    assert network.name in addresses(cloud, second["id"], "stratus")
    assert Network.objects.filter(project_id=fresh_project["id"]).count() == 1
    for made in (server, second):
        cloud.openstack(*auth, "server", "delete", "--wait", made["id"])
    cloud.openstack(*auth, "network", "auto", "allocated", "topology", "delete")
    assert not Network.objects.filter(project_id=fresh_project["id"]).exists()
    assert not Router.objects.filter(project_id=fresh_project["id"]).exists()


def create_body(image, networks, **extra):
    return {"server": {"name": f"bad-{uuid.uuid4().hex[:6]}", "imageRef": image,
                       "networks": networks, **extra}}


@pytest.fixture(scope="module")
def demo_token(cloud):
    return cloud.token(DEMO)


V237 = {"OpenStack-API-Version": "compute 2.37"}


def test_bad_networks_are_refused_and_leave_no_port(api, cloud, nodes, image, private, demo_token):
    flavor = cloud.connect(DEMO).compute.find_flavor("m1.nano", ignore_missing=False).id
    other = cloud.openstack("network", "create", f"admins-{uuid.uuid4().hex[:6]}", "-f", "json")
    cloud.openstack("subnet", "create", "--network", other["id"], "--subnet-range", "10.78.0.0/24",
                    f"admins-sub-{uuid.uuid4().hex[:6]}", "-f", "json")
    used = cloud.openstack("port", "create", "--network", private["name"], "--device", str(uuid.uuid4()),
                           f"used-{uuid.uuid4().hex[:6]}", "-f", "json", cloud=DEMO)
    ports_before = Port.objects.count()
    instances_before = Instance.objects.count()
    missing = str(uuid.uuid4())
    cases = [
        ([{"uuid": missing}], 400, f"Network {missing} could not be found."),
        ([{"uuid": other["id"]}], 400, f"Network {other['id']} could not be found."),  # another project's
        ([{"port": missing}], 400, f"Port id {missing} could not be found."),
        ([{"port": used["id"]}], 409, f"Port {used['id']} is still in use."),
        ([{"uuid": private["id"], "fixed_ip": "10.99.0.5"}], 400, "is not in any subnet"),
        ([{"uuid": private["id"], "fixed_ip": used["fixed_ips"][0]["ip_address"]}], 400, "already in use"),
        ([{"uuid": private["id"], "fixed_ip": "not-an-ip"}], 400, "networks[0].fixed_ip"),
        ([{"uuid": "not-a-uuid"}], 400, "network uuid is not in proper format"),
        ([{"uuid": private["id"], "bogus": 1}], 400, "networks[0]"),
        ("some", 400, "'networks'"),
    ]
    for networks, status, words in cases:
        body = create_body(image, networks)
        body["server"]["flavorRef"] = flavor
        response = api.post("/compute/v2.1/servers", token=demo_token, json=body, headers=V237)
        assert response.status_code == status, (networks, response.text)
        fault = response.json()["badRequest" if status == 400 else "conflictingRequest"]
        assert fault["code"] == status and words in fault["message"], (networks, fault)
    assert Port.objects.count() == ports_before
    free = cloud.openstack("port", "create", "--network", private["name"], f"free-{uuid.uuid4().hex[:6]}",
                           "-f", "json", cloud=DEMO)
    many = create_body(image, [{"port": free["id"]}], min_count=2)
    many["server"]["flavorRef"] = flavor
    response = api.post("/compute/v2.1/servers", token=demo_token, json=many, headers=V237)
    assert response.status_code == 400
    assert "multiple instances with a single configured port" in response.json()["badRequest"]["message"]
    assert Port.objects.get(pk=free["id"]).device_id == ""
    assert Instance.objects.count() == instances_before


def test_a_network_step_that_fails_ends_the_boot_with_a_fault_and_no_port(cloud, nodes, image):
    """The network has no free address: the network step cannot make the
    port, the boot is tried on every host and ends in ERROR with nothing left
    (the API cannot know it ahead, as Nova cannot)."""
    project = cloud.openstack("project", "show", "demo", "-f", "json")["id"]
    full = cloud.openstack("network", "create", f"full-{uuid.uuid4().hex[:6]}", "-f", "json", cloud=DEMO)
    cloud.openstack("subnet", "create", "--network", full["id"], "--subnet-range", "10.78.9.0/29", "--no-dhcp",
                    "--allocation-pool", "start=10.78.9.2,end=10.78.9.2", f"full-{uuid.uuid4().hex[:6]}",
                    "-f", "json", cloud=DEMO)
    taken = cloud.openstack("port", "create", "--network", full["id"], f"taken-{uuid.uuid4().hex[:6]}",
                            "-f", "json", cloud=DEMO)
    result = cloud.openstack("server", "create", "--image", image, "--flavor", "m1.nano", "--network",
                             full["id"], "--wait", f"fail-{uuid.uuid4().hex[:6]}", cloud=DEMO, expect_fail=True)
    assert "ERROR" in result.stderr or "Error" in result.stderr, result.stderr
    instance = Instance.objects.filter(project_id=project).order_by("-created_at").first()
    shown = cloud.openstack("server", "show", str(instance.pk), "-f", "json", cloud=DEMO)
    assert shown["status"] == "ERROR" and shown["fault"]["message"]
    assert server_ports(str(instance.pk)) == []
    events = cloud.openstack("server", "event", "show", str(instance.pk),
                             cloud.openstack("server", "event", "list", str(instance.pk), "-f", "json",
                                             cloud=DEMO)[0]["Request ID"], "-f", "json")
    assert any(event["event"] == "network_plumb" and event["result"] == "Error" for event in events["events"])
    cloud.openstack("server", "delete", "--wait", str(instance.pk), cloud=DEMO)
    cloud.openstack("port", "delete", taken["id"], cloud=DEMO)
    cloud.openstack("network", "delete", full["id"], cloud=DEMO)


def test_interfaces_attach_and_detach_on_a_running_server(cloud, nodes, image, private):
    server = boot(cloud, image, f"iface-{uuid.uuid4().hex[:6]}", "--network", private["name"])
    sid = server["id"]
    port = cloud.openstack("port", "create", "--network", private["name"], f"extra-{uuid.uuid4().hex[:6]}",
                           "-f", "json", cloud=DEMO)
    cloud.openstack("server", "add", "port", sid, port["id"], cloud=DEMO)
    assert Port.objects.get(pk=port["id"]).status == "ACTIVE"
    cloud.openstack("server", "add", "fixed", "ip", "--fixed-ip-address", "10.77.0.60", sid, private["name"],
                    cloud=DEMO)
    listed = cloud.connect(DEMO).compute.get(f"/servers/{sid}/os-interface").json()["interfaceAttachments"]
    assert len(listed) == 3 and {i["port_state"] for i in listed} == {"ACTIVE"}
    assert "10.77.0.60" in [a["addr"] for a in addresses(cloud, sid)[private["name"]]]
    cloud.openstack("server", "remove", "fixed", "ip", sid, "10.77.0.60", cloud=DEMO)
    assert not Port.objects.filter(fixed_ips__ip_address="10.77.0.60", network_id=private["id"]).exists()
    cloud.openstack("server", "remove", "port", sid, port["id"], cloud=DEMO)
    detached = Port.objects.get(pk=port["id"])
    assert (detached.device_id, detached.status) == ("", "DOWN")
    assert len(cloud.connect(DEMO).compute.get(f"/servers/{sid}/os-interface").json()["interfaceAttachments"]) == 1

    group = cloud.openstack("security", "group", "create", f"web-{uuid.uuid4().hex[:6]}", "-f", "json", cloud=DEMO)
    cloud.openstack("server", "add", "security", "group", sid, group["name"], cloud=DEMO)
    (own,) = server_ports(sid)
    assert group["id"] in {str(g.pk) for g in own.security_groups.all()}
    cloud.openstack("server", "remove", "security", "group", sid, group["name"], cloud=DEMO)
    assert group["id"] not in {str(g.pk) for g in own.security_groups.all()}
    cloud.openstack("server", "delete", "--wait", sid, cloud=DEMO)
    assert server_ports(sid) == [] and Port.objects.filter(pk=port["id"]).exists()


def test_the_domain_gets_a_virtio_nic_per_port_on_its_bridge():
    from compute.virt import DomainSpec, Interface, get_driver
    from network.agent import resources

    port_id, network_id = str(uuid.uuid4()), str(uuid.uuid4())
    nic = Interface(mac="fa:16:3e:12:34:56", bridge=resources.bridge_name(network_id),
                    tap=resources.tap_name(port_id))
    driver = get_driver("test:///default")
    name = f"nic-{uuid.uuid4().hex[:6]}"
    spec = DomainSpec(name=name, uuid=str(uuid.uuid4()), vcpus=1, memory_mb=128,
                      console_log=Path(f"/tmp/{name}.log"), interfaces=[nic])
    driver.spawn(spec, timeout=10)
    try:
        xml = driver.conn.lookupByName(name).XMLDesc()
        assert "<interface type='bridge'>" in xml or '<interface type="bridge">' in xml
        assert "fa:16:3e:12:34:56" in xml and nic.tap in xml and nic.bridge in xml and "virtio" in xml
        second = Interface(mac="fa:16:3e:12:34:57", bridge=nic.bridge, tap=resources.tap_name(str(uuid.uuid4())))
        driver.attach_interface(name, second)
        assert "fa:16:3e:12:34:57" in driver.interface_macs(name, inactive=True)
        driver.detach_interface(name, second.mac)
        assert "fa:16:3e:12:34:57" not in driver.interface_macs(name, inactive=True)
    finally:
        driver.destroy(name)
        driver.close()



def test_a_boot_past_the_port_quota_is_refused_before_any_row(cloud, nodes, image, private):
    """Nova's answer: 403 "Maximum number of ports exceeded", no server made."""
    project = cloud.openstack("project", "show", "demo", "-f", "json")["id"]
    compute = cloud.connect(DEMO).compute
    cloud.openstack("quota", "set", "--ports", str(Port.objects.filter(project_id=project).count()), project)
    name = f"noport-{uuid.uuid4().hex[:6]}"
    try:
        response = compute.post("/servers", json={"server": {
            "name": name, "imageRef": image, "flavorRef": compute.find_flavor("m1.nano", ignore_missing=False).id,
            "networks": [{"uuid": private["id"]}]}})
    finally:
        cloud.openstack("quota", "set", "--ports", "500", project)
    assert response.status_code == 403, response.text
    assert response.json()["forbidden"]["message"] == "Maximum number of ports exceeded"
    assert not Instance.objects.filter(name=name).exists()
