"""Namespaces, links and processes inside a namespace, on pyroute2: the one
place that talks netlink, so the drivers above it read as what they make."""
import errno
import subprocess
from contextlib import contextmanager

from pyroute2 import IPRoute, NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError


@contextmanager
def ip(namespace=None):
    """An rtnetlink handle in `namespace` (None: the root namespace)."""
    handle = NetNS(namespace, flags=0) if namespace else IPRoute()
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


def link_kind(message):
    info = message.get("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info else None


def links(handle):
    """Every link as a dict: name, index, kind, master (an index or None)."""
    return [
        {"name": m.get("ifname"), "index": m.get("index"), "kind": link_kind(m),
         "master": m.get("master"), "mtu": m.get("mtu"), "address": m.get("address"),
         "message": m}
        for m in handle.link("dump")
    ]


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


def set_addresses(handle, name, addresses, family=2):
    """Makes the link's addresses of `family` (2: IPv4) exactly `addresses`,
    (address, prefixlen) pairs: missing ones added, others removed. Returns
    whether anything changed."""
    index = link_index(handle, name)
    present = {(a.get("IFA_ADDRESS"), a.get("prefixlen"))
               for a in handle.addr("dump", index=index) if a.get("family") == family}
    wanted = set(addresses)
    # Removals first: deleting a primary address also deletes the secondary
    # ones of its subnet, which a new address added before would be.
    for address, prefixlen in present - wanted:
        handle.addr("del", index=index, address=address, prefixlen=prefixlen)
    for address, prefixlen in wanted - present:
        handle.addr("add", index=index, address=address, prefixlen=prefixlen)
    return wanted != present


def _enter(namespace):
    if namespace:
        return lambda: netns.setns(namespace, flags=0)
    return None


def run(namespace, argv, input=None, check=True):
    """Runs a command inside `namespace`; raises with its stderr on failure."""
    result = subprocess.run(argv, input=input, capture_output=True, text=True,
                            preexec_fn=_enter(namespace), timeout=30)
    if check and result.returncode != 0:
        raise CommandFailed(argv, result.returncode, result.stderr.strip())
    return result


def popen(namespace, argv, **kwargs):
    return subprocess.Popen(argv, preexec_fn=_enter(namespace), **kwargs)


def sysctl(namespace, key, value):
    run(namespace, ["sysctl", "-q", "-w", f"{key}={value}"])


class CommandFailed(RuntimeError):
    def __init__(self, argv, returncode, stderr):
        super().__init__(f"{argv[0]} exited {returncode}: {stderr}")
        self.argv, self.returncode, self.stderr = argv, returncode, stderr
