"""Security groups and anti-spoofing as nftables rules per port.

Each agent has two tables of its own in the host's namespace (named with
its Host.tag: several agents may share a namespace, and none may flush or
prune another's), each port with its own chains:
- `bridge stratus_ports_<tag>`: frames a port sends must carry its MAC and
  IPs (allowed address pairs honoured), for ARP too; it may not answer as
  a DHCP server. Stateless, so it runs on the bridge itself. It also marks
  each frame the bridge sends out of a port with that port's number.
- `inet stratus_sg_<tag>`: the port's security-group rules with conntrack,
  which the kernel gives bridged traffic through bridge netfilter (it has
  no conntrack for the bridge family). There the in/out device is the
  bridge, so traffic to a port is found by the mark (a broadcast is checked
  once per port it reaches) and traffic from a port by bridge name and
  source MAC (which anti-spoofing pins). Ingress is denied unless a rule
  allows it; egress likewise (a group with no egress rule allows none);
  replies to allowed traffic pass.
Each bridge has its own conntrack zone, so networks with the same
addresses on one node never share connection state. Marks and zones are
the namespace's, not a table's: they are given out among every agent's
tables, under a lock file all the namespace's agents take.
A port without port security gets no chains at all. The chains in an
agent's tables are its record of what it made: a resync removes those of
ports it no longer has, even when nothing else remembers them.

Every change is one `nft -f` transaction: the kernel swaps the port's rules
at once, never showing a half-written set."""
import fcntl
import ipaddress
import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from network.addressing import eui64_address

from . import iplib

BRIDGE_TABLE_PREFIX = "stratus_ports_"
SG_TABLE_PREFIX = "stratus_sg_"
# The tables of one shared by every agent of a namespace, as earlier
# versions made them; an agent that has its marker directory from then
# takes its ports out of them (see _leave_shared_tables).
SHARED_TABLES = ("bridge stratus_ports", "inet stratus_sg")
# Where the namespaces' lock files are: one machine's agents all see it.
LOCK_DIR = Path("/run/lock") if Path("/run/lock").is_dir() else Path(tempfile.gettempdir())

# Protocol names and numbers Neutron accepts, as nftables names them.
PROTOCOLS = {
    "tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "sctp": "sctp", "132": "sctp",
    "icmp": "icmp", "1": "icmp", "icmpv6": "icmpv6", "ipv6-icmp": "icmpv6", "58": "icmpv6",
    "gre": "47", "esp": "50", "ah": "51", "vrrp": "112", "igmp": "2", "ipip": "4",
}
PORTED = {"tcp", "udp", "sctp"}


class InvalidRule(ValueError):
    """A rule the firewall cannot express; the message names the field."""


def tables(host):
    """This host's (bridge table, inet table), as nft names them."""
    return f"bridge {BRIDGE_TABLE_PREFIX}{host.tag}", f"inet {SG_TABLE_PREFIX}{host.tag}"


def lock_path(namespace):
    """The lock file of `namespace` (None: the root namespace)."""
    return LOCK_DIR / f"stratus-nft-{(namespace or 'root').replace('/', '_')}.lock"


def forget_namespace(namespace):
    """Removes the lock file of a namespace that is gone (nobody holds it)."""
    lock_path(namespace).unlink(missing_ok=True)


@contextmanager
def _namespace_lock(host):
    """Holds the namespace's lock: each change reads the maps of every
    agent there (taken marks and zones) and then writes its own, one
    change at a time across threads and processes. flock: released when
    the holder dies."""
    with open(lock_path(host.namespace), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def apply_port(host, port):
    """Installs (or replaces) the port's rules in one transaction; with port
    security off, removes them."""
    if not port.port_security_enabled:
        return remove_port(host, port)
    _enable_bridge_netfilter(host)
    bridge_table, sg_table = tables(host)
    with _namespace_lock(host):
        maps = _maps(host)
        script = (_base(host) + _drop_elements(maps, bridge_table, sg_table, port.id)
                  + _ensure_zone(host, maps, port.bridge) + _port_rules(host, port, _port_mark(maps, sg_table, port)))
        _apply(host, script)


def remove_port(host, port):
    """Removes the port's chains and map entries (no error if none)."""
    _remove_ports(host, [port.id])


def _remove_ports(host, port_ids):
    bridge_table, sg_table = tables(host)
    with _namespace_lock(host):
        maps = _maps(host)
        script = _base(host)
        for port_id in port_ids:
            script += (_drop_elements(maps, bridge_table, sg_table, port_id)
                       + _release_zones(sg_table, maps.get(sg_table, {}), port_id))
            for table, chain in _chains(host, port_id):
                script += [f"add chain {table} {chain}", f"flush chain {table} {chain}",
                           f"delete chain {table} {chain}"]
        _apply(host, script)


def resync(host, ports):
    """Installs the rules of exactly `ports` among this host's: rules of
    ports it installed before and not listed are gone afterwards. Rules
    another agent installed in the same namespace stay."""
    for port in ports:
        apply_port(host, port)
    remove_stale(host, {port.id for port in ports if port.port_security_enabled})


def remove_stale(host, wanted_ids):
    """Removes the rules this host installed for ports not in `wanted_ids`
    (found in its own tables); returns their ids."""
    _leave_shared_tables(host)
    stale = owned_ports(host) - set(wanted_ids)
    if stale:
        _remove_ports(host, sorted(stale))
    return stale


def owned_ports(host):
    """The ids of the ports whose rules this host installed."""
    found = set()
    for names in port_chains(host).values():
        found |= {name.split("-", 1)[1] for name in names if name.startswith(("spoof-", "in-", "out-"))}
    return found


def _leave_shared_tables(host):
    """Takes this host's ports (its marker files of then) out of the tables
    every agent shared before each had its own, and removes those tables
    once they hold no port's chains."""
    markers = host.state_dir / "ports"
    if not markers.is_dir():
        return
    mine = {marker.name for marker in markers.iterdir()}
    bridge_table, sg_table = SHARED_TABLES
    with _namespace_lock(host):
        maps, present = _maps(host), _chains_by_table(host)
        script = []
        for port_id in mine:
            script += _drop_elements(maps, bridge_table, sg_table, port_id)
            for table, chain in _chains_of(bridge_table, sg_table, port_id):
                if chain in present.get(table, ()):
                    script += [f"flush chain {table} {chain}", f"delete chain {table} {chain}"]
        if script:
            _apply(host, script)
        left = _chains_by_table(host)
        empty = [table for table in SHARED_TABLES if table in left and not left[table]]
        if empty:
            _apply(host, [f"delete table {table}" for table in empty])
    shutil.rmtree(markers)


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
    with _namespace_lock(host):
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
    """The names of the per-port chains in this host's tables, by table."""
    own = set(tables(host))
    return {table: chains for table, chains in _chains_by_table(host).items() if table in own}


def _chains_by_table(host):
    """Every table's chains that are not hooked, by table ("family name")."""
    result = iplib.run(host.namespace, ["nft", "-j", "list", "chains"])
    chains = {}
    for item in json.loads(result.stdout or '{"nftables": []}')["nftables"]:
        chain = item.get("chain")
        if chain:
            names = chains.setdefault(f"{chain['family']} {chain['table']}", set())
            if not chain.get("hook"):
                names.add(chain["name"])
    return chains


def _chains(host, port_id):
    return _chains_of(*tables(host), port_id)


def _chains_of(bridge_table, sg_table, port_id):
    return [(bridge_table, f"spoof-{port_id}"), (sg_table, f"in-{port_id}"), (sg_table, f"out-{port_id}")]


def _base(host):
    """The host's tables, dispatch maps and hooked chains; idempotent."""
    bridge_table, sg_table = tables(host)
    return [
        f"add table {bridge_table}",
        f"add map {bridge_table} ports {{ type ifname : verdict; }}",
        f"add chain {bridge_table} prerouting {{ type filter hook prerouting priority -300; policy accept; }}",
        f"flush chain {bridge_table} prerouting",
        f"add rule {bridge_table} prerouting iifname vmap @ports",
        # Before bridge netfilter's forward hook (priority 0) hands the frame
        # to the inet table, which sees only the bridge as its device. A tap
        # of another agent's is not in the map: its mark is left as it is.
        f"add map {bridge_table} port_marks {{ type ifname : mark; }}",
        f"add chain {bridge_table} forward {{ type filter hook forward priority -100; policy accept; }}",
        f"flush chain {bridge_table} forward",
        f"add rule {bridge_table} forward meta mark set oifname map @port_marks",
        f"add table {sg_table}",
        # A conntrack zone per bridge: two networks with the same addresses
        # on one node must not share connection state (one's established
        # flow would let the other's packets through).
        f"add map {sg_table} zones {{ typeof iifname : ct zone; }}",
        f"add chain {sg_table} prerouting {{ type filter hook prerouting priority -300; policy accept; }}",
        f"flush chain {sg_table} prerouting",
        f"add rule {sg_table} prerouting ct zone set iifname map @zones",
        f"add map {sg_table} ingress_ports {{ type mark : verdict; }}",
        f"add map {sg_table} egress_ports {{ type ifname . ether_addr : verdict; }}",
        f"add chain {sg_table} forward {{ type filter hook forward priority 0; policy accept; }}",
        f"flush chain {sg_table} forward",
        # Egress first: its chain returns when the sender may send, then the
        # receiver's ingress chain decides.
        f"add rule {sg_table} forward iifname . ether saddr vmap @egress_ports",
        f"add rule {sg_table} forward meta mark vmap @ingress_ports",
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


def _port_rules(host, port, mark):
    bridge_table, sg_table = tables(host)
    spoof, ingress, egress = (chain for _, chain in _chains(host, port.id))
    # Every rule is checked before anything is written.
    rendered = [(r.direction, _rule(r)) for r in port.security_group_rules]
    lines = _group_sets(sg_table, port.security_group_rules)
    for table, chain in _chains(host, port.id):
        lines += [f"add chain {table} {chain}", f"flush chain {table} {chain}"]

    def spoof_rule(text):
        lines.append(f"add rule {bridge_table} {spoof} {text}")

    macs, v4, v6 = _set(_macs(port)), _addresses(port, 4), _addresses(port, 6)
    spoof_rule(f"ether saddr != {macs} drop")
    spoof_rule(f"arp saddr ether != {macs} drop")
    spoof_rule(f"arp saddr ip != {_set(['0.0.0.0'] + v4)} drop")
    spoof_rule("ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept")
    spoof_rule("udp sport 67 udp dport 68 drop")
    spoof_rule(f"ip saddr != {_set(v4)} drop" if v4 else "ether type ip drop")
    # IPv6: the unspecified address (duplicate address detection), the
    # link-local addresses of its MACs (as the kernel makes them) and its own.
    link_local = [eui64_address("fe80::/64", mac) for mac in _macs(port)]
    spoof_rule(f"ip6 saddr != {_set(['::'] + link_local + v6)} drop")
    spoof_rule("icmpv6 type nd-router-advert drop")
    spoof_rule("udp sport 547 udp dport 546 drop")

    # DHCP and DHCPv6 whatever the rules say, as in Neutron: the server's
    # answer to a broadcast (multicast) request is no reply conntrack knows.
    for chain, direction, dhcp in (
            (ingress, "ingress", ("udp sport 67 udp dport 68", "ip6 saddr fe80::/64 udp sport 547 udp dport 546")),
            (egress, "egress", ("udp sport 68 udp dport 67", "udp sport 546 udp dport 547"))):
        def rule(text, chain=chain):
            lines.append(f"add rule {sg_table} {chain} {text}")
        rule("ct state established,related return")
        rule("ct state invalid drop")
        for text in dhcp:
            rule(f"{text} return")
        rule("icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, "
             "nd-router-advert, mld-listener-query, mld2-listener-report } return")
        for rule_direction, text in rendered:
            if rule_direction == direction and text:
                rule(text)
        rule("drop")

    for mac in _macs(port):
        lines.append(f'add element {sg_table} egress_ports {{ "{port.bridge}" . {mac} : jump {egress} }}')
    lines.append(f"add element {sg_table} ingress_ports {{ {mark} : jump {ingress} }}")
    lines.append(f'add element {bridge_table} port_marks {{ "{port.tap}" : {mark} }}')
    lines.append(f'add element {bridge_table} ports {{ "{port.tap}" : jump {spoof} }}')
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
    if rule.remote_addresses is not None and rule.remote_group_id is not None:
        parts.append(f"{family} {remote} @{_group_set_name(rule.remote_group_id, version)}")
    elif rule.remote_addresses is not None:
        members = _members(rule.remote_addresses, version)
        if not members:
            return None
        parts.append(f"{family} {remote} {_set(members)}")
    parts += _protocol_match(rule, version)
    parts.append("return")
    return " ".join(parts)


GROUP_SET_PREFIX = "rg"


def _group_set_name(group_id, version):
    return f"{GROUP_SET_PREFIX}{version}-{group_id}"


def _members(addresses, version):
    # The database's addresses, so valid; an IPv6 address is the one with a colon.
    return [a for a in addresses if (6 if ":" in a else 4) == version]


def _group_sets(sg_table, rules):
    """The named sets of the rules' remote groups, (re)filled with their
    members' addresses: one per group and family on the host, however many
    ports' rules name it, so the ruleset (which every nft command loads)
    holds a group of thousands once and not once per port."""
    lines, made = [], set()
    for rule in rules:
        if rule.remote_addresses is None or rule.remote_group_id is None or \
                rule.ethertype not in ("IPv4", "IPv6"):
            continue
        version = 4 if rule.ethertype == "IPv4" else 6
        name = _group_set_name(rule.remote_group_id, version)
        if name in made:
            continue
        made.add(name)
        lines += [f"add set {sg_table} {name} {{ type {'ipv4_addr' if version == 4 else 'ipv6_addr'}; }}",
                  f"flush set {sg_table} {name}"]
        members = _members(rule.remote_addresses, version)
        if members:
            lines.append(f"add element {sg_table} {name} {_set(members)}")
    return lines


def set_group_members(host, group_id, addresses):
    """Brings the host's sets of remote group `group_id` to `addresses` (its
    members' addresses now) by adding and deleting only the elements that
    differ, in one transaction: a member joining or leaving costs the same
    however large the group. A set no port here names (none made) is left
    unmade. Returns the number of elements added and deleted."""
    sg_table = tables(host)[1]
    family, table = sg_table.split()
    wanted = {4: set(), 6: set()}
    for address in addresses:
        parsed = ipaddress.ip_address(address)
        wanted[parsed.version].add(parsed)
    script, changed = [], 0
    with _namespace_lock(host):
        for version in (4, 6):
            name = _group_set_name(group_id, version)
            result = iplib.run(host.namespace, ["nft", "-j", "list", "set", family, table, name], check=False)
            if result.returncode != 0:
                continue
            held = {ipaddress.ip_address(element) for item in json.loads(result.stdout)["nftables"]
                    if "set" in item for element in item["set"].get("elem", []) if isinstance(element, str)}
            added, gone = wanted[version] - held, held - wanted[version]
            changed += len(added) + len(gone)
            if gone:
                script.append(f"delete element {sg_table} {name} {_set(sorted(map(str, gone)))}")
            if added:
                script.append(f"add element {sg_table} {name} {_set(sorted(map(str, added)))}")
        if script:
            _apply(host, script)
    return changed


def remove_stale_group_sets(host, wanted_group_ids):
    """Deletes this host's remote-group sets of groups not in
    `wanted_group_ids` (no rule of its ports names them any more)."""
    sg_table = tables(host)[1]
    family, table = sg_table.split()
    result = iplib.run(host.namespace, ["nft", "-t", "-j", "list", "sets", family], check=False)
    if result.returncode != 0:
        return []
    wanted = {_group_set_name(group_id, version) for group_id in map(str, wanted_group_ids) for version in (4, 6)}
    stale = sorted(item["set"]["name"] for item in json.loads(result.stdout or '{"nftables": []}')["nftables"]
                   if "set" in item and item["set"]["table"] == table
                   and item["set"]["name"].startswith(GROUP_SET_PREFIX) and item["set"]["name"] not in wanted)
    if stale:
        with _namespace_lock(host):
            try:
                _apply(host, [f"delete set {sg_table} {name}" for name in stale])
            except iplib.CommandFailed:
                # Still named by a port that kept its previous rules: the next resync tries again.
                return []
    return stale


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
    """Every Stratus table's maps in the namespace, as they are in the
    kernel: {table: {map name: [(key, value)]}}."""
    result = iplib.run(host.namespace, ["nft", "-j", "list", "maps"])
    maps = {}
    for item in json.loads(result.stdout or '{"nftables": []}')["nftables"]:
        nft_map = item.get("map")
        if nft_map and nft_map["table"].startswith(("stratus_ports", "stratus_sg")):
            table = maps.setdefault(f"{nft_map['family']} {nft_map['table']}", {})
            table[nft_map["name"]] = [tuple(e) for e in nft_map.get("elem", [])]
    return maps


def _every(maps, family, name):
    """The elements of map `name` in every agent's table of `family`."""
    return [element for table, table_maps in maps.items() if table.startswith(family + " ")
            for element in table_maps.get(name, [])]


def _jumps_to(value, targets):
    return isinstance(value, dict) and value.get("jump", {}).get("target") in targets


def _old_mark(sg_maps, port_id):
    return next((key for key, value in sg_maps.get("ingress_ports", [])
                 if _jumps_to(value, {f"in-{port_id}"})), None)


def _port_mark(maps, sg_table, port):
    """The port's number: the one it has, or the lowest one no agent's
    port in the namespace has (marks are the namespace's)."""
    mark = _old_mark(maps.get(sg_table, {}), port.id)
    if mark is None:
        taken = {key for key, _ in _every(maps, "inet", "ingress_ports")}
        mark = next(number for number in range(1, 2 ** 32) if number not in taken)
    return mark


def _drop_elements(maps, bridge_table, sg_table, port_id):
    """Deletes the entries of the two tables' maps that lead to the port's
    chains or carry its mark (its MAC, bridge or tap may have changed since
    they were written)."""
    targets = {chain for _, chain in _chains_of(bridge_table, sg_table, port_id)}
    mark = _old_mark(maps.get(sg_table, {}), port_id)
    return [f"delete element {table} {name} {{ {_key_text(key)} }}"
            for table in (bridge_table, sg_table)
            for name, elements in maps.get(table, {}).items()
            for key, value in elements
            if _jumps_to(value, targets) or (name == "port_marks" and mark is not None and value == mark)]


def _ensure_zone(host, maps, bridge):
    """The bridge's zone in this host's table: the one another agent's
    table gives the bridge, else the lowest zone none gives."""
    sg_table = tables(host)[1]
    if bridge in dict(maps.get(sg_table, {}).get("zones", [])):
        return []
    everywhere = _every(maps, "inet", "zones")
    zone = dict(everywhere).get(bridge)
    if zone is None:
        taken = {value for _, value in everywhere}
        zone = next(number for number in range(1, 65536) if number not in taken)
    return [f'add element {sg_table} zones {{ "{bridge}" : {zone} }}']


def _release_zones(sg_table, sg_maps, port_id):
    """Frees the zones of the bridges the port was the last one on."""
    targets = {f"in-{port_id}", f"out-{port_id}"}
    egress = sg_maps.get("egress_ports", [])
    bridges = {key["concat"][0] for key, value in egress if _jumps_to(value, targets)}
    zones = dict(sg_maps.get("zones", []))
    return [f'delete element {sg_table} zones {{ "{bridge}" }}' for bridge in sorted(bridges)
            if bridge in zones and not any(key["concat"][0] == bridge and not _jumps_to(value, targets)
                                           for key, value in egress)]


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
