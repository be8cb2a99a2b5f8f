"""DHCP for a network: dnsmasq in a `qdhcp-<network id>` namespace, on a
veth into the network's bridge that carries the DHCP port's addresses.
It hands out only the ports' fixed IPs (static ranges and a hosts file),
answers DNS for their names without forwarding anywhere (`--no-resolv`, no
upstream unless one is given) and gives each guest a classless static
route to the metadata address via the DHCP port. On IPv6 subnets it works
as Neutron's modes say (see ipv6_range): DHCPv6 hands out the ports'
addresses by MAC (dhcpv6-stateful, or no mode) or only options such as DNS
(dhcpv6-stateless), and when the subnet's ipv6_ra_mode is set it sends
router advertisements with the prefix and the mode's flags, with a router
lifetime of 0: this namespace routes nothing, so the default route comes
from the router's own advertisements (routers.py). Port changes rewrite
the hosts files and SIGHUP dnsmasq; it is restarted only when its command
line (the subnets it serves) changes."""
import functools
import os
import shutil
import signal
import threading
import time
from collections import defaultdict

from . import bridges, iplib
from .resources import DHCP_NAMESPACE_PREFIX, DHCP_VETH_PREFIX, Network

METADATA_IP = "169.254.169.254"
METADATA_ADDRESS = f"{METADATA_IP}/32"
# The DHCP port's end inside the namespace.
DHCP_INTERFACE = "ns-dhcp"
STOP_TIMEOUT = 5
# Unsolicited router advertisements every so many seconds (a guest asks
# for one at once with a solicitation when its link comes up).
RA_INTERVAL = 30
SLAAC, STATELESS, STATEFUL = "slaac", "dhcpv6-stateless", "dhcpv6-stateful"
# The dnsmasq range mode that advertises a prefix with each ipv6_ra_mode's
# flags: ra-only the prefix's autonomous flag (slaac), ra-stateless that and
# other-config (DHCPv6 for options), a plain range managed and other-config
# (addresses by DHCPv6; advertised only with --enable-ra).
ADVERTISED_RANGE = {SLAAC: "ra-only", STATELESS: "ra-stateless", STATEFUL: "static"}


# Ports of a network are plumbed in parallel: one change to a network's
# DHCP (files, process) at a time. Reentrant: a failed enable disables.
_network_locks = defaultdict(threading.RLock)


def _one_at_a_time(change):
    @functools.wraps(change)
    def serialized(host, network, *args, **kwargs):
        with _network_locks[state_dir(host, network)]:
            return change(host, network, *args, **kwargs)
    return serialized


def namespace_name(network):
    return DHCP_NAMESPACE_PREFIX + network.id


def veth_name(network):
    return DHCP_VETH_PREFIX + network.id[:11]


def state_dir(host, network):
    return host.state_dir / "dhcp" / network.id


@_one_at_a_time
def enable(host, network, subnets, dhcp_port, ports, lease_seconds=86400, upstream_dns=()):
    """Starts (or brings up to date) DHCP for `network`: the namespace (with
    the metadata address on its loopback), the DHCP port's veth on the bridge
    with its addresses, the config files and dnsmasq. Idempotent; returns
    dnsmasq's pid."""
    subnets = served(subnets)
    namespace = namespace_name(network)
    # First: the state directory is how disable() knows the namespace is this host's.
    directory = state_dir(host, network)
    directory.mkdir(parents=True, exist_ok=True)
    iplib.ensure_namespace(namespace)
    with iplib.ip(host.namespace) as handle:
        iplib.ensure_veth(handle, veth_name(network), DHCP_INTERFACE, namespace)
    bridges.plug(host, network, veth_name(network))
    # Its link-local address is usable at once: router advertisements are sent from it.
    iplib.sysctl(namespace, f"net.ipv6.conf.{DHCP_INTERFACE}.accept_dad", 0)
    with iplib.ip(namespace) as handle:
        index = iplib.link_index(handle, DHCP_INTERFACE)
        handle.link("set", index=index, address=dhcp_port.mac_address, mtu=network.mtu, state="up")
        # dnsmasq binds to the addresses it finds at start: new ones need a restart.
        readdressed = iplib.set_addresses_by_family(handle, DHCP_INTERFACE, [
            (address, subnet.network.prefixlen) for subnet, address in _addresses_by_subnet(subnets, dhcp_port)])
        # The metadata address, which option 121 routes via the DHCP port, is
        # this namespace's own: a metadata proxy here serves it.
        iplib.set_addresses(handle, "lo", [("127.0.0.1", 8), (METADATA_IP, 32)])

    _write_hosts(directory, subnets, ports)
    _write_options(directory, network, subnets, dhcp_port)
    argv = _command_line(directory, network, subnets, lease_seconds, upstream_dns)
    pid = running_pid(host, network)
    if pid and command_line_of(pid) == argv and not readdressed:
        os.kill(pid, signal.SIGHUP)
        return pid
    if pid:
        stop_process(pid)
    try:
        return start_dnsmasq(namespace, directory, argv)
    except iplib.CommandFailed:
        # A DHCP server that cannot start leaves nothing half-made behind.
        disable(host, network)
        raise


@_one_at_a_time
def set_ports(host, network, subnets, ports):
    """Rewrites the hosts files for `ports` and has dnsmasq reread them
    (SIGHUP: leases and the process stay)."""
    subnets = served(subnets)
    directory = state_dir(host, network)
    _write_hosts(directory, subnets, ports)
    pid = running_pid(host, network)
    if pid is None:
        raise RuntimeError(f"DHCP is not running for network {network.id}")
    os.kill(pid, signal.SIGHUP)


@_one_at_a_time
def set_port(host, network, subnets, port):
    """Puts one port's entries in the hosts files, in place of the lines of
    its MAC or addresses, and has dnsmasq reread them when they changed:
    a plug touches one entry, not the thousands of its network."""
    subnets = served(subnets)
    directory = state_dir(host, network)
    pid = running_pid(host, network)
    if pid is None:
        raise RuntimeError(f"DHCP is not running for network {network.id}")
    hosts, names = _host_lines(subnets, [port])
    addresses = {fixed.ip_address for fixed in port.fixed_ips}
    mac = port.mac_address.lower()
    changed = False
    for name, lines, theirs in (("host", hosts, lambda fields: fields[0].lower() == mac
                                 or fields[-1].strip("[]") in addresses),
                                ("addn_hosts", names, lambda fields: fields[0] in addresses)):
        path = directory / name
        present = path.read_text().splitlines(keepends=True) if path.exists() else []
        separator = "," if name == "host" else "\t"
        kept = [line for line in present if not theirs(line.rstrip("\n").split(separator))]
        if kept + lines != present:
            _write_atomically(path, "".join(kept + lines))
            changed = True
    if changed:
        os.kill(pid, signal.SIGHUP)


@_one_at_a_time
def disable(host, network):
    """Stops dnsmasq and removes the namespace, the veth and the state files.
    No error for what is already gone. A host that never served the network
    leaves it alone: the namespace's name is the same on every host (another
    may be serving it on this machine)."""
    if not state_dir(host, network).exists():
        return
    pid = running_pid(host, network)
    if pid:
        stop_process(pid)
    with iplib.ip(host.namespace) as handle:
        iplib.delete_link(handle, veth_name(network))
    iplib.delete_namespace(namespace_name(network))
    shutil.rmtree(state_dir(host, network), ignore_errors=True)


def resync(host, desired):
    """Disables DHCP for the networks this host served that are not in
    `desired` (networks, found by their state directories, so nobody else's
    namespaces are touched). The desired ones are enabled by the caller,
    which has their subnets and ports."""
    wanted = {network.id for network in desired}
    directory = host.state_dir / "dhcp"
    if directory.exists():
        for served in directory.iterdir():
            if served.name not in wanted:
                disable(host, Network(id=served.name))


def running_pid(host, network):
    """dnsmasq's pid for this network if it runs."""
    return dnsmasq_pid(state_dir(host, network) / "pid")


def dnsmasq_pid(pid_file):
    """The pid of the dnsmasq started with `pid_file` if it runs (checked
    against its command line, so a reused pid is not mistaken for it)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    argv = command_line_of(pid)
    if argv and os.path.basename(argv[0]) == "dnsmasq" and f"--pid-file={pid_file}" in argv:
        return pid
    return None


def served(subnets):
    """The subnets a network's DHCP server is for: those with DHCP enabled."""
    return [s for s in subnets if s.enable_dhcp]


def ipv6_range(subnet):
    """How dnsmasq serves an IPv6 subnet, as Neutron's modes say: (its
    dhcp-range mode or None for no range, whether it advertises the prefix)."""
    addressing = subnet.ipv6_address_mode or subnet.ipv6_ra_mode
    advertised = subnet.ipv6_ra_mode is not None
    if advertised:
        return ADVERTISED_RANGE[subnet.ipv6_ra_mode], True
    if addressing == SLAAC:
        # Nothing to hand out, and an outside router advertises.
        return None, False
    # dhcpv6-stateful or dhcpv6-stateless with an outside router (a range
    # answers requests for options too), or no mode at all (static
    # addresses, which DHCPv6 hands out by MAC as Neutron's does).
    return "static", False


def hands_out_addresses(subnet):
    """Whether the server gives the subnet's ports their addresses (the
    others find their own: SLAAC)."""
    return subnet.version == 4 or (ipv6_range(subnet)[0] == "static"
                                   and (subnet.ipv6_address_mode or subnet.ipv6_ra_mode) != STATELESS)


def _addresses_by_subnet(subnets, port):
    by_id = {s.id: s for s in subnets}
    return [(by_id[f.subnet_id], f.ip_address) for f in port.fixed_ips if f.subnet_id in by_id]


def _tag(subnet):
    return f"subnet-{subnet.id}"


def _write_atomically(path, text):
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(path)


def _host_lines(subnets, ports):
    """The lines of the hosts file (MAC, name, address) and of the names
    file (address, name) for `ports`' addresses on `subnets`."""
    by_id = {s.id: s for s in subnets}
    hosts, names = [], []
    for port in ports:
        for fixed in port.fixed_ips:
            subnet = by_id.get(fixed.subnet_id)
            if subnet is None:
                continue
            if hands_out_addresses(subnet):
                # dnsmasq takes an IPv6 address in brackets.
                address = fixed.ip_address if subnet.version == 4 else f"[{fixed.ip_address}]"
                hosts.append(f"{port.mac_address},{port.dns_name},{address}\n")
            # Names for every address, SLAAC ones too (AAAA records).
            names.append(f"{fixed.ip_address}\t{port.dns_name}\n")
    return hosts, names


def _write_hosts(directory, subnets, ports):
    hosts, names = _host_lines(subnets, ports)
    _write_atomically(directory / "host", "".join(hosts))
    _write_atomically(directory / "addn_hosts", "".join(names))


def _write_options(directory, network, subnets, dhcp_port):
    own = {s.id: a for s, a in _addresses_by_subnet(subnets, dhcp_port)}
    lines = []
    for subnet in subnets:
        tag = _tag(subnet)
        dhcp_ip = own.get(subnet.id)
        dns = list(subnet.dns_nameservers) or ([dhcp_ip] if dhcp_ip else [])
        if subnet.version == 6:
            # The gateway and the MTU reach IPv6 hosts in router advertisements.
            if dns:
                lines.append(f"tag:{tag},option6:dns-server,{','.join(f'[{server}]' for server in dns)}")
            continue
        if dns:
            lines.append(f"tag:{tag},option:dns-server,{','.join(dns)}")
        lines.append(f"tag:{tag},option:mtu,{network.mtu}")
        # A client given option 121 ignores the router option (RFC 3442), so
        # the default route goes in it too.
        routes = []
        if dhcp_ip:
            routes.append(f"{METADATA_ADDRESS},{dhcp_ip}")
        routes += [f"{destination},{nexthop}" for destination, nexthop in subnet.host_routes]
        if subnet.gateway_ip:
            lines.append(f"tag:{tag},option:router,{subnet.gateway_ip}")
            routes.append(f"0.0.0.0/0,{subnet.gateway_ip}")
        if routes:
            lines.append(f"tag:{tag},option:classless-static-route,{','.join(routes)}")
    _write_atomically(directory / "opts", "".join(line + "\n" for line in lines))


def _command_line(directory, network, subnets, lease_seconds, upstream_dns):
    argv = [
        shutil.which("dnsmasq") or "/usr/sbin/dnsmasq",
        "--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--no-ping",
        f"--pid-file={directory / 'pid'}",
        f"--dhcp-hostsfile={directory / 'host'}",
        f"--addn-hosts={directory / 'addn_hosts'}",
        f"--dhcp-optsfile={directory / 'opts'}",
        f"--dhcp-leasefile={directory / 'leases'}",
        f"--log-facility={directory / 'log'}", "--log-dhcp",
        f"--interface={DHCP_INTERFACE}", "--except-interface=lo", "--bind-interfaces",
        "--user=root", "--group=root",
    ]
    managed_advertised = False
    for subnet in subnets:
        prefix = subnet.network
        if subnet.version == 4:
            argv.append(f"--dhcp-range=set:{_tag(subnet)},{prefix.network_address},static,"
                        f"{prefix.netmask},{lease_seconds}s")
            continue
        mode, advertised = ipv6_range(subnet)
        if mode is None:
            continue
        lease = f",{lease_seconds}s" if mode == "static" else ""
        argv.append(f"--dhcp-range=set:{_tag(subnet)},{prefix.network_address},{mode},{prefix.prefixlen}{lease}")
        managed_advertised |= mode == "static" and advertised
    if managed_advertised:
        # Advertisements for plain ranges too (ra-only and ra-stateless ones
        # are advertised anyway). dnsmasq's switch is for all of them: a
        # static subnet beside a stateful one is advertised as managed too.
        argv.append("--enable-ra")
    if any(subnet.version == 6 for subnet in subnets):
        # Router lifetime 0: hosts take the prefix and flags, not a default route.
        argv.append(f"--ra-param={DHCP_INTERFACE},mtu:{network.mtu},{RA_INTERVAL},0")
    argv += [f"--server={server}" for server in upstream_dns]
    return argv


def command_line_of(pid):
    try:
        raw = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return None
    return [part.decode() for part in raw.split(b"\0") if part]


def start_dnsmasq(namespace, directory, argv):
    """Runs dnsmasq, which daemonizes once it is ready: its parent's exit
    status tells whether it started."""
    (directory / "pid").unlink(missing_ok=True)
    errors = directory / "dnsmasq.err"
    with open(os.devnull, "rb") as stdin, open(errors, "wb") as stderr:
        launcher = iplib.popen(namespace, argv, stdin=stdin, stdout=stderr, stderr=stderr)
        returncode = launcher.wait(timeout=30)
    if returncode != 0:
        raise iplib.CommandFailed(argv, returncode, errors.read_text().strip())
    return int((directory / "pid").read_text().strip())


def stop_process(pid):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while command_line_of(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if command_line_of(pid):
        os.kill(pid, signal.SIGKILL)
