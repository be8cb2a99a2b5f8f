"""The websocket console proxy as a real process in front of real QEMU VNC
servers on a node worker whose management address is 127.0.0.2 (not the
proxy's own loopback address): a good one-time token gets through the RFB
handshake to its instance's screen, a bad, reused or stale one is refused,
including one whose VNC port now belongs to another instance."""
import base64
import os
import socket
import struct
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, quote, unquote, urlparse

import pytest
from django.conf import settings

from compute.console.tokens import console_url, create_token, novnc_url
from compute.models import ComputeNode, Instance, VmState
from compute.virt import DomainSpec, get_driver
from tests.compute.nodes import NodeWorker, forget_hosts, make_instance, wait_until
from tests.compute.pipeline import live_db  # noqa: F401  (a fixture)
from tests.conftest import free_port, server_env

# The node's management address: its guests' VNC servers listen there only.
NODE_IP = "127.0.0.2"


@pytest.fixture(scope="module")
def qemu():
    try:
        driver = get_driver("qemu:///system")
        driver.conn
    except Exception as error:  # noqa: BLE001
        pytest.skip(f"qemu:///system is not available: {error}")
    yield driver
    driver.close()


@pytest.fixture(scope="module")
def console_node(live_db, qemu, tmp_path_factory):
    """A node worker on qemu:///system with its management address."""
    base = tmp_path_factory.mktemp("console-node")
    host = f"console-{uuid.uuid4().hex[:6]}"
    worker = NodeWorker(["--host", host, "--uri", "qemu:///system", "--my-ip", NODE_IP], base / "node.log",
                        STRATUS_NODES_DIR=str(base / "nodes")).start()
    yield host
    worker.stop()
    for instance_id in Instance.objects.filter(host=host).values_list("pk", flat=True):
        qemu.destroy(f"instance-{instance_id}")
    forget_hosts([host])


@pytest.fixture
def guest(console_node, qemu, tmp_path):
    """guest(): an ACTIVE instance on the node with a running domain (no
    disk: its VNC server is all these tests need), listening where the
    node's own domains do."""
    def make():
        instance = make_instance(console_node, memory_mb=64, root_gb=0)
        Instance.objects.filter(pk=instance.pk).update(vm_state=VmState.ACTIVE, task_state=None)
        qemu.spawn(DomainSpec(name=domain_name(instance), uuid=str(instance.pk), vcpus=1, memory_mb=64,
                              console_log=tmp_path / f"{instance.pk}.log", vnc_listen=NODE_IP), timeout=60)
        instance.refresh_from_db()
        return instance
    return make


def domain_name(instance):
    return f"instance-{instance.pk}"


def run_proxy(port, log_path):
    """`manage.py consoleproxy` on `port` (noVNC's pages from Debian's novnc
    package when installed), until the generator is closed."""
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, str(settings.BASE_DIR / "manage.py"), "consoleproxy",
                                    "--port", str(port)], env=server_env(), stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: _accepts(port) or process.poll() is not None, message="the console proxy")
    assert process.poll() is None, log_path.read_text()
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def proxy(django_db_setup, tmp_path_factory):
    yield from run_proxy(free_port(), tmp_path_factory.mktemp("proxy") / "proxy.log")


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class WebSocketClient:
    """Just enough of RFC 6455 for binary messages (as noVNC sends them)."""

    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Sec-WebSocket-Protocol: binary\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        self.pending = b""

    def _read(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the proxy")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def _frame(self):
        first, second = self._read(2)
        opcode, length = first & 0x0F, second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read(8))[0]
        payload = self._read(length)
        if opcode == 0x8:
            raise ConnectionError(f"closed by the proxy: {payload[2:].decode(errors='replace')}")
        return payload

    def recv(self, count):
        """Exactly `count` bytes of the relayed stream."""
        while len(self.pending) < count:
            self.pending += self._frame()
        data, self.pending = self.pending[:count], self.pending[count:]
        return data

    def send(self, data):
        mask = os.urandom(4)
        header = bytes([0x82]) + (bytes([0x80 | len(data)]) if len(data) < 126 else
                                  bytes([0x80 | 126]) + struct.pack("!H", len(data)))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def close(self):
        self.sock.close()


def rfb_handshake(client):
    """Protocol version, security type None, ClientInit; returns the
    desktop name from ServerInit."""
    version = client.recv(12)
    assert version.startswith(b"RFB 003."), version
    client.send(b"RFB 003.008\n")
    count = client.recv(1)[0]
    assert count > 0, "the VNC server refused the connection"
    types = client.recv(count)
    assert 1 in types, f"security types {list(types)}"  # None: VNC on 127.0.0.1 without a password
    client.send(bytes([1]))
    assert struct.unpack("!I", client.recv(4))[0] == 0  # SecurityResult OK
    client.send(bytes([1]))  # ClientInit, shared
    width, height = struct.unpack("!HH", client.recv(4))
    client.recv(16)  # pixel format
    name_length = struct.unpack("!I", client.recv(4))[0]
    return width, height, client.recv(name_length).decode()


def token_of(url):
    return parse_qs(unquote(parse_qs(urlparse(url).query)["path"][0]).lstrip("?"))["token"][0]


def desktop_through(port, token):
    """The desktop name of the VNC server the proxy relays `token` to
    (QEMU names it after its domain), or None when it refuses."""
    client = WebSocketClient(port, f"/?token={token}")
    try:
        if not client.status.startswith("HTTP/1.1 101"):
            return None
        width, height, name = rfb_handshake(client)
        assert width > 0 and height > 0
        return name
    except (ConnectionError, OSError):
        return None
    finally:
        client.close()


def refused(port, token):
    return desktop_through(port, token) is None


def test_node_reports_its_management_address(console_node):
    assert ComputeNode.objects.get(host=console_node).host_ip == NODE_IP


def test_good_token_reaches_its_instance_on_the_node_address_once(proxy, guest):
    instance = guest()
    url = novnc_url(instance, timeout=30)
    token = token_of(url)
    assert url == console_url(token) and url.endswith("?path=" + quote(f"?token={token}", safe=""))
    assert domain_name(instance) in desktop_through(proxy, token)
    assert refused(proxy, token), "a used token let a second connection through"


def test_bad_or_missing_token_is_refused(proxy, guest):
    instance = guest()
    assert refused(proxy, "not-a-token")
    assert refused(proxy, "")
    token = token_of(novnc_url(instance, timeout=30))
    assert refused(proxy, token + "x")
    assert not refused(proxy, token)  # the real one still gets through


def test_token_of_a_deleted_instance_is_refused(proxy, guest):
    instance = guest()
    token = token_of(novnc_url(instance, timeout=30))
    Instance.objects.filter(pk=instance.pk).update(deleted=True, vm_state=VmState.DELETED)
    assert refused(proxy, token)


def test_token_whose_port_now_belongs_to_another_instance_is_refused(proxy, guest, qemu):
    first, second = guest(), guest()
    token = token_of(novnc_url(first, timeout=30))
    _, first_port = qemu.vnc_address(domain_name(first))
    # The first guest stops; the second is restarted onto its VNC port.
    qemu.conn.lookupByName(domain_name(first)).destroy()
    move_vnc_port(qemu.conn.lookupByName(domain_name(second)), first_port)
    assert qemu.vnc_address(domain_name(second)) == (NODE_IP, first_port)

    assert refused(proxy, token), "the first instance's token opened the second instance's screen"
    # The second instance's own console is where it is now.
    assert domain_name(second) in desktop_through(proxy, token_of(novnc_url(second, timeout=30)))


def test_token_for_an_address_the_node_does_not_report_is_refused(proxy, guest, console_node, qemu):
    """A token's address and port are what the node said at issue: one
    made up for the instance (the proxy's own loopback here) is refused."""
    instance = guest()
    _, port = qemu.vnc_address(domain_name(instance))
    assert refused(proxy, create_token(instance.pk, console_node, "127.0.0.1", port))
    assert not refused(proxy, create_token(instance.pk, console_node, NODE_IP, port))


def move_vnc_port(dom, port):
    """Restarts a running domain with its VNC server on `port`."""
    dom.destroy()
    definition = ET.fromstring(dom.XMLDesc())
    graphics = definition.find("devices/graphics[@type='vnc']")
    graphics.set("autoport", "no")
    graphics.set("port", str(port))
    dom.connect().defineXML(ET.tostring(definition, encoding="unicode")).create()
