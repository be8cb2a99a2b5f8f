"""Real kernel objects for the agent's drivers, Neutron full-stack style:
"hosts" are network namespaces (with an underlay between them), "machines"
are namespaces with a veth plugged into a host's bridge like a VM's tap.
Everything a test makes is removed by its fixture, and checked to be gone."""
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from network.agent import bridges, dhcp, firewall, iplib, routers
from network.agent.resources import Host

if os.geteuid() != 0:
    pytest.skip("the agent's drivers need root (namespaces, bridges)", allow_module_level=True)

TEST_PREFIX = "sttest-"
# A UDP echo server and a client with a fixed source port (busybox nc has no UDP).
UDP_ECHO = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    data, peer = sock.recvfrom(2048)
    sock.sendto(data, peer)
"""
UDP_EXCHANGE = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
sock.bind(("0.0.0.0", int(sys.argv[3])))
sock.settimeout(2)
for _ in range(2):
    sock.sendto(b"hello", (sys.argv[1], int(sys.argv[2])))
    try:
        sock.recvfrom(2048)
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
"""

# Waits for a router advertisement on eth0 (after a solicitation) and prints
# what it says: its source, flags, router lifetime and prefixes.
ROUTER_ADVERTISEMENT = """
import json, socket, struct, sys, time
sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
sock.settimeout(float(sys.argv[1]))
for _ in range(30):
    try:   # not before the link-local address has passed duplicate address detection
        sock.sendto(bytes([133, 0, 0, 0, 0, 0, 0, 0]), ("ff02::2", 0, 0, socket.if_nametoindex("eth0")))
        break
    except OSError:
        time.sleep(0.1)
while True:
    data, peer = sock.recvfrom(2048)
    if data[0] != 134 or len(sys.argv) > 2 and peer[0].split("%")[0] != sys.argv[2]:
        continue
    prefixes, offset = [], 16
    while offset + 2 <= len(data) and data[offset + 1]:
        if data[offset] == 3:
            prefixes.append({"prefix": socket.inet_ntop(socket.AF_INET6, data[offset + 16:offset + 32])
                             + "/" + str(data[offset + 2]),
                             "on_link": bool(data[offset + 3] & 0x80), "autonomous": bool(data[offset + 3] & 0x40)})
        offset += data[offset + 1] * 8
    print(json.dumps({"source": peer[0].split("%")[0], "managed": bool(data[5] & 0x80),
                      "other": bool(data[5] & 0x40), "router_lifetime": struct.unpack("!H", data[6:8])[0],
                      "prefixes": prefixes}))
    break
"""
DHCLIENT = shutil.which("dhclient")


def new_id():
    return str(uuid.uuid4())


def mac_of(number):
    return "fa:16:3e:00:%02x:%02x" % divmod(number, 256)


class Machine:
    """A namespace with eth0, whose peer (named like the port's tap) sits in
    the host's namespace, ready to plug."""

    def __init__(self, lab, host, port):
        self.lab, self.host, self.port = lab, host, port
        self.namespace = lab.namespace("m")
        with iplib.ip(host.namespace) as handle:
            iplib.ensure_veth(handle, port.tap, "eth0", self.namespace)
        with iplib.ip(self.namespace) as handle:
            handle.link("set", index=iplib.link_index(handle, "eth0"), address=port.mac_address)
            iplib.set_up(handle, "eth0")

    def run(self, *argv, check=False):
        return iplib.run(self.namespace, list(argv), check=check)

    def set_address(self, cidr):
        self.run("ip", "addr", "add", cidr, "dev", "eth0", check=True)

    def set_default_route(self, gateway):
        self.run("ip", "route", "add", "default", "via", gateway, check=True)

    def replace_address(self, old_cidr, new_cidr):
        self.run("ip", "addr", "del", old_cidr, "dev", "eth0", check=True)
        self.set_address(new_cidr)

    def set_mac(self, mac):
        self.run("ip", "link", "set", "eth0", "address", mac, check=True)

    def addresses(self):
        out = self.run("ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
        return [line.split()[3] for line in out.splitlines()]

    def dhcp(self):
        """Asks for an address with busybox udhcpc; returns the variables its
        script saw (ip, mask, router, staticroutes, dns, hostname...)."""
        report = self.lab.tmp / f"{self.namespace}.lease"
        script = self.lab.tmp / "udhcpc.sh"
        script.write_text(
            "#!/bin/sh\n"
            'if [ "$1" = bound ]; then\n'
            '  ip addr add "$ip/$mask" dev "$interface"\n'
            f'  env > "{report}"\n'
            "fi\n")
        script.chmod(0o755)
        self.run("busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "10", "-T", "3",
                 "-O", "mtu", "-O", "staticroutes",
                 "-s", str(script), check=True)
        return dict(line.split("=", 1) for line in report.read_text().splitlines() if "=" in line)

    def accept_router_advertisements(self):
        """Lets the kernel take addresses and routes from advertisements (as a
        guest does; the test namespaces start with it, but say it anyway)."""
        with iplib.inside(self.namespace):
            for key, value in (("accept_ra", 1), ("autoconf", 1), ("accept_dad", 0)):
                with open(f"/proc/sys/net/ipv6/conf/eth0/{key}", "w") as setting:
                    setting.write(str(value))

    def router_advertisement(self, timeout=10, source=None):
        """The next router advertisement eth0 hears (it solicits one), from
        `source` when given, as a dict."""
        result = self.run(sys.executable, "-c", ROUTER_ADVERTISEMENT, str(timeout), *([source] if source else []),
                          check=True)
        return json.loads(result.stdout)

    def addresses6(self, scope="global"):
        out = self.run("ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", scope).stdout
        return [line.split()[3].split("/")[0] for line in out.splitlines()]

    def wait_for_address6(self, address, timeout=15):
        deadline = time.monotonic() + timeout
        while address not in self.addresses6():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def default_route6(self, timeout=15):
        """The IPv6 default route's next hop, once there is one (None: none came)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.run("ip", "-6", "route", "show", "default").stdout.splitlines():
                fields = line.split()
                if "via" in fields:
                    return fields[fields.index("via") + 1]
            time.sleep(0.2)
        return None

    def dhcp6(self, stateless=False):
        """Asks DHCPv6 with ISC dhclient (-S: options only); returns the
        variables its script saw (new_ip6_address, new_dhcp6_name_servers...),
        the address applied to eth0. The client is stopped afterwards."""
        if DHCLIENT is None:
            pytest.skip("no DHCPv6 client: install isc-dhcp-client (scripts/install.sh does)")
        report = self.lab.tmp / f"{self.namespace}.lease6"
        script = self.lab.tmp / "dhclient6.sh"
        script.write_text(
            "#!/bin/sh\n"
            'if [ "$reason" = BOUND6 ]; then ip -6 addr add "$new_ip6_address/$new_ip6_prefixlen" '
            'dev "$interface" nodad; fi\n'
            # -S reports its answer as RENEW6.
            'case "$reason" in BOUND6|RENEW6) env > "%s" ;; esac\n' % report)
        script.chmod(0o755)
        # It binds the link-local address, which must have passed duplicate address detection.
        deadline = time.monotonic() + 5
        while self.run("ip", "-6", "-o", "addr", "show", "dev", "eth0", "tentative").stdout.strip() \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        # In the foreground (-d): it would stay in the background to renew.
        client = iplib.popen(self.namespace, [
            DHCLIENT, "-6", "-1", "-d", *(["-S"] if stateless else []), "-sf", str(script),
            "-lf", str(self.lab.tmp / f"{self.namespace}.leases6"),
            "-pf", str(self.lab.tmp / f"{self.namespace}.dhclient.pid"), "eth0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lab.processes.append(client)
        deadline = time.monotonic() + 30
        while not report.exists() and client.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        client.kill()
        _, errors = client.communicate()
        assert report.exists(), f"no DHCPv6 answer: {errors.decode()[-2000:]}"
        return dict(line.split("=", 1) for line in report.read_text().splitlines() if "=" in line)

    def ping6(self, address, attempts=3):
        for _ in range(attempts):
            if self.run("busybox", "ping", "-6", "-c", "1", "-W", "2", address).returncode == 0:
                return True
        return False

    def reachable(self, address, attempts=3):
        """True when `address` answers a ping (a few tries: the first packet
        may wait for ARP)."""
        for _ in range(attempts):
            if self.run("busybox", "ping", "-c", "1", "-W", "2", address).returncode == 0:
                return True
        return False

    def serve_tcp(self, port):
        """A TCP listener on `port` that accepts and closes each connection."""
        process = iplib.popen(self.namespace, ["busybox", "nc", "-ll", "-p", str(port), "-e", "/bin/true"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.lab.processes.append(process)

    def tcp_connects(self, address, port):
        return self.run("busybox", "nc", "-w", "2", address, str(port)).returncode == 0

    def serve_udp_echo(self, port):
        process = iplib.popen(self.namespace, [sys.executable, "-c", UDP_ECHO, str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.lab.processes.append(process)

    def udp_exchange(self, address, port, source_port):
        """True when a datagram from `source_port` to address:port is echoed."""
        return self.run(sys.executable, "-c", UDP_EXCHANGE, address, str(port), str(source_port)).returncode == 0

    def unreachable(self, address):
        return self.run("busybox", "ping", "-c", "2", "-W", "1", address).returncode != 0


class Lab:
    def __init__(self, tmp):
        self.tmp = tmp
        self.namespaces = []
        self.dhcp_networks = []
        self.routers = []
        self.processes = []
        self.run_id = uuid.uuid4().hex[:6]
        self.underlay = None

    def namespace(self, role):
        name = f"{TEST_PREFIX}{self.run_id}-{role}{len(self.namespaces)}"
        iplib.ensure_namespace(name)
        self.namespaces.append(name)
        return name

    def host(self, underlay_number=None):
        """A node as a namespace; with `underlay_number`, an underlay
        interface ul0 at 192.168.250.<n> on a switch shared by the lab's hosts."""
        namespace = self.namespace("h")
        if underlay_number is None:
            return Host(namespace=namespace, state_dir=self.tmp / namespace)
        if self.underlay is None:
            self.underlay = self.namespace("ul")
            with iplib.ip(self.underlay) as handle:
                handle.link("add", ifname="switch", kind="bridge", br_stp_state=0, br_forward_delay=0)
                iplib.set_up(handle, "switch")
        local_ip = f"192.168.250.{underlay_number}"
        with iplib.ip(self.underlay) as handle:
            iplib.ensure_veth(handle, f"to-{underlay_number}", "ul0", namespace)
            handle.link("set", index=iplib.link_index(handle, f"to-{underlay_number}"),
                        master=iplib.link_index(handle, "switch"), state="up")
        with iplib.ip(namespace) as handle:
            iplib.set_addresses(handle, "ul0", [(local_ip, 24)])
            iplib.set_up(handle, "ul0")
        return Host(namespace=namespace, underlay_interface="ul0", local_ip=local_ip,
                    state_dir=self.tmp / namespace)

    def machine(self, host, network, port, plug=True):
        machine = Machine(self, host, port)
        if plug:
            bridges.plug(host, network, port.tap)
        return machine

    def enable_dhcp(self, host, network, *args, **kwargs):
        self.dhcp_networks.append((host, network))
        return dhcp.enable(host, network, *args, **kwargs)

    def sync_router(self, host, router):
        self.routers.append((host, router))
        routers.sync_router(host, router)

    def cleanup(self):
        for process in self.processes:
            process.kill()
            process.wait()
        for host, network in self.dhcp_networks:
            dhcp.disable(host, network)
        for host, router in self.routers:
            routers.delete_router(host, router)
        for name in reversed(self.namespaces):
            iplib.delete_namespace(name)
            firewall.forget_namespace(name)


    def leftovers(self):
        """The lab's namespaces and dnsmasq processes that still exist."""
        made = (set(self.namespaces) | {dhcp.namespace_name(n) for _, n in self.dhcp_networks}
                | {routers.namespace_name(r) for _, r in self.routers})
        namespaces = [n for n in iplib.list_namespaces() if n in made]
        processes = subprocess.run(["pgrep", "-f", f"dnsmasq.*{self.tmp}"],
                                   capture_output=True, text=True).stdout.split()
        return namespaces, processes


@pytest.fixture
def lab(tmp_path):
    """Makes hosts and machines; removes them all after the test and fails
    the test if any namespace or dnsmasq it made is left."""
    lab = Lab(tmp_path)
    yield lab
    lab.cleanup()
    assert lab.leftovers() == ([], []), "the test left kernel objects or processes behind"
