"""Security groups and anti-spoofing as nftables rules per port.

Two tables in the host's namespace, each port with its own chains:
- `bridge stratus_ports`: frames a port sends must carry its MAC and IPs
  (allowed address pairs honoured), for ARP too; it may not answer as a
  DHCP server. Stateless, so it runs on the bridge itself. It also marks
  each frame the bridge sends out of a port with that port's number.
- `inet stratus_sg`: the port's security-group rules with conntrack, which
  the kernel gives bridged traffic through bridge netfilter (it has no
  conntrack for the bridge family). There the in/out device is the bridge,
  so traffic to a port is found by the mark (a broadcast is checked once
  per port it reaches) and traffic from a port by bridge name and source
  MAC (which anti-spoofing pins). Ingress is denied unless a rule allows
  it; egress likewise (a group with no egress rule allows none); replies to
  allowed traffic pass.
Each bridge has its own conntrack zone, so networks with the same
addresses on one node never share connection state.
A port without port security gets no chains at all.

Every change is one `nft -f` transaction: the kernel swaps the port's rules
at once, never showing a half-written set."""
import ipaddress
import json
import threading
from collections import defaultdict

from . import iplib
from .resources import Port

BRIDGE_TABLE = "bridge stratus_ports"
SG_TABLE = "inet stratus_sg"

# Protocol names and numbers Neutron accepts, as nftables names them.
PROTOCOLS = {
    "tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "sctp": "sctp", "132": "sctp",
    "icmp": "icmp", "1": "icmp", "icmpv6": "icmpv6", "ipv6-icmp": "icmpv6", "58": "icmpv6",
    "gre": "47", "esp": "50", "ah": "51", "vrrp": "112", "igmp": "2", "ipip": "4",
}
PORTED = {"tcp", "udp", "sctp"}


# Each change reads the maps and then writes them (port marks, zones are
# allocated from what is there): one change at a time per host namespace.
_host_locks = defaultdict(threading.Lock)


class InvalidRule(ValueError):
    """A rule the firewall cannot express; the message names the field."""


def apply_port(host, port):
    """Installs (or replaces) the port's rules in one transaction; with port
    security off, removes them."""
    if not port.port_security_enabled:
        return remove_port(host, port)
    _enable_bridge_netfilter(host)
    # Marked first: chains made but not marked would never be found stale.
    (_owned(host) / port.id).write_text(port.network_id)
    with _host_locks[host.namespace]:
        maps = _maps(host)
        script = (_base() + _drop_elements(maps, port) + _ensure_zone(maps, port.bridge)
                  + _port_rules(port, _port_mark(maps, port)))
        _apply(host, script)


def remove_port(host, port):
    """Removes the port's chains and map entries (no error if none)."""
    with _host_locks[host.namespace]:
        maps = _maps(host)
        script = _base() + _drop_elements(maps, port) + _release_zone(maps, port)
        for table, chain in _chains(port):
            script += [f"add chain {table} {chain}", f"flush chain {table} {chain}",
                       f"delete chain {table} {chain}"]
        _apply(host, script)
    (_owned(host) / port.id).unlink(missing_ok=True)


def resync(host, ports):
    """Installs the rules of exactly `ports` among this host's: rules of
    ports it installed before and not listed are gone afterwards. Rules
    another agent installed in the same namespace stay."""
    for port in ports:
        apply_port(host, port)
    remove_stale(host, {port.id for port in ports if port.port_security_enabled})


def remove_stale(host, wanted_ids):
    """Removes the rules this host installed for ports not in `wanted_ids`;
    returns their ids."""
    stale = [marker for marker in _owned(host).iterdir() if marker.name not in wanted_ids]
    for marker in stale:
        remove_port(host, Port(id=marker.name, network_id=marker.read_text().strip(), mac_address=""))
    return {marker.name for marker in stale}


def owned_ports(host):
    """The ids of the ports whose rules this host installed."""
    return {marker.name for marker in _owned(host).iterdir()}


def _owned(host):
    # One file per port whose chains this host made (its network id
    # inside), so a resync finds its stale chains among every agent's in
    # the shared tables without touching the others'.
    directory = host.state_dir / "ports"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def set_admin_down(host, devices):
    """Drops every frame from and to `devices` (the bridge ports of this
    host's ports that are administratively down), in a table of this
    host's own: another agent in the namespace keeps its list. An empty
    list removes the table."""
    table = f"bridge stratus_down_{host.tag}"
    script = [f"add table {table}", f"delete table {table}"]
    if devices:
        names = ", ".join(f'"{device}"' for device in sorted(devices))
        script += [
            f"add table {table}",
            f"add set {table} down {{ type ifname; elements = {{ {names} }}; }}",
            # Before the ports' own chains (priority -300): a port that is
            # down sends and receives nothing, whatever its rules allow.
            f"add chain {table} prerouting {{ type filter hook prerouting priority -310; policy accept; }}",
            f"add rule {table} prerouting iifname @down drop",
            f"add chain {table} forward {{ type filter hook forward priority -310; policy accept; }}",
            f"add rule {table} forward oifname @down drop",
        ]
    with _host_locks[host.namespace]:
        _apply(host, script)


def admin_down(host):
    """The devices set_admin_down last listed (for inspection)."""
    result = iplib.run(host.namespace, ["nft", "-j", "list", "set", "bridge", f"stratus_down_{host.tag}", "down"],
                       check=False)
    if result.returncode != 0:
        return set()
    for item in json.loads(result.stdout)["nftables"]:
        if "set" in item:
            return set(item["set"].get("elem", []))
    return set()


def port_chains(host):
    """The names of the per-port chains present, by table (for inspection)."""
    result = iplib.run(host.namespace, ["nft", "-j", "list", "chains"])
    chains = {}
    for item in json.loads(result.stdout or '{"nftables": []}')["nftables"]:
        chain = item.get("chain")
        if chain and not chain.get("hook"):
            chains.setdefault(f"{chain['family']} {chain['table']}", set()).add(chain["name"])
    return chains


def _chains(port):
    return [(BRIDGE_TABLE, f"spoof-{port.id}"), (SG_TABLE, f"in-{port.id}"), (SG_TABLE, f"out-{port.id}")]


def _base():
    """The tables, dispatch maps and hooked chains; idempotent."""
    return [
        f"add table {BRIDGE_TABLE}",
        f"add map {BRIDGE_TABLE} ports {{ type ifname : verdict; }}",
        f"add chain {BRIDGE_TABLE} prerouting {{ type filter hook prerouting priority -300; policy accept; }}",
        f"flush chain {BRIDGE_TABLE} prerouting",
        f"add rule {BRIDGE_TABLE} prerouting iifname vmap @ports",
        # Before bridge netfilter's forward hook (priority 0) hands the frame
        # to the inet table, which sees only the bridge as its device.
        f"add map {BRIDGE_TABLE} port_marks {{ type ifname : mark; }}",
        f"add chain {BRIDGE_TABLE} forward {{ type filter hook forward priority -100; policy accept; }}",
        f"flush chain {BRIDGE_TABLE} forward",
        f"add rule {BRIDGE_TABLE} forward meta mark set oifname map @port_marks",
        f"add table {SG_TABLE}",
        # A conntrack zone per bridge: two networks with the same addresses
        # on one node must not share connection state (one's established
        # flow would let the other's packets through).
        f"add map {SG_TABLE} zones {{ typeof iifname : ct zone; }}",
        f"add chain {SG_TABLE} prerouting {{ type filter hook prerouting priority -300; policy accept; }}",
        f"flush chain {SG_TABLE} prerouting",
        f"add rule {SG_TABLE} prerouting ct zone set iifname map @zones",
        f"add map {SG_TABLE} ingress_ports {{ type mark : verdict; }}",
        f"add map {SG_TABLE} egress_ports {{ type ifname . ether_addr : verdict; }}",
        f"add chain {SG_TABLE} forward {{ type filter hook forward priority 0; policy accept; }}",
        f"flush chain {SG_TABLE} forward",
        # Egress first: its chain returns when the sender may send, then the
        # receiver's ingress chain decides.
        f"add rule {SG_TABLE} forward iifname . ether saddr vmap @egress_ports",
        f"add rule {SG_TABLE} forward meta mark vmap @ingress_ports",
    ]


def _macs(port):
    macs = [port.mac_address.lower()]
    for pair in port.allowed_address_pairs:
        if pair.mac_address and pair.mac_address.lower() not in macs:
            macs.append(pair.mac_address.lower())
    return macs


def _addresses(port, version):
    found = [f.ip_address for f in port.fixed_ips]
    found += [p.ip_address for p in port.allowed_address_pairs]
    return [a for a in found if ipaddress.ip_network(a, strict=False).version == version]


def _set(items):
    return "{ " + ", ".join(items) + " }"


def _port_rules(port, mark):
    spoof, ingress, egress = (chain for _, chain in _chains(port))
    # Every rule is checked before anything is written.
    rendered = [(r.direction, _rule(r)) for r in port.security_group_rules]
    lines = []
    for table, chain in _chains(port):
        lines += [f"add chain {table} {chain}", f"flush chain {table} {chain}"]

    def spoof_rule(text):
        lines.append(f"add rule {BRIDGE_TABLE} {spoof} {text}")

    macs, v4, v6 = _set(_macs(port)), _addresses(port, 4), _addresses(port, 6)
    spoof_rule(f"ether saddr != {macs} drop")
    spoof_rule(f"arp saddr ether != {macs} drop")
    spoof_rule(f"arp saddr ip != {_set(['0.0.0.0'] + v4)} drop")
    spoof_rule("ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept")
    spoof_rule("udp sport 67 udp dport 68 drop")
    spoof_rule(f"ip saddr != {_set(v4)} drop" if v4 else "ether type ip drop")
    spoof_rule(f"ip6 saddr != {_set(['::', 'fe80::/64'] + v6)} drop")
    spoof_rule("icmpv6 type nd-router-advert drop")
    spoof_rule("udp sport 547 udp dport 546 drop")

    for chain, direction, dhcp in ((ingress, "ingress", "udp sport 67 udp dport 68"),
                                   (egress, "egress", "udp sport 68 udp dport 67")):
        def rule(text, chain=chain):
            lines.append(f"add rule {SG_TABLE} {chain} {text}")
        rule("ct state established,related return")
        rule("ct state invalid drop")
        rule(f"{dhcp} return")
        rule("icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, "
             "nd-router-advert, mld-listener-query, mld2-listener-report } return")
        for rule_direction, text in rendered:
            if rule_direction == direction and text:
                rule(text)
        rule("drop")

    for mac in _macs(port):
        lines.append(f'add element {SG_TABLE} egress_ports {{ "{port.bridge}" . {mac} : jump {egress} }}')
    lines.append(f"add element {SG_TABLE} ingress_ports {{ {mark} : jump {ingress} }}")
    lines.append(f'add element {BRIDGE_TABLE} port_marks {{ "{port.tap}" : {mark} }}')
    lines.append(f'add element {BRIDGE_TABLE} ports {{ "{port.tap}" : jump {spoof} }}')
    return lines


def _rule(rule):
    """One security-group rule as an nftables match ending in `return`
    (allowed: on to the next check), or None when it can match nothing."""
    if rule.direction not in ("ingress", "egress"):
        raise InvalidRule(f"direction {rule.direction!r} is not ingress or egress")
    if rule.ethertype not in ("IPv4", "IPv6"):
        raise InvalidRule(f"ethertype {rule.ethertype!r} is not IPv4 or IPv6")
    version = 4 if rule.ethertype == "IPv4" else 6
    family = "ip" if version == 4 else "ip6"
    remote = "saddr" if rule.direction == "ingress" else "daddr"
    parts = [f"meta nfproto ipv{version}"]
    if rule.remote_ip_prefix:
        try:
            prefix = ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
        except ValueError:
            raise InvalidRule(f"remote_ip_prefix {rule.remote_ip_prefix!r} is not an address or prefix")
        if prefix.version != version:
            raise InvalidRule(f"remote_ip_prefix {rule.remote_ip_prefix} is not {rule.ethertype}")
        parts.append(f"{family} {remote} {prefix}")
    if rule.remote_addresses is not None:
        try:
            members = [a for a in rule.remote_addresses
                       if ipaddress.ip_network(a, strict=False).version == version]
        except ValueError as error:
            raise InvalidRule(f"remote_addresses: {error}")
        if not members:
            return None
        parts.append(f"{family} {remote} {_set(members)}")
    parts += _protocol_match(rule, version)
    parts.append("return")
    return " ".join(parts)


def _protocol_match(rule, version):
    if rule.protocol in (None, "", "any"):
        return []
    protocol = PROTOCOLS.get(str(rule.protocol).lower())
    if protocol is None:
        if not str(rule.protocol).isdigit() or not 0 <= int(rule.protocol) <= 255:
            raise InvalidRule(f"protocol {rule.protocol!r} is not known")
        protocol = str(rule.protocol)
    low, high = rule.port_range_min, rule.port_range_max
    if protocol in PORTED:
        if low is None and high is None:
            return [f"meta l4proto {protocol}"]
        low, high = low if low is not None else 1, high if high is not None else 65535
        if not (isinstance(low, int) and isinstance(high, int) and 0 < low <= high <= 65535):
            raise InvalidRule(f"port range {low}-{high} is not within 1-65535 and ordered")
        return [f"{protocol} dport {low}" if low == high else f"{protocol} dport {low}-{high}"]
    if protocol in ("icmp", "icmpv6"):
        # ICMP for IPv6 is icmpv6 whatever the rule calls it (Neutron accepts "icmp" there).
        protocol = "icmp" if version == 4 else "icmpv6"
        match = [f"meta l4proto {'icmp' if version == 4 else 'ipv6-icmp'}"]
        for name, value in (("port_range_min (ICMP type)", low), ("port_range_max (ICMP code)", high)):
            if value is not None and not (isinstance(value, int) and 0 <= value <= 255):
                raise InvalidRule(f"{name} {value!r} is not within 0-255")
        if low is not None:
            match.append(f"{protocol} type {int(low)}")
            if high is not None:
                match.append(f"{protocol} code {int(high)}")
        return match
    return [f"meta l4proto {protocol}"]


def _maps(host):
    """Our maps as they are in the kernel: {name: (table, [(key, value)])}."""
    result = iplib.run(host.namespace, ["nft", "-j", "list", "maps"])
    maps = {}
    for item in json.loads(result.stdout or '{"nftables": []}')["nftables"]:
        nft_map = item.get("map")
        table = nft_map and f"{nft_map['family']} {nft_map['table']}"
        if table in (BRIDGE_TABLE, SG_TABLE):
            maps[nft_map["name"]] = (table, [tuple(e) for e in nft_map.get("elem", [])])
    return maps


def _jumps_to(value, targets):
    return isinstance(value, dict) and value.get("jump", {}).get("target") in targets


def _elements(maps, name):
    return maps.get(name, (None, []))[1]


def _old_mark(maps, port):
    return next((key for key, value in _elements(maps, "ingress_ports")
                 if _jumps_to(value, {f"in-{port.id}"})), None)


def _port_mark(maps, port):
    """The port's number: the one it has, or the lowest free one."""
    mark = _old_mark(maps, port)
    if mark is None:
        taken = {key for key, _ in _elements(maps, "ingress_ports")}
        mark = next(number for number in range(1, 2 ** 32) if number not in taken)
    return mark


def _drop_elements(maps, port):
    """Deletes the map entries that lead to the port's chains or carry its
    mark (its MAC, bridge or tap may have changed since they were written)."""
    targets = {chain for _, chain in _chains(port)}
    mark = _old_mark(maps, port)
    return [f"delete element {table} {name} {{ {_key_text(key)} }}"
            for name, (table, elements) in maps.items()
            for key, value in elements
            if _jumps_to(value, targets) or (name == "port_marks" and mark is not None and value == mark)]


def _ensure_zone(maps, bridge):
    zones = dict(_elements(maps, "zones"))
    if bridge in zones:
        return []
    free = next(zone for zone in range(1, 65536) if zone not in zones.values())
    return [f'add element {SG_TABLE} zones {{ "{bridge}" : {free} }}']


def _release_zone(maps, port):
    """Frees the bridge's zone when the port was the last one on it."""
    zones = dict(_elements(maps, "zones"))
    targets = {chain for _, chain in _chains(port)}
    others = [key for key, value in _elements(maps, "egress_ports")
              if key["concat"][0] == port.bridge and not _jumps_to(value, targets)]
    if port.bridge in zones and not others:
        return [f'delete element {SG_TABLE} zones {{ "{port.bridge}" }}']
    return []


def _key_text(key):
    # Keys are a mark, an interface name, or an interface name . a MAC address.
    if isinstance(key, dict) and "concat" in key:
        interface, mac = key["concat"]
        return f'"{interface}" . {mac}'
    if isinstance(key, int):
        return str(key)
    return f'"{key}"'


def _enable_bridge_netfilter(host):
    # Bridged IP traffic passes the inet hooks (and conntrack) only with these.
    iplib.sysctl(host.namespace, "net.bridge.bridge-nf-call-iptables", 1)
    iplib.sysctl(host.namespace, "net.bridge.bridge-nf-call-ip6tables", 1)


def _apply(host, lines):
    iplib.run(host.namespace, ["nft", "-f", "-"], input="\n".join(lines) + "\n")
