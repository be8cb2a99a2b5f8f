"""The metadata proxy: 169.254.169.254:80 inside a network's DHCP namespace
(`qdhcp-<network id>`, where DHCP's option 121 routes guests to it), and
[fe80::a9fe:a9fe]:80 on the namespace's interface into the network, where
IPv6 guests find it on their own link (as Neutron serves it), forwarding
each request to the API host's metadata service with what only it knows:
the guest's source address (X-Forwarded-For) and the network it came from
(X-Neutron-Network-ID), signed with the shared metadata secret
(cloud.metadata_signature), as Neutron's namespace proxy and metadata
agent do together. Whatever identity headers a guest sends itself are dropped.

The listening socket is made inside the namespace; the event loop serving
every proxy of this process runs in a thread of the agent's own namespace,
so upstream connections reach the API host without a route from the
tenant network. One request per connection (Connection: close).

    start(namespace, network_id, upstream, interface=...) / stop(network_id)

A network without a DHCP namespace (no DHCP on its subnets) is served
from its router's namespace instead, as Neutron's router metadata proxy
does: [fe80::a9fe:a9fe]:80 on each IPv6 leg only (several legs share the
namespace, so none takes 169.254.169.254), each proxy started under a key
of its own (`key=`, by default the network id) naming its router and leg.
    python -m network.agent.metadata_proxy --namespace qdhcp-ID --network-id ID [--upstream URL]

The agent's upstream is settings.METADATA_URL (STRATUS_METADATA_URL, by
default the public URL's /metadata); the secret settings.METADATA_SECRET."""
import argparse
import asyncio
import logging
import os
import signal
import socket
import ssl
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pyroute2 import netns

from cloud import metadata_signature

from . import iplib
from .dhcp import METADATA_IP

# Neutron's IPv6 metadata address, link-local: guests ask it on their link.
METADATA_IPV6 = "fe80::a9fe:a9fe"

log = logging.getLogger(__name__)

METADATA_PORT = 80
# A request head larger than this, or a body, is refused: a guest reads.
MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
CLIENT_TIMEOUT = 10
UPSTREAM_TIMEOUT = 30
# Headers the proxy sets itself, or that belong to one hop: a guest's own are dropped.
DROPPED_HEADERS = {
    "host", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade",
    "transfer-encoding", "content-length", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
    "x-instance-id", "x-tenant-id", "x-neutron-network-id", "x-neutron-router-id",
    metadata_signature.INSTANCE_SIGNATURE_HEADER.lower(), metadata_signature.NETWORK_SIGNATURE_HEADER.lower(),
}
REASONS = {400: "Bad Request", 405: "Method Not Allowed", 411: "Length Required",
           413: "Request Entity Too Large", 502: "Bad Gateway", 504: "Gateway Timeout"}


class BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


@dataclass
class Proxy:
    namespace: str
    network_id: str
    upstream: str
    secret: str
    address: str | None = METADATA_IP   # None: no IPv4 listener
    port: int = METADATA_PORT
    # The namespace's interface into the network, where it also listens on
    # METADATA_IPV6 (None: IPv4 only).
    interface: str | None = None
    # Which namespace of that name it listens in: one removed and made
    # again (DHCP disabled and enabled) is another, where it does not.
    namespace_inode: tuple = ()
    servers: list = field(default_factory=list, repr=False)  # asyncio's Servers, once listening

    def same_as(self, other):
        fields = ("namespace", "network_id", "namespace_inode", "upstream", "secret", "address", "port",
                  "interface")
        return all(getattr(self, name) == getattr(other, name) for name in fields)

    @property
    def serving(self):
        return bool(self.servers) and all(server.is_serving() for server in self.servers)

    async def handle(self, reader, writer):
        try:
            # An IPv6 link-local peer comes with its scope (fe80::...%ns-dhcp).
            guest = writer.get_extra_info("peername")[0].split("%")[0]
            try:
                method, target, headers, body = await asyncio.wait_for(_read_request(reader), CLIENT_TIMEOUT)
            except BadRequest as error:
                await _answer(writer, error.status, str(error))
                return
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return
            relayed = []  # chunks of the answer already sent on to the guest
            try:
                await asyncio.wait_for(self.forward(writer, relayed, guest, method, target, headers, body),
                                       UPSTREAM_TIMEOUT)
            except OSError as error:  # asyncio's TimeoutError too
                if relayed:  # too late for an answer of our own
                    log.warning("metadata proxy of network %s: the answer of %s broke off: %r", self.network_id,
                                self.upstream, error)
                elif isinstance(error, TimeoutError):
                    log.warning("metadata proxy of network %s: %s did not answer in time", self.network_id,
                                self.upstream)
                    await _answer(writer, 504, "The metadata service did not answer in time.")
                else:
                    log.warning("metadata proxy of network %s: %s cannot be reached: %s", self.network_id,
                                self.upstream, error)
                    await _answer(writer, 502, f"The metadata service cannot be reached: {error}.")
        finally:
            writer.close()

    async def forward(self, writer, relayed, guest, method, target, headers, body):
        upstream = urlsplit(self.upstream)
        secure = upstream.scheme == "https"
        port = upstream.port or (443 if secure else 80)
        up_reader, up_writer = await asyncio.open_connection(
            upstream.hostname, port, ssl=ssl.create_default_context() if secure else None)
        try:
            lines = [f"{method} {upstream.path.rstrip('/')}{target} HTTP/1.1",
                     f"Host: {upstream.netloc}", "Connection: close",
                     f"X-Forwarded-For: {guest}", f"X-Neutron-Network-ID: {self.network_id}",
                     f"{metadata_signature.NETWORK_SIGNATURE_HEADER}: "
                     f"{metadata_signature.address_signature(self.secret, self.network_id, guest)}"]
            lines += [f"{name}: {value}" for name, value in headers]
            if body:
                lines.append(f"Content-Length: {len(body)}")
            up_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await up_writer.drain()
            # The answer as it comes (the upstream closes after it).
            while chunk := await up_reader.read(65536):
                relayed.append(len(chunk))
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()


async def _read_request(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise BadRequest(400, "The request's head is too large.") from None
    request_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise BadRequest(400, "Malformed request line.")
    method, target, _version = parts
    headers, length = [], 0
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, "Malformed header line.")
        lowered = name.lower()
        if lowered == "transfer-encoding":
            raise BadRequest(411, "A body must come with Content-Length.")
        if lowered == "content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise BadRequest(400, "Content-Length is not a number.") from None
            if length < 0 or length > MAX_BODY_BYTES:
                raise BadRequest(413, f"A body may have at most {MAX_BODY_BYTES} bytes.")
        if lowered not in DROPPED_HEADERS:
            headers.append((name, value.strip()))
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


async def _answer(writer, status, message):
    body = f"{status} {REASONS.get(status, 'Error')}\n\n{message}\n".encode()
    writer.write(f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    try:
        await writer.drain()
    except ConnectionError:
        pass


# Every proxy of this process, by network id, served by one event loop.
_proxies = {}
_lock = threading.Lock()
_loop = None


def _event_loop():
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
        threading.Thread(target=_loop.run_forever, name="metadata-proxy", daemon=True).start()
    return _loop


def _run(coroutine, timeout=10):
    return asyncio.run_coroutine_threadsafe(coroutine, _event_loop()).result(timeout)


def _listening_socket(namespace, address, port):
    """A socket listening on address:port inside `namespace`, the address
    put on its loopback first if it is not there (the DHCP driver puts it
    there too)."""
    with iplib.ip(namespace) as handle:
        index = iplib.link_index(handle, "lo")
        present = {entry.get("IFA_ADDRESS") for entry in handle.addr("dump", index=index)}
        if address not in present:
            handle.addr("add", index=index, address=address, prefixlen=32)
    with iplib.inside(namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _listening_socket6(namespace, interface, port):
    """A socket listening on [METADATA_IPV6]:port on `interface` of
    `namespace`, the address put there first if it is not. The address is
    deprecated (preferred lifetime 0): it answers, but the namespace never
    picks it as the source of what it sends itself (router advertisements
    come from the interface's own link-local address)."""
    with iplib.ip(namespace) as handle:
        index = iplib.link_index(handle, interface)
        present = {entry.get("IFA_ADDRESS") for entry in handle.addr("dump", index=index)}
    if METADATA_IPV6 not in present:
        iplib.run(namespace, ["ip", "-6", "addr", "replace", f"{METADATA_IPV6}/64", "dev", interface, "nodad",
                              "preferred_lft", "0"])
    with iplib.inside(namespace):
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((METADATA_IPV6, port, 0, index))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _namespace_inode(namespace):
    found = os.stat(os.path.join(netns.NETNS_RUN_DIR, namespace))
    return found.st_dev, found.st_ino


def _default_secret():
    from django.conf import settings

    return settings.METADATA_SECRET


def start(namespace, network_id, upstream, secret=None, address=METADATA_IP, port=METADATA_PORT, interface=None,
          key=None):
    """Serves metadata for `network_id` on address:port in `namespace` (and
    on [METADATA_IPV6]:port on its `interface`, when given; `address` None:
    only there), forwarding to `upstream` (the API's metadata URL, e.g.
    http://api:8000/metadata), as the proxy of `key` (by default the
    network id). Idempotent: a proxy serving the same (in
    the same namespace, not one made again since) is kept; one with other
    settings is replaced. Returns the Proxy. Call stop() when the
    namespace goes: its socket keeps the old namespace alive otherwise.
    Upstream connections are made from the namespace of the thread that
    first started a proxy in this process."""
    proxy = Proxy(namespace=namespace, network_id=str(network_id), upstream=upstream,
                  secret=secret or _default_secret(), address=address, port=port, interface=interface,
                  namespace_inode=_namespace_inode(namespace))
    key = str(key or proxy.network_id)
    if address is None and not interface:
        raise ValueError("a metadata proxy needs an address or an interface to listen on")
    with _lock:
        running = _proxies.get(key)
        if running is not None:
            if running.serving and running.same_as(proxy):
                return running
            _close(running)
        sockets = [_listening_socket(namespace, address, port)] if address else []
        try:
            if interface:
                sockets.append(_listening_socket6(namespace, interface, port))
            for sock in sockets:
                proxy.servers.append(_run(asyncio.start_server(proxy.handle, sock=sock, limit=MAX_HEAD_BYTES)))
        except BaseException:
            _close(proxy)
            for sock in sockets[len(proxy.servers):]:
                sock.close()
            raise
        _proxies[key] = proxy
        return proxy


def stop(key):
    """Stops the proxy of `key` (a network id, unless it was started under
    another key); returns whether one was running."""
    with _lock:
        proxy = _proxies.pop(str(key), None)
        if proxy is None:
            return False
        _close(proxy)
        return True


def stop_others(prefix, keep=()):
    """Stops the proxies whose keys start with `prefix`, but those in `keep`."""
    with _lock:
        keys = [key for key in _proxies if key.startswith(prefix) and key not in keep]
    for key in keys:
        stop(key)


def running():
    """The keys (network ids, unless started under another) of the proxies
    this process runs."""
    with _lock:
        return [network_id for network_id, proxy in _proxies.items() if proxy.serving]


def _close(proxy):
    async def close():
        for server in proxy.servers:
            server.close()
        for server in proxy.servers:
            await server.wait_closed()

    try:
        _run(close())
    except (TimeoutError, OSError):
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description="Metadata proxy for one network, in its DHCP namespace.")
    parser.add_argument("--namespace", required=True, help="the network namespace to listen in (qdhcp-<id>)")
    parser.add_argument("--network-id", required=True)
    parser.add_argument("--upstream", help="the metadata service (default: settings.METADATA_URL, "
                                           "$STRATUS_METADATA_URL), e.g. http://api:8000/metadata")
    parser.add_argument("--address", default=METADATA_IP)
    parser.add_argument("--port", type=int, default=METADATA_PORT)
    parser.add_argument("--interface", help=f"the namespace's interface to serve [{METADATA_IPV6}] on too")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
    if not args.upstream:
        from django.conf import settings

        args.upstream = settings.METADATA_URL
    start(args.namespace, args.network_id, args.upstream, address=args.address, port=args.port,
          interface=args.interface)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    print(f"metadata proxy for network {args.network_id} on {args.address}:{args.port} in {args.namespace}, "
          f"forwarding to {args.upstream}", flush=True)
    while not stopping.wait(1):
        pass
    stop(args.network_id)


if __name__ == "__main__":
    main()
