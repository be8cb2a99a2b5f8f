"""Networking's tunables. Each reads a Django setting of the same name if
the project defines one, else the environment, else Neutron's default."""
import os
from pathlib import Path

from django.conf import settings


def _str(name, default):
    return str(getattr(settings, name, None) or os.environ.get(name, default))


def _int(name, default):
    return int(getattr(settings, name, None) or os.environ.get(name, default))


def _range(name, default):
    low, _, high = _str(name, default).partition(":")
    return int(low), int(high)


# VXLAN VNIs tenant networks are given from (Neutron's vni_ranges), low:high.
VNI_RANGE = _range("STRATUS_VNI_RANGE", "1:65535")
# MTU of a VXLAN network: 1500 less the 50 bytes of VXLAN over IPv4.
VXLAN_MTU = _int("STRATUS_VXLAN_MTU", 1450)
# MTU of a flat network: the physical network's own.
FLAT_MTU = _int("STRATUS_FLAT_MTU", 1500)
# Physical networks a flat network may be put on (comma separated).
PHYSICAL_NETWORKS = [name for name in _str("STRATUS_PHYSICAL_NETWORKS", "public").split(",") if name]
# The availability zone every network and router is in.
AVAILABILITY_ZONE = _str("STRATUS_NETWORK_AVAILABILITY_ZONE", "nova")
# Neutron's default quotas (quota_network, quota_subnet, ...); -1 is no limit.
DEFAULT_QUOTAS = {
    "network": _int("STRATUS_QUOTA_NETWORK", 100),
    "subnet": _int("STRATUS_QUOTA_SUBNET", 100),
    "port": _int("STRATUS_QUOTA_PORT", 500),
    "router": _int("STRATUS_QUOTA_ROUTER", 10),
    "floatingip": _int("STRATUS_QUOTA_FLOATINGIP", 50),
    "security_group": _int("STRATUS_QUOTA_SECURITY_GROUP", 10),
    "security_group_rule": _int("STRATUS_QUOTA_SECURITY_GROUP_RULE", 100),
}
# Seconds after its last heartbeat an agent is shown dead (Neutron's
# agent_down_time); an agent that reports more often is dead once it missed
# AGENT_MISSED_REPORTS reports.
AGENT_DOWN_TIME = _int("STRATUS_AGENT_DOWN_TIME", 75)
AGENT_MISSED_REPORTS = 3
# Seconds between a node agent's heartbeats (Neutron's report_interval).
AGENT_REPORT_INTERVAL = float(_str("STRATUS_AGENT_REPORT_INTERVAL", "30"))
# Seconds between a node agent's full resyncs (the kernel made to match the
# database again: what was deleted behind its back comes back, what the
# database no longer has goes, a change whose message was lost arrives).
AGENT_RESYNC_INTERVAL = float(_str("STRATUS_AGENT_RESYNC_INTERVAL", "60"))
# Where a node's network agent keeps its state (DHCP files, which routers it made).
AGENT_STATE_DIR = Path(_str("STRATUS_NETWORK_STATE_DIR", str(Path(settings.VAR_DIR) / "network")))
# Physical networks' interfaces on this node (Neutron's
# physical_interface_mappings), e.g. "public:br-ex,other:eth2".
PHYSICAL_INTERFACE_MAPPINGS = dict(
    mapping.split(":", 1) for mapping in _str("STRATUS_PHYSICAL_INTERFACE_MAPPINGS", "").split(",") if ":" in mapping)
# The node's VXLAN underlay address (Neutron's local_ip) when it is not the
# node's management address; without it a node tunnels from its management
# address (STRATUS_MY_IP, 127.0.0.1 by default), so an all-in-one cloud's
# project networks work with nothing set.
TUNNEL_IP_SETTING = _str("STRATUS_TUNNEL_IP", "") or None
TUNNEL_IP = TUNNEL_IP_SETTING or os.environ.get("STRATUS_MY_IP") or "127.0.0.1"
# The CIDR of the subnet auto-allocated-topology gives a project (Neutron
# takes it from the default subnet pool, which Stratus has as this setting;
# empty: no default pool, so no auto-allocation).
AUTO_ALLOCATE_CIDR = _str("STRATUS_AUTO_ALLOCATE_CIDR", "10.0.0.0/24")
