"""The websocket console proxy as a real process in front of a real QEMU
VNC server: a good one-time token gets through the RFB handshake, a bad or
reused one is refused."""
import base64
import os
import socket
import struct
import subprocess
import sys
import uuid
from urllib.parse import quote

import libvirt
import pytest
from django.conf import settings

from compute.console.tokens import console_url, create_token
from compute.models import Instance, TaskState, VmState
from compute.virt import DomainSpec, get_driver
from tests.compute.nodes import wait_until
from tests.conftest import free_port, server_env


@pytest.fixture(scope="module")
def vnc_domain(tmp_path_factory):
    """A running QEMU domain (no disk: its VNC server is all we need)."""
    try:
        driver = get_driver("qemu:///system")
        driver.conn
    except Exception as error:  # noqa: BLE001
        pytest.skip(f"qemu:///system is not available: {error}")
    name = f"stratustest-console-{uuid.uuid4().hex[:8]}"
    spec = DomainSpec(name=name, uuid=str(uuid.uuid4()), vcpus=1, memory_mb=64,
                      console_log=tmp_path_factory.mktemp("console") / "console.log")
    try:
        driver.spawn(spec, timeout=60)
        yield driver.vnc_address(name)
    finally:
        driver.destroy(name)
        driver.close()


@pytest.fixture
def instance(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        row = Instance.objects.create(
            name="console-test", project_id="console-tests", user_id="console-tests", flavor_id_at_boot="x",
            flavor_name="x", vcpus=1, memory_mb=64, root_gb=0, host="console-test-host",
            vm_state=VmState.ACTIVE, task_state=None)
        yield row
        Instance.objects.filter(pk=row.pk).delete()


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


def refused(port, token):
    client = WebSocketClient(port, f"/?token={token}")
    try:
        if not client.status.startswith("HTTP/1.1 101"):
            return True
        client.recv(12)
        return False
    except (ConnectionError, OSError):
        return True
    finally:
        client.close()


def test_good_token_completes_the_rfb_handshake_once(proxy, vnc_domain, instance):
    host, vnc_port = vnc_domain
    token = create_token(instance.pk, host, vnc_port)
    assert console_url(token).endswith("?path=" + quote(f"?token={token}", safe=""))
    client = WebSocketClient(proxy, f"/?token={token}")
    try:
        assert client.status.startswith("HTTP/1.1 101"), client.status
        width, height, _name = rfb_handshake(client)
        assert width > 0 and height > 0
    finally:
        client.close()
    assert refused(proxy, token), "a used token let a second connection through"


def test_bad_or_missing_token_is_refused(proxy, vnc_domain, instance):
    assert refused(proxy, "not-a-token")
    assert refused(proxy, "")
    token = create_token(instance.pk, *vnc_domain)
    assert refused(proxy, token + "x")
    assert not refused(proxy, token)  # the real one still gets through


def test_token_of_a_deleted_instance_is_refused(proxy, vnc_domain, instance, django_db_blocker):
    token = create_token(instance.pk, *vnc_domain)
    with django_db_blocker.unblock():
        Instance.objects.filter(pk=instance.pk).update(deleted=True, vm_state=VmState.DELETED)
    assert refused(proxy, token)
