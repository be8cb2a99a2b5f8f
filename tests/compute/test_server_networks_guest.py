"""The boot flow an OpenStack user knows, on real kernel objects and a real
guest: the stock `openstack` CLI against the live API, a control worker and
a node worker on qemu:///system (TCG here) whose network agent plumbs the
bridges, DHCP, router and firewall in the root namespace. One stratus-tiny
guest for the module (about 2-3 minutes under TCG on a loaded machine).

The external network is a flat network on a veth whose other end is in a
namespace this module makes: the "outside world". No packet leaves the
namespaces and bridges the module and its agent made."""
import ipaddress
import shutil
import subprocess
import uuid

import pytest

from compute.models import Instance
from network.agent import resources
from network.models import Port
from tests.compute import pipeline, test_node_qemu
from tests.compute.nodes import NodeWorker, forget_hosts, wait_until
from tests.compute.pipeline import ControlWorker
from tests.compute.test_real_boot import guest_image_path

# Fixtures of the real-boot tests: the live database and qemu:///system.
live_db, hypervisor = pipeline.live_db, test_node_qemu.hypervisor

pytestmark = pytest.mark.live

DEMO = "stratus-demo"
PRIVATE_CIDR = "10.79.0.0/24"
EXTERNAL_CIDR = "172.31.251.0/24"
OUTSIDE_ADDRESS = "172.31.251.1"
# The node's VXLAN underlay: an address on a veth of its own (no peer node,
# so no VXLAN packet is ever sent).
UNDERLAY_ADDRESS = "198.18.251.1"
USER_DATA = "#!/bin/sh\necho user-data-says-$((6 * 7))\n"


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def outside():
    """A namespace on the external network's wire: (namespace, the root
    side's interface the agent bridges into the flat network), and the
    node's underlay interface."""
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-client is needed to log in to the guest")
    suffix = uuid.uuid4().hex[:6]
    namespace, wire, peer = f"stratus-outside-{suffix}", f"sxw-{suffix}", f"sxp-{suffix}"
    underlay = f"sxu-{suffix}"
    ip("netns", "add", namespace)
    try:
        ip("link", "add", underlay, "type", "veth", "peer", "name", f"sxv-{suffix}")
        ip("address", "add", f"{UNDERLAY_ADDRESS}/32", "dev", underlay)
        ip("link", "set", underlay, "up")
        ip("link", "add", wire, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", namespace)
        ip("-n", namespace, "link", "set", "lo", "up")
        ip("-n", namespace, "link", "set", peer, "up")
        ip("-n", namespace, "address", "add", f"{OUTSIDE_ADDRESS}/24", "dev", peer)
        ip("link", "set", wire, "up")
        yield namespace, wire
    finally:
        subprocess.run(["ip", "link", "del", wire], capture_output=True)
        subprocess.run(["ip", "link", "del", underlay], capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


@pytest.fixture(scope="module")
def real_node(live_db, cloud, hypervisor, outside, tmp_path_factory):
    base = tmp_path_factory.mktemp("guestnet")
    control = ControlWorker(base / "control.log").start()
    host = f"guestnet-{uuid.uuid4().hex[:6]}"
    worker = NodeWorker(["--host", host, "--uri", "qemu:///system"], base / "node.log",
                        STRATUS_PUBLIC_URL=cloud.url, STRATUS_NODES_DIR=str(base / "nodes"),
                        STRATUS_NETWORK_STATE_DIR=str(base / "network"),
                        STRATUS_PHYSICAL_INTERFACE_MAPPINGS=f"public:{outside[1]}",
                        STRATUS_TUNNEL_IP=UNDERLAY_ADDRESS,
                        STRATUS_SHUTDOWN_TIMEOUT="2").start()
    yield {"host": host, "state_dir": base / "network", "worker": worker}
    # A test that failed half way leaves no guest running under TCG for the rest of the run.
    left = [str(pk) for pk in Instance.objects.filter(host=host, deleted=False).values_list("pk", flat=True)]
    if left:
        try:
            cloud.openstack("server", "delete", "--wait", *left)
        except AssertionError:
            pass  # a best effort: the test's own failure is what it reports
    worker.stop()
    control.stop()
    forget_hosts([host])


def in_namespace(namespace, *command, timeout=60):
    return subprocess.run(["ip", "netns", "exec", namespace, *command], capture_output=True, text=True,
                          timeout=timeout)


def ssh(namespace, key, address, command, connect_timeout=10):
    return in_namespace(namespace, "ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                        "-o", "UserKnownHostsFile=/dev/null", "-o", f"ConnectTimeout={connect_timeout}",
                        f"root@{address}", command, timeout=connect_timeout + 60)


def test_boot_with_key_and_user_data_then_ssh_through_the_router_and_a_floating_ip(
        cloud, real_node, outside, tmp_path):
    demo = lambda *args, **kwargs: cloud.openstack(*args, cloud=DEMO, **kwargs)  # noqa: E731
    admin = cloud.openstack
    name = f"guestnet-{uuid.uuid4().hex[:6]}"
    outside_namespace, _ = outside

    public = admin("network", "create", "--external", "--provider-network-type", "flat",
                   "--provider-physical-network", "public", f"{name}-public", "-f", "json")
    admin("subnet", "create", "--network", public["id"], "--subnet-range", EXTERNAL_CIDR, "--no-dhcp",
          "--gateway", OUTSIDE_ADDRESS, "--allocation-pool", "start=172.31.251.10,end=172.31.251.50",
          f"{name}-public-sub", "-f", "json")
    image = admin("image", "create", "--disk-format", "qcow2", "--container-format", "bare",
                  "--file", guest_image_path(), "--public", f"{name}-tiny", "-f", "json")

    demo("network", "create", f"{name}-private", "-f", "json")
    demo("subnet", "create", "--network", f"{name}-private", "--subnet-range", PRIVATE_CIDR,
         f"{name}-private-sub", "-f", "json")
    router = demo("router", "create", f"{name}-router", "-f", "json")
    demo("router", "set", "--external-gateway", public["id"], router["id"])
    demo("router", "add", "subnet", router["id"], f"{name}-private-sub")
    group = demo("security", "group", "create", f"{name}-ssh", "-f", "json")
    rule = demo("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
                "--remote-ip", "0.0.0.0/0", group["id"], "-f", "json")

    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    demo("keypair", "create", "--public-key", str(key.with_suffix(".pub")), f"{name}-key", "-f", "json")
    user_data = tmp_path / "user-data"
    user_data.write_text(USER_DATA)

    server = demo("server", "create", "--image", image["id"], "--flavor", "m1.nano", "--network",
                  f"{name}-private", "--key-name", f"{name}-key", "--user-data", str(user_data),
                  "--security-group", f"{name}-ssh", "--wait", name, "-f", "json")
    assert server["status"] == "ACTIVE"
    (port,) = Port.objects.filter(device_id=server["id"])
    fixed_ip = port.fixed_ips.get().ip_address
    assert ipaddress.ip_address(fixed_ip) in ipaddress.ip_network(PRIVATE_CIDR)

    def console():
        text = demo("console", "log", "show", server["id"], parse=False).replace("\r\n", "\n")
        assert "STRATUS-GUEST: dhcp failed" not in text, text[-3000:]
        return text

    for marker in (f"STRATUS-GUEST: address {fixed_ip}\n", "STRATUS-GUEST: metadata from openstack",
                   "STRATUS-GUEST: ssh key installed", "user-data-says-42", "STRATUS-GUEST: ssh ready"):
        wait_until(lambda: marker in console(), timeout=300, interval=3,
                   message=f"{marker!r} on the guest's console")

    router_namespace = f"{resources.ROUTER_NAMESPACE_PREFIX}{router['id']}"
    login = wait_until(lambda: (lambda r: r if r.returncode == 0 else None)(
        ssh(router_namespace, key, fixed_ip, "cat /root/.ssh/authorized_keys; ip -4 -o addr show eth0",
            connect_timeout=5)),
        timeout=60, interval=1, message=f"SSH to {fixed_ip} from the router's namespace")
    assert key.with_suffix(".pub").read_text().split()[1] in login.stdout
    assert f"inet {fixed_ip}/24" in login.stdout

    floating = demo("floating", "ip", "create", public["id"], "-f", "json")["floating_ip_address"]
    demo("server", "add", "floating", "ip", server["id"], floating)
    outside_login = wait_until(lambda: (lambda r: r if r.returncode == 0 else None)(
        ssh(outside_namespace, key, floating, "echo from-outside", connect_timeout=5)),
        timeout=60, interval=1, message=f"SSH to the floating IP {floating} from outside")
    assert outside_login.stdout.strip() == "from-outside"

    # Without the rule for port 22 the guest drops new connections; with it back they pass.
    demo("security", "group", "rule", "delete", rule["id"])
    wait_until(lambda: ssh(outside_namespace, key, floating, "true", connect_timeout=3).returncode != 0,
               timeout=30, interval=0.5, message="SSH refused once the port 22 rule is gone")
    demo("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
         "--remote-ip", "0.0.0.0/0", group["id"], "-f", "json")
    wait_until(lambda: ssh(outside_namespace, key, floating, "true", connect_timeout=3).returncode == 0,
               timeout=30, interval=0.5, message="SSH again once the rule is back")

    demo("server", "delete", "--wait", server["id"])
    assert not Port.objects.filter(pk=port.pk).exists()
    tap = resources.tap_name(str(port.pk))
    assert subprocess.run(["ip", "link", "show", tap], capture_output=True).returncode != 0
    dhcp_entries = "".join(path.read_text() for path in real_node["state_dir"].rglob("host") if path.is_file())
    assert port.mac_address not in dhcp_entries

    demo("floating", "ip", "delete", floating)
    demo("router", "remove", "subnet", router["id"], f"{name}-private-sub")
    demo("router", "unset", "--external-gateway", router["id"])
    demo("router", "delete", router["id"])
    wait_until(lambda: router_namespace not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                               text=True).stdout,
               timeout=30, interval=0.5, message="the router's namespace gone")
    demo("network", "delete", f"{name}-private")
    admin("network", "delete", public["id"])
