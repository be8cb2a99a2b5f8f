"""The metadata proxy in a real DHCP namespace: a fake machine takes its
address from dnsmasq, follows the metadata route into the namespace and
reads its own instance's key and user data from the live API, whatever
identity it claims itself; on an IPv6-only network it asks
[fe80::a9fe:a9fe] on its link and is answered for its own instance."""
import base64
import json
import subprocess
import sys
import time

import pytest
import requests

from compute.models import Instance, VmState
from network.agent import bridges, dhcp, iplib, metadata_proxy
from network.agent.resources import FixedIP, Network, Port, Subnet
from tests.network.conftest import Neutron, unique

from .conftest import mac_of, new_id

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProxyTestKey guest@test\n"
USER_DATA = b"#cloud-config\nhostname: through-the-proxy\n"
METADATA = "http://169.254.169.254"


class _Requests:
    def __init__(self, url):
        self.url = url

    def request(self, method, path, token=None, **kwargs):
        headers = {"X-Auth-Token": token} if token else {}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def tenant(cloud, django_db_blocker):
    """A demo network and subnet, an instance with a key and user data and
    its port at 10.150.0.10, through the API; removed afterwards."""
    demo = cloud.connect("stratus-demo")
    neutron = Neutron(_Requests(cloud.url), demo.auth_token)
    network = neutron.network(name=unique("md-proxy"))
    subnet = neutron.subnet(network, "10.150.0.0/24", gateway_ip="10.150.0.1")
    with django_db_blocker.unblock():
        instance = Instance.objects.create(
            name="guest", hostname="guest", project_id=demo.current_project_id, user_id="u", flavor_id_at_boot="1",
            flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, vm_state=VmState.ACTIVE, key_name="k",
            key_data=KEY, user_data=base64.b64encode(USER_DATA).decode())
    port = neutron.port(network, device_id=str(instance.pk), device_owner="compute:nova",
                        fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "10.150.0.10"}])
    yield {"network": network, "subnet": subnet, "port": port, "instance": instance}
    neutron.delete(f"ports/{port['id']}")
    neutron.delete(f"networks/{network['id']}")
    with django_db_blocker.unblock():
        Instance.objects.filter(pk=instance.pk).delete()


def curl(machine, path, *options):
    """(HTTP status, body) of a GET from the machine; status 0 when nothing answered."""
    result = machine.run("curl", "-s", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", *options,
                         METADATA + path)
    body, _, status = result.stdout.rpartition("\n")
    return int(status or 0), body


def test_a_machine_reads_its_own_metadata_through_the_proxy(lab, cloud, tenant):
    host = lab.host()
    network = Network(id=tenant["network"]["id"], mtu=tenant["network"]["mtu"])
    subnet = Subnet(id=tenant["subnet"]["id"], cidr="10.150.0.0/24", gateway_ip="10.150.0.1")
    bridges.ensure_network(host, network)
    dhcp_port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(2),
                     fixed_ips=(FixedIP(subnet.id, "10.150.0.2"),))
    guest_port = Port(id=tenant["port"]["id"], network_id=network.id, mac_address=tenant["port"]["mac_address"],
                      fixed_ips=(FixedIP(subnet.id, "10.150.0.10"),), hostname="guest")
    # An address the DHCP server hands out but no instance holds.
    stranger_port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(77),
                         fixed_ips=(FixedIP(subnet.id, "10.150.0.77"),))
    lab.enable_dhcp(host, network, [subnet], dhcp_port, [guest_port, stranger_port])
    guest = lab.machine(host, network, guest_port)
    stranger = lab.machine(host, network, stranger_port)
    for machine in (guest, stranger):
        lease = machine.dhcp()
        # The route option 121 gives (the udhcpc script of the lab applies only the address).
        destination, gateway = lease["staticroutes"].split()[:2]
        assert destination == "169.254.169.254/32"
        machine.run("ip", "route", "add", destination, "via", gateway, check=True)

    namespace = dhcp.namespace_name(network)
    proxy = metadata_proxy.start(namespace, network.id, f"{cloud.url}/metadata")
    try:
        assert metadata_proxy.start(namespace, network.id, f"{cloud.url}/metadata") is proxy  # idempotent
        assert network.id in metadata_proxy.running()

        status, body = curl(guest, "/openstack/latest/meta_data.json")
        assert status == 200, body
        meta = json.loads(body)
        assert meta["uuid"] == str(tenant["instance"].pk) and meta["public_keys"] == {"k": KEY}
        assert curl(guest, "/latest/meta-data/public-keys/0/openssh-key") == (200, KEY)
        assert curl(guest, "/latest/meta-data/local-ipv4") == (200, "10.150.0.10")
        assert curl(guest, "/openstack/latest/user_data") == (200, USER_DATA.decode())

        # A guest naming another identity itself is still only itself.
        forged = ("-H", f"X-Neutron-Network-ID: {new_id()}", "-H", "X-Forwarded-For: 10.150.0.77",
                  "-H", "X-Instance-ID: someone-else", "-H", "X-Neutron-Network-ID-Signature: forged")
        status, body = curl(guest, "/openstack/latest/meta_data.json", *forged)
        assert status == 200 and json.loads(body)["uuid"] == str(tenant["instance"].pk)
        # An address no instance has gets a 404, and nobody's key.
        status, body = curl(stranger, "/openstack/latest/meta_data.json")
        assert status == 404 and "ssh-ed25519" not in body
        status, body = curl(stranger, "/latest/meta-data/public-keys/0/openssh-key", *forged)
        assert status == 404 and "ssh-ed25519" not in body
    finally:
        assert metadata_proxy.stop(network.id) is True
    assert metadata_proxy.stop(network.id) is False
    assert curl(guest, "/openstack/latest/meta_data.json")[0] == 0  # nothing listens any more


@pytest.fixture
def tenant6(cloud, django_db_blocker):
    """An IPv6-only demo network (DHCPv6-stateful), an instance with a key
    and its port, a port of no instance; removed afterwards."""
    demo = cloud.connect("stratus-demo")
    neutron = Neutron(_Requests(cloud.url), demo.auth_token)
    network = neutron.network(name=unique("md-proxy6"))
    subnet = neutron.create("subnets", "subnet", network_id=network["id"], cidr="2001:db8:151::/64", ip_version=6,
                            ipv6_ra_mode="dhcpv6-stateful", ipv6_address_mode="dhcpv6-stateful")
    with django_db_blocker.unblock():
        instance = Instance.objects.create(
            name="guest6", hostname="guest6", project_id=demo.current_project_id, user_id="u",
            flavor_id_at_boot="1", flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1,
            vm_state=VmState.ACTIVE, key_name="k", key_data=KEY, user_data=base64.b64encode(USER_DATA).decode())
    port = neutron.port(network, device_id=str(instance.pk), device_owner="compute:nova")
    stranger = neutron.port(network)
    yield {"network": network, "subnet": subnet, "port": port, "stranger": stranger, "instance": instance}
    for made in (port, stranger):
        neutron.delete(f"ports/{made['id']}")
    neutron.delete(f"networks/{network['id']}")
    with django_db_blocker.unblock():
        Instance.objects.filter(pk=instance.pk).delete()


def curl6(machine, path, *options):
    """(HTTP status, body) of a GET of [fe80::a9fe:a9fe] on the machine's link."""
    for _ in range(50):   # its link-local address is usable once duplicate address detection is done
        if not machine.run("ip", "-6", "-o", "addr", "show", "dev", "eth0", "tentative").stdout.strip():
            break
        time.sleep(0.1)
    result = machine.run("curl", "-g", "-s", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", *options,
                         f"http://[{metadata_proxy.METADATA_IPV6}%25eth0]{path}")
    body, _, status = result.stdout.rpartition("\n")
    return int(status or 0), body


def test_an_ipv6_only_machine_reads_its_own_metadata_at_the_link_local_address(lab, cloud, tenant6):
    host = lab.host()
    network = Network(id=tenant6["network"]["id"], mtu=tenant6["network"]["mtu"])
    subnet = Subnet(id=tenant6["subnet"]["id"], cidr="2001:db8:151::/64", gateway_ip="2001:db8:151::1",
                    ipv6_ra_mode="dhcpv6-stateful", ipv6_address_mode="dhcpv6-stateful")
    bridges.ensure_network(host, network)
    dhcp_port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(2),
                     fixed_ips=(FixedIP(subnet.id, "2001:db8:151::2"),))
    ports = [Port(id=made["id"], network_id=network.id, mac_address=made["mac_address"],
                  fixed_ips=tuple(FixedIP(subnet.id, fixed["ip_address"]) for fixed in made["fixed_ips"]))
             for made in (tenant6["port"], tenant6["stranger"])]
    lab.enable_dhcp(host, network, [subnet], dhcp_port, ports)
    guest, stranger = (lab.machine(host, network, port) for port in ports)
    namespace = dhcp.namespace_name(network)
    metadata_proxy.start(namespace, network.id, f"{cloud.url}/metadata", interface=dhcp.DHCP_INTERFACE)
    try:
        status, body = curl6(guest, "/openstack/latest/meta_data.json")
        assert status == 200, body
        meta = json.loads(body)
        assert meta["uuid"] == str(tenant6["instance"].pk) and meta["public_keys"] == {"k": KEY}
        assert curl6(guest, "/latest/meta-data/public-keys/0/openssh-key") == (200, KEY)
        assert curl6(guest, "/openstack/latest/user_data") == (200, USER_DATA.decode())
        # Identity headers of its own change nothing.
        status, body = curl6(guest, "/openstack/latest/meta_data.json", "-H", "X-Forwarded-For: fe80::1",
                             "-H", f"X-Neutron-Network-ID: {new_id()}")
        assert status == 200 and json.loads(body)["uuid"] == str(tenant6["instance"].pk)
        # A port of no instance on the same link gets a 404, and nobody's key.
        status, body = curl6(stranger, "/latest/meta-data/public-keys/0/openssh-key")
        assert status == 404 and "ssh-ed25519" not in body
        # The address answers but is never the namespace's own source (deprecated).
        shown = iplib.run(namespace, ["ip", "-6", "addr", "show", "dev", dhcp.DHCP_INTERFACE]).stdout
        line = next(line for line in shown.splitlines() if f"{metadata_proxy.METADATA_IPV6}/64" in line)
        assert "deprecated" in line.split(), shown
    finally:
        assert metadata_proxy.stop(network.id) is True
    assert curl6(guest, "/openstack/latest/meta_data.json")[0] == 0  # nothing listens any more


def test_bad_requests_and_an_absent_upstream_are_answered_by_the_proxy(lab, tenant):
    host = lab.host()
    network = Network(id=tenant["network"]["id"], mtu=tenant["network"]["mtu"])
    subnet = Subnet(id=tenant["subnet"]["id"], cidr="10.150.0.0/24", gateway_ip="10.150.0.1")
    bridges.ensure_network(host, network)
    dhcp_port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(2),
                     fixed_ips=(FixedIP(subnet.id, "10.150.0.2"),))
    guest_port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(10),
                      fixed_ips=(FixedIP(subnet.id, "10.150.0.10"),))
    lab.enable_dhcp(host, network, [subnet], dhcp_port, [guest_port])
    guest = lab.machine(host, network, guest_port)
    guest.set_address("10.150.0.10/24")
    guest.run("ip", "route", "add", "169.254.169.254/32", "via", "10.150.0.2", check=True)
    # Nothing listens upstream (port 9 of loopback, discard).
    metadata_proxy.start(dhcp.namespace_name(network), network.id, "http://127.0.0.1:9/metadata", secret="s")
    try:
        status, body = curl(guest, "/openstack/latest/meta_data.json")
        assert status == 502 and "cannot be reached" in body
        status, _ = curl(guest, "/openstack/latest/meta_data.json", "-H", "Transfer-Encoding: chunked",
                         "--data-binary", "x")
        assert status == 411
        status, _ = curl(guest, "/", "-H", "X-Junk: " + "j" * (metadata_proxy.MAX_HEAD_BYTES + 10))
        assert status == 400
        raw = guest.run(sys.executable, "-c", RAW_REQUEST, "GARBAGE\r\n\r\n").stdout
        assert raw.startswith("HTTP/1.1 400")
    finally:
        metadata_proxy.stop(network.id)


RAW_REQUEST = """
import socket, sys
sock = socket.create_connection(("169.254.169.254", 80), timeout=10)
sock.sendall(sys.argv[1].encode())
print(sock.recv(4096).decode())
"""


def test_python_m_entry_serves_until_terminated(lab, cloud, tenant):
    network = Network(id=tenant["network"]["id"], mtu=tenant["network"]["mtu"])
    namespace = lab.namespace("md")
    process = subprocess.Popen(
        [sys.executable, "-m", "network.agent.metadata_proxy", "--namespace", namespace, "--network-id", network.id,
         "--upstream", f"{cloud.url}/metadata", "--port", "8775"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "forwarding to" in process.stdout.readline()
        # Asked from inside the namespace, from an address no port has: the API's 404.
        deadline = time.monotonic() + 10
        while True:
            result = iplib.run(namespace, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                                           "http://169.254.169.254:8775/openstack/latest/meta_data.json"],
                               check=False)
            if result.stdout == "404" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert result.stdout == "404"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_a_namespace_made_again_gets_a_new_listener(lab, cloud, tenant):
    """DHCP disabled and enabled makes a new namespace of the same name:
    starting the proxy again listens in the new one, not the gone one."""
    host = lab.host()
    network = Network(id=tenant["network"]["id"], mtu=tenant["network"]["mtu"])
    subnet = Subnet(id=tenant["subnet"]["id"], cidr="10.150.0.0/24", gateway_ip="10.150.0.1")
    bridges.ensure_network(host, network)
    dhcp_port = Port(id=new_id(), network_id=network.id, mac_address=mac_of(2),
                     fixed_ips=(FixedIP(subnet.id, "10.150.0.2"),))
    guest_port = Port(id=tenant["port"]["id"], network_id=network.id, mac_address=tenant["port"]["mac_address"],
                      fixed_ips=(FixedIP(subnet.id, "10.150.0.10"),))
    lab.enable_dhcp(host, network, [subnet], dhcp_port, [guest_port])
    guest = lab.machine(host, network, guest_port)
    guest.set_address("10.150.0.10/24")
    guest.run("ip", "route", "add", "169.254.169.254/32", "via", "10.150.0.2", check=True)
    namespace = dhcp.namespace_name(network)
    first = metadata_proxy.start(namespace, network.id, f"{cloud.url}/metadata")
    try:
        assert curl(guest, "/latest/meta-data/local-ipv4") == (200, "10.150.0.10")
        dhcp.disable(host, network)
        lab.enable_dhcp(host, network, [subnet], dhcp_port, [guest_port])
        second = metadata_proxy.start(namespace, network.id, f"{cloud.url}/metadata")
        assert second is not first and not first.serving
        assert curl(guest, "/latest/meta-data/public-keys/0/openssh-key") == (200, KEY)
    finally:
        metadata_proxy.stop(network.id)
