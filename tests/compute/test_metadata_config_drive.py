"""The config drive: `server create --config-drive true` (or an image that
demands one) boots on a (simulated) node with an ISO9660 `config-2` volume
in the instance's directory holding the same metadata the metadata service
serves; the domain attaches it as a cdrom; it goes with the instance."""
import base64
import json
import subprocess
import uuid
import xml.etree.ElementTree as ET

import pytest

from compute.metadata.content import InstanceMetadata
from compute.models import Instance, VmState
from compute.node.agent import Node
from compute.virt.domain_xml import build
from compute.virt.libvirt_driver import LibvirtDriver
from network import ipam, ports
from network.models import Subnet
from tests.compute import pipeline
from tests.compute.nodes import wait_until
from tests.compute.pipeline import start_nodes, stop_nodes, upload_tiny_image

# The pipeline's module fixtures: a control worker on committed rows.
live_db = pipeline.live_db
control = pipeline.control

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIConfigDriveKey cd@test\n"
USER_DATA = b"#!/bin/sh\necho from the config drive\n"


def iso_file(iso, name):
    """A file of the ISO by its Rock Ridge name, read back with isoinfo."""
    result = subprocess.run(["isoinfo", "-R", "-i", str(iso), "-x", f"/{name}"], capture_output=True, check=True)
    return result.stdout


def iso_names(iso):
    listing = subprocess.run(["isoinfo", "-R", "-f", "-i", str(iso)], capture_output=True, text=True,
                             check=True).stdout
    return set(listing.split())


def iso_label(iso):
    info = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True, check=True).stdout
    return next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("Volume id:"))


def cdroms(domain_xml):
    return [disk for disk in ET.fromstring(domain_xml).iter("disk") if disk.get("device") == "cdrom"]


@pytest.mark.django_db
def test_the_node_writes_the_drive_and_the_domain_attaches_it_as_a_cdrom(tmp_path):
    network = ipam.create_network(project_id="cd-project", name="cd-net")
    Subnet.objects.create(network=network, project_id="cd-project", cidr="10.160.0.0/24", gateway_ip="10.160.0.1",
                          allocation_pools=[{"start": "10.160.0.10", "end": "10.160.0.20"}])
    instance = Instance.objects.create(
        name="cd-vm", hostname="cd-vm", project_id="cd-project", user_id="u", flavor_id_at_boot="1",
        flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, vm_state=VmState.BUILDING, key_name="k",
        key_data=KEY, user_data=base64.b64encode(USER_DATA).decode(), metadata={"role": "db"}, config_drive=True)
    port = ports.create_port(network, "cd-project", device_owner="compute:nova", device_id=str(instance.pk))
    plain = Instance.objects.create(
        name="plain-vm", project_id="cd-project", user_id="u", flavor_id_at_boot="1", flavor_name="m1.nano",
        vcpus=1, memory_mb=128, root_gb=1, vm_state=VmState.BUILDING)
    node = Node(f"cd-{uuid.uuid4().hex[:6]}", LibvirtDriver("test:///default"), simulated=True)
    node.directory = tmp_path / node.host

    spec = node.domain_spec(instance)
    iso = node.config_drive_path(instance.pk)
    assert spec.config_drive == iso and iso.is_file()
    assert iso_label(iso) == "config-2"
    names = iso_names(iso)
    for name in ("openstack/latest/meta_data.json", "openstack/latest/user_data", "openstack/latest/network_data.json",
                 "openstack/latest/vendor_data.json", "openstack/2012-08-10/meta_data.json",
                 "ec2/latest/meta-data.json", "ec2/latest/user-data", "ec2/2009-04-04/meta-data.json"):
        assert f"/{name}" in names, names
    meta = json.loads(iso_file(iso, "openstack/latest/meta_data.json"))
    assert meta["uuid"] == str(instance.pk) and meta["public_keys"] == {"k": KEY} and meta["meta"] == {"role": "db"}
    # The same content as the metadata service serves.
    assert meta == InstanceMetadata(instance).meta_data()
    assert iso_file(iso, "openstack/latest/user_data") == USER_DATA
    network_data = json.loads(iso_file(iso, "openstack/latest/network_data.json"))
    assert network_data["links"][0]["ethernet_mac_address"] == port.mac_address
    assert network_data["networks"][0]["ip_address"] == port.fixed_ips.get().ip_address
    ec2 = json.loads(iso_file(iso, "ec2/latest/meta-data.json"))
    assert ec2["instance-id"] == f"i-{instance.pk.hex[:8]}"
    assert ec2["public-keys"]["0"]["openssh-key"] == KEY
    assert iso_file(iso, "ec2/latest/user-data") == USER_DATA

    # The domain XML names it as a read-only cdrom, and libvirt takes it.
    [cdrom] = cdroms(build(spec, "qemu"))
    assert cdrom.find("source").get("file") == str(iso) and cdrom.find("readonly") is not None
    node.driver.spawn(spec, timeout=10)
    [defined] = cdroms(node.driver.conn.lookupByName(spec.name).XMLDesc())
    assert defined.find("source").get("file") == str(iso)

    # An instance without one gets neither the file nor the cdrom.
    plain_spec = node.domain_spec(plain)
    assert plain_spec.config_drive is None and not node.config_drive_path(plain.pk).exists()
    assert cdroms(build(plain_spec, "qemu")) == []

    # A drive already there is reused; deleting the instance removes it.
    before = iso.stat().st_mtime_ns
    node.domain_spec(instance)
    assert iso.stat().st_mtime_ns == before
    node.remove_instance(instance.pk)
    assert not iso.exists() and not node.instance_dir(instance.pk).exists()


@pytest.fixture(scope="module")
def node(cloud, control, tmp_path_factory):
    directory = tmp_path_factory.mktemp("config-drive")
    worker, hosts = start_nodes(cloud, directory, 1, "cdrive")
    yield directory / "nodes" / hosts[0]
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("cd-image"))


def test_server_create_with_config_drive_boots_with_the_drive_and_delete_removes_it(cloud, node, image, tmp_path):
    user_data = tmp_path / "user-data"
    user_data.write_bytes(USER_DATA)
    name = f"cd-{uuid.uuid4().hex[:6]}"
    server = cloud.openstack("server", "create", "--image", image, "--flavor", "m1.nano", "--nic", "none",
                             "--config-drive", "true", "--user-data", str(user_data), "--property", "role=cd",
                             "--wait", name, "-f", "json")
    assert server["status"] == "ACTIVE"
    assert cloud.openstack("server", "show", name, "-f", "json")["config_drive"] == "True"
    iso = node / "instances" / server["id"] / "disk.config"
    assert iso.is_file() and iso_label(iso) == "config-2"
    meta = json.loads(iso_file(iso, "openstack/latest/meta_data.json"))
    assert (meta["uuid"], meta["name"], meta["meta"]) == (server["id"], name, {"role": "cd"})
    assert iso_file(iso, "openstack/latest/user_data") == USER_DATA

    # A rebuild makes the drive again, from what the server is now.
    cloud.openstack("server", "set", "--property", "role=rebuilt", name)
    cloud.openstack("server", "rebuild", "--wait", name)
    assert json.loads(iso_file(iso, "openstack/latest/meta_data.json"))["meta"] == {"role": "rebuilt"}

    cloud.openstack("server", "delete", "--wait", name)
    assert not iso.exists() and not iso.parent.exists()


def test_an_image_that_demands_a_drive_gets_one_and_others_do_not(cloud, node, image, tmp_path):
    demanding = upload_tiny_image(cloud, tmp_path)
    conn = cloud.connect()
    conn.image.update_image(demanding, img_config_drive="mandatory")
    flavor = conn.compute.find_flavor("m1.nano", ignore_missing=False)
    servers = [conn.compute.create_server(name=f"cd-{uuid.uuid4().hex[:6]}", image_id=image_id,
                                          flavor_id=flavor.id, networks="none")
               for image_id in (demanding, image)]
    try:
        must, plain = [conn.compute.wait_for_server(server, wait=120) for server in servers]
        assert (must.has_config_drive, plain.has_config_drive) == ("True", "")
        assert (node / "instances" / must.id / "disk.config").is_file()
        assert (node / "instances" / plain.id / "disk").exists()
        assert not (node / "instances" / plain.id / "disk.config").exists()
    finally:
        for server in servers:
            conn.compute.delete_server(server)
    wait_until(lambda: not any((node / "instances" / server.id).exists() for server in servers), timeout=60,
               message="the servers' files removed")


def test_config_drive_that_is_no_boolean_is_a_400_naming_it(cloud, api, image):
    flavor = cloud.connect().compute.find_flavor("m1.nano", ignore_missing=False)
    response = api.post("/compute/v2.1/servers", token=cloud.token(), json={"server": {
        "name": "cd-bad", "imageRef": image, "flavorRef": flavor.id, "networks": "none",
        "config_drive": "some-volume"}})
    assert response.status_code == 400, response.text
    assert "config_drive" in response.json()["badRequest"]["message"]
    assert not Instance.objects.filter(name="cd-bad").exists()
