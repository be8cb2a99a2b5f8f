"""Namespaces, links and processes inside a namespace, on pyroute2: the one
place that talks netlink, so the drivers above it read as what they make."""
import ctypes
import errno
import ipaddress
import os
import subprocess
from contextlib import contextmanager

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

CLONE_NEWNET = 0x40000000
IFA_F_NODAD = 0x02
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@contextmanager
def inside(namespace):
    """Runs the block with this thread in network namespace `namespace`
    (None: stays where it is): sockets it opens, processes it starts and
    /proc/sys/net files it writes belong to that namespace. Only the
    calling thread moves, and it moves back at the end. This costs a few
    milliseconds where pyroute2's NetNS (a helper process) or a
    preexec_fn (a fork of the whole interpreter) costs tens."""
    if not namespace:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join(netns.NETNS_RUN_DIR, namespace), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


@contextmanager
def ip(namespace=None):
    """An rtnetlink handle in `namespace` (None: this thread's namespace)."""
    with inside(namespace):
        handle = IPRoute()
    try:
        yield handle
    finally:
        handle.close()


def namespace_exists(name):
    return name in netns.listnetns()


def list_namespaces():
    return netns.listnetns()


def ensure_namespace(name):
    if not namespace_exists(name):
        netns.create(name)
    with ip(name) as handle:
        set_up(handle, "lo")


def delete_namespace(name):
    """Removes the namespace; the interfaces in it go with it."""
    if namespace_exists(name):
        netns.remove(name)


def link_index(handle, name):
    found = handle.link_lookup(ifname=name)
    return found[0] if found else None


def link_alias(handle, name):
    """The link's ifalias ("" when it has none), or None when there is no
    such link."""
    try:
        message = handle.link("get", ifname=name)[0]
    except NetlinkError as error:
        if error.code == errno.ENODEV:
            return None
        raise
    return message.get("IFLA_IFALIAS") or ""


def link_kind(message):
    info = message.get("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info else None


def links(handle):
    """Every link as a dict: name, index, kind, master (an index or None),
    alias (its ifalias: which agent made it)."""
    return [
        {"name": m.get("ifname"), "index": m.get("index"), "kind": link_kind(m),
         "master": m.get("master"), "mtu": m.get("mtu"), "address": m.get("address"),
         "alias": m.get("IFLA_IFALIAS"), "message": m}
        for m in handle.link("dump")
    ]


def set_alias(handle, name, alias):
    # Not taken by "add": a separate "set".
    handle.link("set", index=link_index(handle, name), IFLA_IFALIAS=alias)


def set_up(handle, name, **attributes):
    handle.link("set", index=link_index(handle, name), state="up", **attributes)


def delete_link(handle, name):
    """Deletes a link if it exists (a veth takes its peer with it)."""
    index = link_index(handle, name)
    if index is None:
        return
    try:
        handle.link("del", index=index)
    except NetlinkError as error:
        if error.code != errno.ENODEV:
            raise


def ensure_veth(handle, name, peer_name, peer_namespace):
    """A veth pair with `name` here and `peer_name` in `peer_namespace`."""
    if link_index(handle, name) is None:
        handle.link("add", ifname=name, kind="veth",
                    peer={"ifname": peer_name, "net_ns_fd": peer_namespace})


IPV4, IPV6 = 2, 10   # address families, as netlink numbers them


def set_addresses(handle, name, addresses, family=IPV4):
    """Makes the link's addresses of `family` (IPV4 or IPV6) exactly
    `addresses`, (address, prefixlen) pairs: missing ones added, others
    removed (an IPv6 link-local address, the kernel's, stays). Returns
    whether anything changed."""
    index = link_index(handle, name)
    present = {(a.get("IFA_ADDRESS"), a.get("prefixlen"))
               for a in handle.addr("dump", index=index) if a.get("family") == family
               and not (family == IPV6 and a.get("IFA_ADDRESS", "").lower().startswith("fe80:"))}
    wanted = set(addresses)
    # Removals first: deleting a primary address also deletes the secondary
    # ones of its subnet, which a new address added before would be.
    for address, prefixlen in present - wanted:
        handle.addr("del", index=index, address=address, prefixlen=prefixlen)
    for address, prefixlen in wanted - present:
        # IPv6: usable at once, not after duplicate address detection (a
        # daemon binding it would fail while it is tentative).
        handle.addr("add", index=index, address=address, prefixlen=prefixlen,
                    **({"flags": IFA_F_NODAD} if family == IPV6 else {}))
    return wanted != present


def set_addresses_by_family(handle, name, addresses):
    """set_addresses for IPv4 and IPv6 at once, the family told by each
    address; returns whether anything changed."""
    changed = False
    for family, version in ((IPV4, 4), (IPV6, 6)):
        changed |= set_addresses(handle, name, [(address, prefixlen) for address, prefixlen in addresses
                                                if ipaddress.ip_address(address).version == version], family)
    return changed


def run(namespace, argv, input=None, check=True):
    """Runs a command inside `namespace`; raises with its stderr on failure."""
    with inside(namespace):
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise CommandFailed(argv, result.returncode, result.stderr.strip())
    return result


def popen(namespace, argv, **kwargs):
    with inside(namespace):
        return subprocess.Popen(argv, **kwargs)


def sysctl(namespace, key, value):
    """Sets a network sysctl of `namespace` (dotted name, as sysctl(8))."""
    path = os.path.join("/proc/sys", *key.split("."))
    with inside(namespace), open(path, "w") as setting:
        setting.write(str(value))


class CommandFailed(RuntimeError):
    def __init__(self, argv, returncode, stderr):
        super().__init__(f"{argv[0]} exited {returncode}: {stderr}")
        self.argv, self.returncode, self.stderr = argv, returncode, stderr
