"""The metadata API on the live server, asked as the metadata proxies ask:
signed headers name the instance (or its network and address), and the
answer is that instance's key, user data and addresses, never another's."""
import base64
import json
import os
import subprocess
import sys
import uuid

import pytest
import requests
from django.conf import settings

from cloud import metadata_signature as signature
from compute.models import Instance, VmState
from tests.conftest import Api
from tests.network.conftest import Neutron, unique

KEY_1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMetadataTestKeyOne vm1@test\n"
KEY_2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMetadataTestKeyTwo vm2@test\n"
USER_DATA_1 = b"#!/bin/sh\necho hello from user data\n"


def make_instance(project_id, name, **fields):
    return Instance.objects.create(
        name=name, hostname=name, project_id=project_id, user_id="metadata-test-user", flavor_id_at_boot="1",
        flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, vm_state=VmState.ACTIVE,
        reservation_id="r-metadata", **fields)


@pytest.fixture(scope="module")
def world(cloud, django_db_blocker):
    """Two instances of the demo project, each with a port at 10.140.0.10,
    on two networks with the same CIDR; vm1 has a key, user data and
    metadata, vm2 only a key."""
    demo = cloud.connect("stratus-demo")
    project_id = demo.current_project_id
    neutron = Neutron(Api(cloud.url), demo.auth_token)
    with django_db_blocker.unblock():
        vm1 = make_instance(project_id, unique("vm1"), key_name="k1", key_data=KEY_1,
                            user_data=base64.b64encode(USER_DATA_1).decode(), metadata={"role": "web"},
                            image_id=str(uuid.uuid4()))
        vm2 = make_instance(project_id, unique("vm2"), key_name="k2", key_data=KEY_2)
    ports = {}
    networks = {}
    for name, instance in (("a", vm1), ("b", vm2)):
        network = neutron.network(name=unique(f"md-{name}"))
        subnet = neutron.subnet(network, "10.140.0.0/24", gateway_ip="10.140.0.1",
                                dns_nameservers=["10.140.0.53"])
        ports[name] = neutron.port(network, device_id=str(instance.pk), device_owner="compute:nova",
                                   fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "10.140.0.10"}])
        networks[name] = network
    yield {"vm1": vm1, "vm2": vm2, "project_id": project_id, "networks": networks, "ports": ports}
    for port in ports.values():
        neutron.delete(f"ports/{port['id']}")
    for network in networks.values():
        neutron.delete(f"networks/{network['id']}")
    with django_db_blocker.unblock():
        Instance.objects.filter(pk__in=[vm1.pk, vm2.pk]).delete()


def by_instance(instance, tenant_id=None, signed_as=None):
    return {"X-Instance-ID": str(instance.pk), "X-Tenant-ID": tenant_id or instance.project_id,
            signature.INSTANCE_SIGNATURE_HEADER: signature.instance_signature(
                settings.METADATA_SECRET, str(signed_as.pk if signed_as else instance.pk))}


def by_address(network_id, address, signed_network_id=None):
    return {"X-Neutron-Network-ID": network_id, "X-Forwarded-For": address,
            signature.NETWORK_SIGNATURE_HEADER: signature.address_signature(
                settings.METADATA_SECRET, signed_network_id or network_id, address)}


def get(cloud, path, headers):
    return requests.get(f"{cloud.url}/metadata{path}", headers=headers, timeout=30)


def test_signed_instance_id_gets_its_own_key_user_data_and_metadata(cloud, world):
    vm1 = world["vm1"]
    response = get(cloud, "/openstack/latest/meta_data.json", by_instance(vm1))
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    meta = response.json()
    assert meta["uuid"] == str(vm1.pk)
    assert meta["public_keys"] == {"k1": KEY_1}
    assert meta["keys"] == [{"name": "k1", "type": "ssh", "data": KEY_1}]
    assert (meta["name"], meta["hostname"], meta["launch_index"]) == (vm1.name, vm1.hostname, 0)
    assert (meta["project_id"], meta["availability_zone"]) == (world["project_id"], "nova")
    assert meta["meta"] == {"role": "web"} and meta["devices"] == []

    user_data = get(cloud, "/openstack/latest/user_data", by_instance(vm1))
    assert (user_data.status_code, user_data.content) == (200, USER_DATA_1)
    # A dated version answers too, and the listings name what there is.
    assert get(cloud, "/openstack/2012-08-10/meta_data.json", by_instance(vm1)).json()["uuid"] == str(vm1.pk)
    assert "latest" in get(cloud, "/openstack", by_instance(vm1)).text.split("\n")
    assert set(get(cloud, "/openstack/latest", by_instance(vm1)).text.split("\n")) == {
        "meta_data.json", "user_data", "password", "vendor_data.json", "network_data.json", "vendor_data2.json"}
    assert get(cloud, "/openstack/latest/vendor_data.json", by_instance(vm1)).json() == {}


def test_another_instance_gets_its_own_data_and_no_user_data(cloud, world):
    vm2 = world["vm2"]
    meta = get(cloud, "/openstack/latest/meta_data.json", by_instance(vm2)).json()
    assert meta["uuid"] == str(vm2.pk) and meta["public_keys"] == {"k2": KEY_2}
    assert get(cloud, "/openstack/latest/user_data", by_instance(vm2)).status_code == 404
    assert get(cloud, "/latest/user-data", by_instance(vm2)).status_code == 404
    assert "user_data" not in get(cloud, "/openstack/latest", by_instance(vm2)).text.split("\n")


def test_forged_or_missing_signature_is_403_and_reveals_nothing(cloud, world):
    vm1, vm2 = world["vm1"], world["vm2"]
    forged = {**by_instance(vm1), signature.INSTANCE_SIGNATURE_HEADER: "0" * 64}
    # vm2's genuine signature does not open vm1.
    borrowed = by_instance(vm1, signed_as=vm2)
    unsigned = {k: v for k, v in by_instance(vm1).items() if k != signature.INSTANCE_SIGNATURE_HEADER}
    for headers in (forged, borrowed, unsigned):
        response = get(cloud, "/openstack/latest/meta_data.json", headers)
        assert response.status_code == 403, response.text
        assert "Invalid proxy request signature" in response.text
        assert "ssh-ed25519" not in response.text
    # The same for an address: a signature made for network a is no good on network b.
    replayed = by_address(world["networks"]["b"]["id"], "10.140.0.10", signed_network_id=world["networks"]["a"]["id"])
    response = get(cloud, "/latest/meta-data/public-keys/0/openssh-key", replayed)
    assert response.status_code == 403 and "ssh-ed25519" not in response.text


def test_instance_of_another_project_than_the_proxy_says_is_404(cloud, world):
    response = get(cloud, "/openstack/latest/meta_data.json", by_instance(world["vm1"], tenant_id="other-project"))
    assert response.status_code == 404 and "ssh-ed25519" not in response.text


def test_the_same_address_on_another_network_is_the_other_instance(cloud, world):
    """Both ports are 10.140.0.10: the network decides, never the address alone."""
    for network, instance, key in (("a", world["vm1"], KEY_1), ("b", world["vm2"], KEY_2)):
        headers = by_address(world["networks"][network]["id"], "10.140.0.10")
        meta = get(cloud, "/openstack/latest/meta_data.json", headers).json()
        assert meta["uuid"] == str(instance.pk)
        assert get(cloud, "/latest/meta-data/public-keys/0/openssh-key", headers).text == key
    # An address nobody has on the network, or an unknown network: 404.
    assert get(cloud, "/openstack/latest/meta_data.json",
               by_address(world["networks"]["a"]["id"], "10.140.0.11")).status_code == 404
    assert get(cloud, "/openstack/latest/meta_data.json",
               by_address(str(uuid.uuid4()), "10.140.0.10")).status_code == 404
    # X-Forwarded-For with a proxy's address appended: the guest's is first.
    headers = by_address(world["networks"]["a"]["id"], "10.140.0.10")
    headers["X-Forwarded-For"] = "10.140.0.10, 192.0.2.7"
    assert get(cloud, "/openstack/latest/meta_data.json", headers).json()["uuid"] == str(world["vm1"].pk)


def test_ec2_paths(cloud, world):
    vm1 = world["vm1"]
    headers = by_instance(vm1)
    assert "latest" in get(cloud, "/", headers).text.split("\n")
    assert "2009-04-04" in get(cloud, "/", headers).text.split("\n")
    assert get(cloud, "/latest", headers).text.split("\n") == ["meta-data/", "user-data"]
    index = get(cloud, "/latest/meta-data/", headers).text.split("\n")
    for name in ("hostname", "instance-id", "local-ipv4", "public-ipv4", "placement/", "public-keys/"):
        assert name in index
    assert get(cloud, "/latest/meta-data/public-keys/", headers).text == "0=k1"
    assert get(cloud, "/latest/meta-data/public-keys/0/", headers).text == "openssh-key"
    assert get(cloud, "/latest/meta-data/public-keys/0/openssh-key", headers).text == KEY_1
    assert get(cloud, "/latest/meta-data/hostname", headers).text == vm1.hostname
    assert get(cloud, "/latest/meta-data/instance-id", headers).text == f"i-{vm1.pk.hex[:8]}"
    assert get(cloud, "/2009-04-04/meta-data/instance-id", headers).text == f"i-{vm1.pk.hex[:8]}"
    assert get(cloud, "/latest/meta-data/local-ipv4", headers).text == "10.140.0.10"
    assert get(cloud, "/latest/meta-data/public-ipv4", headers).text == ""
    assert get(cloud, "/latest/meta-data/placement/availability-zone", headers).text == "nova"
    assert get(cloud, "/latest/meta-data/security-groups", headers).text == "default"
    assert get(cloud, "/latest/user-data", headers).content == USER_DATA_1
    assert get(cloud, "/latest/meta-data/no-such-thing", headers).status_code == 404
    assert get(cloud, "/1999-01-01/meta-data/hostname", headers).status_code == 404


def test_network_data_describes_the_instances_ports(cloud, world):
    port = world["ports"]["a"]
    data = get(cloud, "/openstack/latest/network_data.json", by_instance(world["vm1"])).json()
    assert [(link["vif_id"], link["ethernet_mac_address"], link["mtu"]) for link in data["links"]] == [
        (port["id"], port["mac_address"], world["networks"]["a"]["mtu"])]
    [network] = data["networks"]
    assert (network["ip_address"], network["netmask"], network["type"]) == ("10.140.0.10", "255.255.255.0",
                                                                           "ipv4_dhcp")
    assert network["link"] == data["links"][0]["id"] and network["network_id"] == world["networks"]["a"]["id"]
    assert {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.140.0.1"} in network["routes"]
    assert data["services"] == [{"type": "dns", "address": "10.140.0.53"}]
    # Not published before the version that introduced it.
    assert get(cloud, "/openstack/2013-04-04/network_data.json", by_instance(world["vm1"])).status_code == 404


def test_bad_requests_are_4xx_in_plain_text(cloud, world, django_db_blocker):
    vm1 = world["vm1"]
    assert get(cloud, "/openstack/latest/meta_data.json", {}).status_code == 400
    unsigned_tenant = {k: v for k, v in by_instance(vm1).items() if k != "X-Tenant-ID"}
    assert get(cloud, "/openstack/latest/meta_data.json", unsigned_tenant).status_code == 400
    junk = by_address("not-a-network", "not-an-address")
    response = get(cloud, "/openstack/latest/meta_data.json", junk)
    assert response.status_code == 400 and "X-Neutron-Network-ID" in response.text
    garbage_id = {**by_instance(vm1), "X-Instance-ID": "nonsense"}
    garbage_id[signature.INSTANCE_SIGNATURE_HEADER] = signature.instance_signature(settings.METADATA_SECRET,
                                                                                   "nonsense")
    assert get(cloud, "/openstack/latest/meta_data.json", garbage_id).status_code == 404
    posted = requests.post(f"{cloud.url}/metadata/openstack/latest/meta_data.json", headers=by_instance(vm1),
                           data="x", timeout=30)
    assert posted.status_code == 405 and posted.headers["Content-Type"].startswith("text/plain")
    assert get(cloud, "/openstack/1999-01-01/meta_data.json", by_instance(vm1)).status_code == 404


def test_the_guest_posts_its_password_once_and_the_owner_reads_and_clears_it(cloud, api, world):
    vm1 = world["vm1"]
    demo, admin = cloud.token("stratus-demo"), cloud.token("stratus")
    password_url = f"/compute/v2.1/servers/{vm1.pk}/os-server-password"
    assert api.get(password_url, token=demo).json() == {"password": ""}
    assert get(cloud, "/openstack/latest/password", by_instance(vm1)).text == ""

    def post(body, instance=vm1, version="latest"):
        return requests.post(f"{cloud.url}/metadata/openstack/{version}/password", headers=by_instance(instance),
                             data=body, timeout=30)

    assert post("x" * 257).status_code == 400  # longer than Nova takes
    assert post("c2VjcmV0", version="2012-08-10").status_code == 404  # not in that version yet
    forged = {**by_instance(vm1), signature.INSTANCE_SIGNATURE_HEADER: "0" * 64}
    assert requests.post(f"{cloud.url}/metadata/openstack/latest/password", headers=forged, data="forged",
                         timeout=30).status_code == 403
    assert post("c2VjcmV0").status_code == 200
    assert post("b3RoZXI=").status_code == 409  # once, until the owner clears it
    assert api.get(password_url, token=demo).json() == {"password": "c2VjcmV0"}
    assert get(cloud, "/openstack/latest/password", by_instance(vm1)).text == "c2VjcmV0"
    assert get(cloud, "/openstack/latest/password", by_instance(world["vm2"])).text == ""  # not vm2's
    assert api.get(password_url, token=admin).json() == {"password": "c2VjcmV0"}  # a cloud admin's too, as Nova's
    assert api.get(f"/compute/v2.1/servers/{uuid.uuid4()}/os-server-password", token=demo).status_code == 404
    assert api.delete(password_url, token=demo).status_code == 204
    assert api.get(password_url, token=demo).json() == {"password": ""}
    assert post("bmV3").status_code == 200


def test_a_deleted_instance_is_404(cloud, world, django_db_blocker):
    with django_db_blocker.unblock():
        gone = make_instance(world["project_id"], unique("gone"), key_name="k", key_data=KEY_1)
        Instance.objects.filter(pk=gone.pk).update(deleted=True, vm_state=VmState.DELETED)
    try:
        response = get(cloud, "/openstack/latest/meta_data.json", by_instance(gone))
        assert response.status_code == 404 and "ssh-ed25519" not in response.text
    finally:
        with django_db_blocker.unblock():
            Instance.objects.filter(pk=gone.pk).delete()


def test_meta_data_is_json_the_guest_script_reads(cloud, world):
    """The stratus-tiny guest greps the key out of the raw JSON."""
    raw = get(cloud, "/openstack/latest/meta_data.json", by_instance(world["vm1"])).text
    assert json.loads(raw)["public_keys"]["k1"] == KEY_1
    assert '"hostname": "%s"' % world["vm1"].hostname in raw


def test_a_port_of_another_project_naming_the_instance_speaks_not_for_it(cloud, world):
    """Anyone may put any device_id on a port of theirs: only a port of the
    instance's own project leads to it."""
    admin = Neutron(Api(cloud.url), cloud.token("stratus"))
    network = admin.network(name=unique("md-impostor"))
    subnet = admin.subnet(network, "10.141.0.0/24")
    impostor = admin.port(network, device_id=str(world["vm1"].pk), device_owner="compute:nova",
                          fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "10.141.0.10"}])
    try:
        for path in ("/openstack/latest/meta_data.json", "/latest/meta-data/public-keys/0/openssh-key",
                     "/latest/user-data"):
            response = get(cloud, path, by_address(network["id"], "10.141.0.10"))
            assert response.status_code == 404, response.text
            assert "ssh-ed25519" not in response.text and "hello from user data" not in response.text
    finally:
        admin.delete(f"ports/{impostor['id']}")
        admin.delete(f"networks/{network['id']}")


def test_public_ipv4_is_the_floating_ip_of_the_instances_port(cloud, world):
    admin = Neutron(Api(cloud.url), cloud.token("stratus"))
    demo = Neutron(Api(cloud.url), cloud.token("stratus-demo"))
    external = admin.network(name=unique("md-ext"), **{"router:external": True})
    admin.subnet(external, "172.30.40.0/24", gateway_ip="172.30.40.1")
    router = demo.create("routers", "router", name=unique("md-r"),
                         external_gateway_info={"network_id": external["id"]})
    subnet_a = world["ports"]["a"]["fixed_ips"][0]["subnet_id"]
    assert demo.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet_a}).status_code == 200
    floating = demo.create("floatingips", "floatingip", floating_network_id=external["id"],
                           port_id=world["ports"]["a"]["id"])
    try:
        headers = by_instance(world["vm1"])
        assert get(cloud, "/latest/meta-data/public-ipv4", headers).text == floating["floating_ip_address"]
        assert get(cloud, "/latest/meta-data/local-ipv4", headers).text == "10.140.0.10"
    finally:
        demo.delete(f"floatingips/{floating['id']}")
        demo.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet_a})
        demo.delete(f"routers/{router['id']}")
        admin.delete(f"networks/{external['id']}")


PRINT_SECRET = "from django.conf import settings; print(settings.METADATA_SECRET)"


def metadata_secret_of(var_dir, **env):
    environment = {key: value for key, value in os.environ.items() if key != "STRATUS_METADATA_SECRET"}
    environment.update({"STRATUS_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "cloud.settings", **env})
    return subprocess.Popen([sys.executable, "-c", PRINT_SECRET], env=environment, stdout=subprocess.PIPE,
                            text=True, cwd=settings.BASE_DIR)


def test_the_metadata_secret_is_generated_once_and_never_empty(tmp_path):
    # Processes starting together (gunicorn's workers) all get the one secret written.
    processes = [metadata_secret_of(tmp_path / "fresh") for _ in range(4)]
    secrets = {process.communicate(timeout=60)[0].strip() for process in processes}
    stored = tmp_path / "fresh" / "metadata_secret"
    assert secrets == {stored.read_text().strip()} and len(stored.read_text().strip()) >= 40
    assert stored.stat().st_mode & 0o777 == 0o600
    # An empty STRATUS_METADATA_SECRET is no secret: the generated one is used.
    empty = metadata_secret_of(tmp_path / "fresh", STRATUS_METADATA_SECRET="").communicate(timeout=60)[0].strip()
    assert empty == stored.read_text().strip()
    given = metadata_secret_of(tmp_path / "other", STRATUS_METADATA_SECRET="s3cret").communicate(timeout=60)[0]
    assert given.strip() == "s3cret"
