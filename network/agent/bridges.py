"""L2 on a node: a Linux bridge per network, with the network's VXLAN
interface (VNI = segmentation id, tunnels to peers by FDB entries) or a flat
network's physical interface attached, and the ports' taps plugged into it.
Every ensure_* is idempotent; `resync` converges the node to a desired list
of networks and removes stale devices (bridges, VXLANs, taps) that carry
Stratus's prefixes and the host's mark (their ifalias is Host.owner:
another agent in the same namespace keeps its own)."""
import errno
import threading
from collections import defaultdict

from pyroute2.netlink.exceptions import NetlinkError

from . import iplib
from .resources import BRIDGE_PREFIX, TAP_PREFIX, VXLAN_PREFIX, vxlan_name

VXLAN_PORT = 4789
# A peer's flooding entry: broadcast and unknown unicast go to every peer.
ALL_ZEROS_MAC = "00:00:00:00:00:00"
# Ports of one network are plumbed in parallel and each ensures the network:
# one ensure (look, then make) at a time per host namespace.
_host_locks = defaultdict(threading.Lock)


def ensure_network(host, network, peers=()):
    """The network's bridge, up, with its VXLAN (and `peers`, the other
    nodes' underlay addresses) or physical interface attached."""
    with _host_locks[host.namespace], iplib.ip(host.namespace) as handle:
        _check_lower_devices(handle, host, network)
        _ensure_bridge(handle, host, network)
        if network.vni is not None:
            _ensure_vxlan(handle, host, network)
            _set_peers(handle, vxlan_name(network.vni), peers)
        if network.physical_interface:
            _plug(handle, network.bridge, network.physical_interface)


def network_present(host, network):
    """Whether the network's bridge is there with its VXLAN (or physical
    interface) on it: what a plug checks before it trusts what it made."""
    with iplib.ip(host.namespace) as handle:
        bridge = iplib.link_index(handle, network.bridge)
        lower = vxlan_name(network.vni) if network.vni is not None else network.physical_interface
        if bridge is None or lower is None:
            return bridge is not None
        index = iplib.link_index(handle, lower)
        return index is not None and handle.link("get", index=index)[0].get("master") == bridge


def set_vxlan_peers(host, network, peers):
    """Makes the VXLAN's flooding entries exactly `peers`."""
    with _host_locks[host.namespace], iplib.ip(host.namespace) as handle:
        _set_peers(handle, vxlan_name(network.vni), peers)


def vxlan_peers(host, network):
    with iplib.ip(host.namespace) as handle:
        return _peers(handle, vxlan_name(network.vni))


def delete_network(host, network):
    """Deletes the bridge and its VXLAN interface; a flat network's physical
    interface is only detached."""
    with iplib.ip(host.namespace) as handle:
        _delete_bridge(handle, network.bridge)


def plug(host, network, device, mtu=None):
    """Attaches a tap or veth to the network's bridge and brings it up."""
    with iplib.ip(host.namespace) as handle:
        _plug(handle, network.bridge, device, mtu or network.mtu)


def unplug(host, device):
    """Detaches a device from its bridge (no error if it is gone)."""
    with iplib.ip(host.namespace) as handle:
        index = iplib.link_index(handle, device)
        if index is not None:
            handle.link("set", index=index, master=0)


def resync(host, desired, peers=None, taps=()):
    """Converges the node to `desired` networks: ensures each (with
    peers[network.id] as its VXLAN peers) and deletes Stratus bridges and
    VXLAN interfaces that belong to no desired network, and taps not in
    `taps`."""
    peers = peers or {}
    for network in desired:
        ensure_network(host, network, peers.get(network.id, ()))
    delete_stale(host, desired, taps)


def adopt(host, network, devices):
    """Plugs those of `devices` (taps, veths) that exist but are off the
    network's bridge: a bridge made again (deleted behind the agent's back)
    has lost the ports the hypervisor had plugged. Marks those without a
    mark as this host's (the hypervisor made them), so that once their
    port is gone delete_stale removes them. Returns the names plugged."""
    adopted = []
    with iplib.ip(host.namespace) as handle:
        bridge_index = iplib.link_index(handle, network.bridge)
        present = {link["name"]: link for link in iplib.links(handle)}
        for device in devices:
            link = present.get(device)
            if link is None:
                continue
            if not link["alias"]:
                iplib.set_alias(handle, device, host.owner)
            if bridge_index is not None and link["master"] != bridge_index:
                handle.link("set", index=link["index"], master=bridge_index, state="up")
                adopted.append(device)
    return adopted


def delete_stale(host, desired, taps=()):
    """Deletes this host's Stratus bridges and VXLAN interfaces that belong
    to no network of `desired` (only their ids and VNIs are read), and its
    taps not among `taps` (a port's tap left when its port went while the
    agent was away)."""
    wanted = ({n.bridge for n in desired} | {vxlan_name(n.vni) for n in desired if n.vni is not None}
              | set(taps))
    with _host_locks[host.namespace], iplib.ip(host.namespace) as handle:
        for link in iplib.links(handle):
            name = link["name"]
            ours = link["alias"] == host.owner and (
                (link["kind"] == "bridge" and name.startswith(BRIDGE_PREFIX))
                or (link["kind"] == "vxlan" and name.startswith(VXLAN_PREFIX))
                or (link["kind"] in ("tun", "veth") and name.startswith(TAP_PREFIX)))
            if ours and name not in wanted:
                iplib.delete_link(handle, name)


def _ensure_bridge(handle, host, network):
    alias = iplib.link_alias(handle, network.bridge)
    if alias is None:
        try:
            # No STP and no forwarding delay: a plugged port forwards at once.
            handle.link("add", ifname=network.bridge, kind="bridge",
                        br_stp_state=0, br_forward_delay=0)
        except NetlinkError as error:
            if error.code != errno.EEXIST:
                raise
        else:
            iplib.set_alias(handle, network.bridge, host.owner)
    elif not alias:
        # Made before bridges were marked: the host that wants it takes it.
        iplib.set_alias(handle, network.bridge, host.owner)
    iplib.set_up(handle, network.bridge, mtu=network.mtu)


def _check_lower_devices(handle, host, network):
    """Refuses, before anything is made, a network whose VXLAN underlay or
    physical interface this host lacks."""
    if network.vni is not None:
        if not (host.local_ip and host.underlay_interface):
            raise ValueError(f"network {network.id} is VXLAN but the host has no underlay address")
        if iplib.link_index(handle, host.underlay_interface) is None:
            raise ValueError(f"underlay interface {host.underlay_interface} does not exist")
    if network.physical_interface and iplib.link_index(handle, network.physical_interface) is None:
        raise ValueError(f"physical interface {network.physical_interface} does not exist")


def _ensure_vxlan(handle, host, network):
    name = vxlan_name(network.vni)
    underlay = iplib.link_index(handle, host.underlay_interface)
    existing = next((l for l in iplib.links(handle) if l["name"] == name), None)
    if existing and not _vxlan_matches(existing["message"], network.vni, host.local_ip, underlay):
        iplib.delete_link(handle, name)
        existing = None
    if existing is None:
        handle.link("add", ifname=name, kind="vxlan", vxlan_id=network.vni,
                    vxlan_local=host.local_ip, vxlan_link=underlay,
                    vxlan_port=VXLAN_PORT, vxlan_learning=1)
        iplib.set_alias(handle, name, host.owner)
    elif not existing["alias"]:
        iplib.set_alias(handle, name, host.owner)
    _plug(handle, network.bridge, name, network.mtu)


def _vxlan_matches(message, vni, local_ip, underlay):
    data = message.get("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    return (data.get_attr("IFLA_VXLAN_ID") == vni
            and data.get_attr("IFLA_VXLAN_LOCAL") == local_ip
            and data.get_attr("IFLA_VXLAN_LINK") == underlay)


def _peers(handle, vxlan):
    index = iplib.link_index(handle, vxlan)
    if index is None:
        return set()
    return {entry.get("NDA_DST") for entry in handle.fdb("dump", ifindex=index)
            if entry.get("NDA_LLADDR") == ALL_ZEROS_MAC and entry.get("NDA_DST")}


def _set_peers(handle, vxlan, peers):
    index = iplib.link_index(handle, vxlan)
    present = _peers(handle, vxlan)
    for peer in set(peers) - present:
        handle.fdb("append", ifindex=index, lladdr=ALL_ZEROS_MAC, dst=peer)
    for peer in present - set(peers):
        handle.fdb("del", ifindex=index, lladdr=ALL_ZEROS_MAC, dst=peer)


def _plug(handle, bridge, device, mtu=None):
    bridge_index = iplib.link_index(handle, bridge)
    if bridge_index is None:
        raise ValueError(f"bridge {bridge} does not exist")
    device_index = iplib.link_index(handle, device)
    if device_index is None:
        raise ValueError(f"device {device} does not exist")
    attributes = {"mtu": mtu} if mtu else {}
    handle.link("set", index=device_index, master=bridge_index, state="up", **attributes)


def _delete_bridge(handle, bridge):
    bridge_index = iplib.link_index(handle, bridge)
    if bridge_index is None:
        return
    for link in iplib.links(handle):
        if link["master"] == bridge_index and link["kind"] == "vxlan" and link["name"].startswith(VXLAN_PREFIX):
            iplib.delete_link(handle, link["name"])
    iplib.delete_link(handle, bridge)
