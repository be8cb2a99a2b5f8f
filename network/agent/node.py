"""The node network agent: makes one host's kernel match the database.

It reads the rows (networks, ports bound to the host, their security
groups, DHCP ports and routers hosted here), turns them into the drivers'
plain resources and has the drivers converge: a bridge per network with a
port here (VXLAN to the other hosts of the network, or a flat network's
physical interface), dnsmasq for the networks whose DHCP port is bound
here, nftables rules per port, a namespace per router hosted here.

Entry points:
- `plug_port(port_id)` / `unplug_port(port_id)`: the boot pipeline's
  network step, in the node worker of the port's host;
- `NodeAgent.converge(payload)`: a "network changed" message published by
  the API side (network.changes) to the `network.<host>` queue;
- `NodeAgent.start()`: registration and a full resync after a (re)start,
  which also removes what is ours and no longer wanted;
- `keep_resyncing`: the same resync on a timer, for what changed behind
  the agent's back or in a message that was lost.

Several hosts may live in one process (simulated nodes, tests): AGENTS maps
each host this process serves to its agent. A process that runs the
boot pipeline's network step fills it first: `serve(host, kernel_host(...))`
for a real node (as `manage.py networkagent` does), `serve_simulated(hosts)`
for simulated ones; one process per host consumes its network.<host> queue."""
import logging
import re
import threading
import uuid
from collections import defaultdict

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from network import changes, conf, ports as port_rows
from network.agent import bridges, dhcp, firewall, iplib, metadata_proxy, resources, routers
from network.models import Agent, FloatingIP, IPAllocation, Network, Port, Router, SecurityGroupRule, Subnet
from workers import broker

log = logging.getLogger(__name__)

AGENTS = {}
# A DNS label, which a port's name must be to become its DHCP host name.
HOSTNAME_LABEL = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")


class AgentError(RuntimeError):
    """A port or network this host cannot plumb; the message says why."""


def agent_for(host):
    agent = AGENTS.get(host)
    if agent is None:
        raise AgentError(f"no network agent for host {host!r} runs in this process")
    return agent


def plug_port(port_id):
    """Plumbs the port on the host it is bound to (binding:host_id; an
    unbound port is bound to this process's only host): the network's
    bridge, the port's rules and its DHCP entry. The tap itself is made by
    the hypervisor (named resources.tap_name(port_id), on the returned
    bridge); the rules match it by name once it appears. Idempotent.
    Returns {"bridge": ..., "tap": ...}."""
    port = Port.objects.select_related("network").filter(pk=port_id).first()
    if port is None:
        raise AgentError(f"port {port_id} does not exist")
    host = port.binding_host_id
    if not host:
        if len(AGENTS) != 1:
            raise AgentError(f"port {port_id} is bound to no host")
        host = next(iter(AGENTS))
        port_rows.bind_port(port, host)
        port = None   # read again, bound
    return agent_for(host).plug_port(port_id, port)


def unplug_port(port_id):
    """Removes the port's rules and takes it off its host (its binding is
    cleared, so its network leaves the host with its last port)."""
    port = Port.objects.filter(pk=port_id).first()
    if port is not None and port.binding_host_id:
        agent_for(port.binding_host_id).unplug_port(port_id)
        return
    for agent in AGENTS.values():
        agent.unplug_port(port_id)


def dns_name(name):
    """A port's name as the DNS name DHCP hands out, when it is a host label."""
    return name if HOSTNAME_LABEL.match(name or "") else None


def port_resource(port, rules):
    return resources.Port(
        id=str(port.id), network_id=str(port.network_id), mac_address=port.mac_address,
        fixed_ips=tuple(resources.FixedIP(str(a.subnet_id), a.ip_address) for a in port.fixed_ips.all()),
        security_group_rules=rules,
        allowed_address_pairs=tuple(resources.AddressPair(pair["ip_address"], pair.get("mac_address"))
                                    for pair in port.allowed_address_pairs),
        port_security_enabled=port.port_security_enabled, hostname=dns_name(port.name))


def dhcp_entries(network, dhcp_port):
    """The network's ports as its DHCP hosts file lists them (all but the
    DHCP port's own, router gateways and floating IPs), read as plain rows
    in one query: a plug rewrites the file, and a network may hold
    thousands of ports."""
    rows = IPAllocation.objects.filter(port__network=network).exclude(port=dhcp_port).exclude(
        port__device_owner__in=(port_rows.ROUTER_GATEWAY, port_rows.FLOATING_IP)).order_by(
        "port__created_at", "port_id", "ip_address").values_list(
        "port_id", "port__mac_address", "port__name", "subnet_id", "ip_address")
    ports = {}
    for port_id, mac_address, name, subnet_id, ip_address in rows:
        entry = ports.setdefault(port_id, (mac_address, name, []))
        entry[2].append(resources.FixedIP(str(subnet_id), ip_address))
    return [resources.Port(id=str(port_id), network_id=str(network.pk), mac_address=mac_address,
                           fixed_ips=tuple(fixed_ips),
                           hostname=dns_name(name))
            for port_id, (mac_address, name, fixed_ips) in ports.items()]


def subnet_resource(subnet):
    return resources.Subnet(
        id=str(subnet.id), cidr=subnet.cidr, gateway_ip=subnet.gateway_ip,
        dns_nameservers=tuple(subnet.dns_nameservers),
        host_routes=tuple((route["destination"], route["nexthop"]) for route in subnet.host_routes),
        enable_dhcp=subnet.enable_dhcp, ipv6_ra_mode=subnet.ipv6_ra_mode,
        ipv6_address_mode=subnet.ipv6_address_mode)


def is_instance_port(port):
    """A machine's port (a tap), as opposed to the service's own legs."""
    return is_instance_port_owner(port.device_owner)


def is_instance_port_owner(device_owner):
    return not device_owner.startswith("network:")


class NodeAgent:
    """The network agent of one host. `kernel` is the drivers' Host (its
    namespace, underlay and state directory); `dhcp` and `l3` say whether
    this host serves DHCP and routers (a network node); a simulated host
    makes no kernel objects and only reports its ports ACTIVE."""

    def __init__(self, host, kernel, dhcp=True, l3=True, physical_interfaces=None, simulated=False,
                 report_interval=None):
        self.host = host
        self.kernel = kernel
        self.serves_dhcp = dhcp
        self.serves_l3 = l3
        self.physical_interfaces = dict(physical_interfaces or {})
        self.simulated = simulated
        self.report_interval = report_interval or conf.AGENT_REPORT_INTERVAL
        self._locks = defaultdict(threading.Lock)
        self._locks_lock = threading.Lock()
        # remove_stale reads what the host should have, then deletes the
        # rest: a plug or router sync between the two would lose its
        # bridge. Each whole convergence of this host holds this lock.
        self._plumbing = threading.RLock()
        self._admin_down = None   # the devices last made to drop everything
        # network id -> (resource, peers) last ensured in the kernel: a plug
        # into a network made so (and whose bridge is still there) makes nothing.
        self._ensured = {}
        self.resync_wanted = threading.Event()   # set: keep_resyncing resyncs now

    def __repr__(self):
        return f"<NodeAgent {self.host}>"

    def _lock(self, key):
        with self._locks_lock:
            return self._locks[key]

    # -- registration and heartbeat -----------------------------------------

    def agent_types(self):
        types = [Agent.LINUX_BRIDGE]
        if self.serves_dhcp:
            types.append(Agent.DHCP)
        if self.serves_l3:
            types.append(Agent.L3)
        return types

    def configurations(self, agent_type):
        if agent_type == Agent.LINUX_BRIDGE:
            return {"tunneling_ip": self.kernel.local_ip, "tunnel_types": ["vxlan"] if self.kernel.local_ip else [],
                    "interface_mappings": self.physical_interfaces, "simulated": self.simulated}
        if agent_type == Agent.DHCP:
            return {"dhcp_driver": "dnsmasq", "networks": Port.objects.filter(
                device_owner=port_rows.DHCP, binding_host_id=self.host).count()}
        return {"routers": Port.objects.filter(
            device_owner=port_rows.ROUTER_GATEWAY, binding_host_id=self.host).count()}

    def register(self):
        """Creates or refreshes this host's agent rows (an operator's
        admin_state_up and description stay)."""
        now = timezone.now()
        for agent_type in self.agent_types():
            values = dict(binary=Agent.BINARIES[agent_type], topic=Agent.TOPICS[agent_type],
                          configurations=self.configurations(agent_type), report_interval=self.report_interval,
                          started_at=now, heartbeat_timestamp=now)
            Agent.objects.update_or_create(host=self.host, agent_type=agent_type, defaults=values)
        # A role this host no longer has is no longer reported.
        Agent.objects.filter(host=self.host).exclude(agent_type__in=self.agent_types()).delete()

    def heartbeat(self):
        now = timezone.now()
        for agent_type in self.agent_types():
            if not Agent.objects.filter(host=self.host, agent_type=agent_type).update(
                    heartbeat_timestamp=now, configurations=self.configurations(agent_type)):
                self.register()  # deleted by an operator: come back
                return

    # -- the boot pipeline's calls ------------------------------------------

    def plug_port(self, port_id, port=None):
        """`port`: the row with its network, when the caller has just read it."""
        if port is None or port.binding_host_id != self.host:
            port = Port.objects.select_related("network").filter(pk=port_id, binding_host_id=self.host).first()
        if port is None:
            raise AgentError(f"port {port_id} is not bound to host {self.host}")
        network = port.network
        if not self.simulated:
            with self._plumbing:
                self.sync_network(network.pk, only_port=port.pk, network=network)
                self.sync_admin_state(statuses=False)   # this port's is set below
        up = port.admin_state_up and network.admin_state_up
        port_rows.set_status(port.pk, Port.Status.ACTIVE if up else Port.Status.DOWN)
        # The network's other hosts (a new VXLAN peer) and its DHCP host (the
        # port's entry) were told when the port was bound here.
        return {"bridge": resources.bridge_name(str(network.pk)), "tap": resources.tap_name(str(port.pk))}

    def unplug_port(self, port_id):
        port = Port.objects.filter(pk=port_id).first()
        if port is not None and port.binding_host_id == self.host:
            with transaction.atomic():
                Port.objects.filter(pk=port.pk).update(binding_host_id="")
                port_rows.set_status(port.pk, Port.Status.DOWN)
        if self.simulated:
            return
        with self._plumbing:
            self._unplug(port_id, port)

    def _unplug(self, port_id, port):
        tap = resources.tap_name(str(port_id))
        bridges.unplug(self.kernel, tap)
        if port is not None:
            firewall.remove_port(self.kernel, resources.Port(id=str(port.pk), network_id=str(port.network_id),
                                                             mac_address=port.mac_address))
            # The other ports' rules stay as they are.
            self.sync_network(port.network_id, only_port=port.pk)
            if not Port.objects.filter(network_id=port.network_id, binding_host_id=self.host).exists():
                # Its last port here: the network's other hosts drop this one as a peer.
                changes.network_changed([port.network_id], exclude_host=self.host)
        else:
            self.remove_stale()

    # -- convergence --------------------------------------------------------

    def converge(self, payload):
        """Brings what a "network changed" message names up to date:
        {"networks": [ids], "routers": [ids], "groups": [ids]}. A group's
        members changed: only its address sets are rewritten (no network
        is read again, nothing else can have gone stale)."""
        if self.simulated:
            return
        with self._plumbing:
            for router_id in payload.get("routers", ()):
                self.sync_router(router_id)
            for network_id in payload.get("networks", ()):
                self.sync_network(network_id)
            for group_id in payload.get("groups", ()):
                self.sync_group_members(group_id)
            if payload.get("routers") or payload.get("networks"):
                self.remove_stale()
                self.sync_admin_state()

    def sync_group_members(self, group_id):
        """The sets of remote group `group_id` on this host made to hold its
        members' addresses, read in one query; returns the elements changed."""
        return firewall.set_group_members(self.kernel, str(group_id), self.group_members(group_id))

    @staticmethod
    def group_members(group_id):
        """The fixed IPs of the group's ports, as its remote-group rules match them."""
        return tuple(IPAllocation.objects.filter(port__security_groups=group_id)
                     .order_by().values_list("ip_address", flat=True).distinct())

    def start(self):
        """Registers, then converges the whole host to the database and
        removes our kernel objects that no longer belong to anything."""
        self.register()
        if not self.simulated:
            self.resync()

    def resync(self, announce=True):
        """Converges the whole host to the database; `announce` tells the
        network's other hosts to converge too (after a restart, when they
        may have dropped this one as a peer)."""
        with self._plumbing:
            self._resync(announce)

    def _resync(self, announce=True):
        wanted = self.wanted_networks()
        for router_id in self.hosted_routers():
            self.sync_router(router_id)
        for network in Network.objects.filter(pk__in=wanted):
            try:
                self.sync_network(network.pk)
            except Exception:  # noqa: BLE001  (one broken network must not keep the others down)
                log.exception("%s: could not converge network %s", self.host, network.pk)
        self.remove_stale()
        self.sync_admin_state(force=True)
        if announce:
            changes.network_changed(wanted, exclude_host=self.host)

    def wanted_networks(self):
        return set(Port.objects.filter(binding_host_id=self.host).values_list("network_id", flat=True).distinct())

    def hosted_routers(self):
        return set(Router.objects.filter(
            Q(gateway_port__binding_host_id=self.host)
            | Q(id__in=self._router_ids(Port.objects.filter(binding_host_id=self.host,
                                                            device_owner=port_rows.ROUTER_INTERFACE))))
            .values_list("id", flat=True))

    @staticmethod
    def _router_ids(legs):
        ids = []
        for device_id in legs.values_list("device_id", flat=True).distinct():
            try:
                ids.append(str(uuid.UUID(device_id)))
            except ValueError:
                pass
        return ids

    def remove_stale(self):
        """Removes our bridges, DHCP servers, routers and port rules that
        belong to nothing this host should have."""
        wanted = [resources.Network(id=str(network_id), vni=vni) for network_id, vni in Network.objects.filter(
            pk__in=self.wanted_networks(), network_type=Network.Type.VXLAN).values_list("id", "segmentation_id")]
        wanted += [resources.Network(id=str(network_id)) for network_id in Network.objects.filter(
            pk__in=self.wanted_networks()).exclude(network_type=Network.Type.VXLAN).values_list("id", flat=True)]
        bridges.delete_stale(self.kernel, wanted, taps=[resources.tap_name(str(port_id)) for port_id in
                                                        self.instance_ports().values_list("id", flat=True)])
        dhcp.resync(self.kernel, [resources.Network(id=str(network_id)) for network_id in Port.objects.filter(
            binding_host_id=self.host, device_owner=port_rows.DHCP).values_list("network_id", flat=True)])
        hosted = {str(router_id) for router_id in self.hosted_routers()}
        for key in metadata_proxy.running():
            if key.startswith("router:") and key.split(":")[1] not in hosted:
                metadata_proxy.stop(key)
        routers.remove_stale(self.kernel, hosted)
        secured = self.instance_ports().filter(port_security_enabled=True)
        gone = firewall.remove_stale(self.kernel, {str(port_id) for port_id in secured.values_list("id", flat=True)})
        if gone:
            log.info("%s: removed the rules of %d port(s) no longer here", self.host, len(gone))
        firewall.remove_stale_group_sets(self.kernel, set(SecurityGroupRule.objects.filter(
            security_group__ports__in=secured, remote_group__isnull=False).values_list("remote_group_id", flat=True)))

    def sync_admin_state(self, force=False, statuses=True):
        """Stops the traffic of this host's ports that are administratively
        down, or on a network that is (their taps, DHCP and router legs
        drop every frame), restores the others', and (with `statuses`)
        reports the machines' ports DOWN, or ACTIVE again once up with their
        tap there. The kernel is written only when the list changed (or
        `force`)."""
        rows = list(Port.objects.filter(binding_host_id=self.host)
                    .values_list("id", "network_id", "device_owner", "admin_state_up", "network__admin_state_up",
                                 "status"))
        down = {row for row in rows if not (row[3] and row[4])}
        devices = {device for device in (self.bridge_port(*row[:3]) for row in down) if device}
        if force or devices != self._admin_down:
            firewall.set_admin_down(self.kernel, devices)
            self._admin_down = devices
        if not statuses:
            return
        machines = [row for row in rows if is_instance_port_owner(row[2])]
        for port_id, *_ in (row for row in machines if row in down and row[5] != Port.Status.DOWN):
            port_rows.set_status(port_id, Port.Status.DOWN)
        waking = [row for row in machines if row not in down and row[5] == Port.Status.DOWN]
        if waking:
            with iplib.ip(self.kernel.namespace) as handle:
                present = {link["name"] for link in iplib.links(handle)}
            for port_id, *_ in waking:
                if resources.tap_name(str(port_id)) in present:
                    port_rows.set_status(port_id, Port.Status.ACTIVE)

    @staticmethod
    def bridge_port(port_id, network_id, device_owner):
        """The device a port of this host has on its network's bridge."""
        if device_owner == port_rows.DHCP:
            return dhcp.veth_name(resources.Network(id=str(network_id)))
        if device_owner in (port_rows.ROUTER_INTERFACE, port_rows.ROUTER_GATEWAY):
            return routers.veth_name(str(port_id))
        if is_instance_port_owner(device_owner):
            return resources.tap_name(str(port_id))
        return None

    def instance_ports(self):
        return Port.objects.filter(binding_host_id=self.host).exclude(device_owner__startswith="network:")

    @staticmethod
    def instance_port_rows(queryset):
        return list(queryset.prefetch_related("fixed_ips", "security_groups__rules"))

    def network_resource(self, network):
        if network.network_type == Network.Type.FLAT:
            interface = self.physical_interfaces.get(network.physical_network)
            if interface is None:
                raise AgentError(f"host {self.host} has no interface for physical network "
                                 f"{network.physical_network}")
            return resources.Network(id=str(network.pk), mtu=network.mtu, physical_interface=interface)
        return resources.Network(id=str(network.pk), mtu=network.mtu, vni=network.segmentation_id)

    def peers(self, network_id):
        """The underlay addresses of the other hosts with a port on the network."""
        hosts = (Port.objects.filter(network_id=network_id).exclude(binding_host_id__in=("", self.host))
                 .values_list("binding_host_id", flat=True).distinct())
        addresses = Agent.objects.filter(host__in=list(hosts), agent_type=Agent.LINUX_BRIDGE).values_list(
            "configurations", flat=True)
        return sorted({c.get("tunneling_ip") for c in addresses if c.get("tunneling_ip")}
                      - {self.kernel.local_ip})

    def rules_of(self, port):
        """The port's security-group rules as the firewall takes them, remote
        groups resolved to their members' addresses."""
        rules, members = [], {}
        for group in port.security_groups.all():
            for rule in group.rules.all():
                remote = None
                if rule.remote_group_id:
                    # Read once per group (its IPv4 and IPv6 rules name it both).
                    if rule.remote_group_id not in members:
                        members[rule.remote_group_id] = self.group_members(rule.remote_group_id)
                    remote = members[rule.remote_group_id]
                rules.append(resources.SecurityGroupRule(
                    direction=rule.direction, ethertype=rule.ethertype, protocol=rule.protocol,
                    port_range_min=rule.port_range_min, port_range_max=rule.port_range_max,
                    remote_ip_prefix=rule.remote_ip_prefix, remote_addresses=remote,
                    remote_group_id=str(rule.remote_group_id) if rule.remote_group_id else None))
        return tuple(rules)

    def sync_network(self, network_id, only_port=None, network=None):
        """Converges one network on this host: its bridge and peers, the
        rules of this host's ports on it (of `only_port` alone, when given:
        a plug touches no other port), its DHCP server if hosted here; or
        removes them all when the host no longer has a port on it."""
        with self._lock(f"network-{network_id}"):
            self._sync_network(network_id, only_port, network)

    def _sync_network(self, network_id, only_port=None, network=None):
        if network is None:
            network = Network.objects.filter(pk=network_id).first()
        subnets = list(Subnet.objects.filter(network_id=network_id)) if network is not None else []
        if network is not None and self.serves_dhcp:
            self.schedule_dhcp(network, subnets)
        ports_here = Port.objects.filter(network_id=network_id, binding_host_id=self.host)
        if only_port is None:
            here = list(ports_here.prefetch_related("fixed_ips", "security_groups__rules"))
        else:
            # A plug or unplug touches its own port's rules and DHCP entry only.
            here = list(ports_here.filter(Q(pk=only_port) | Q(device_owner=port_rows.DHCP))
                        .prefetch_related("fixed_ips", "security_groups__rules"))
        if network is None or not (here or ports_here.exists()):
            gone = resources.Network(id=str(network_id))
            self._ensured.pop(str(network_id), None)
            self.disable_dhcp(gone)
            bridges.delete_network(self.kernel, gone)
            return
        resource = self.network_resource(network)
        peers = self.peers(network_id)
        if only_port is None or self._ensured.get(resource.id) != (resource, peers) \
                or not bridges.network_present(self.kernel, resource):
            bridges.ensure_network(self.kernel, resource, peers)
            self._ensured[resource.id] = (resource, peers)
        if only_port is None:
            # A bridge made again has lost the taps the hypervisor had put
            # on it (a plug's own tap comes later, from the hypervisor).
            adopted = bridges.adopt(self.kernel, resource, [resources.tap_name(str(port.pk)) for port in here
                                                            if is_instance_port(port)])
            if adopted:
                log.warning("%s: put %s back on the bridge of network %s", self.host, ", ".join(adopted),
                            network_id)
        for port in here:
            if is_instance_port(port) and only_port in (None, port.pk):
                try:
                    firewall.apply_port(self.kernel, port_resource(port, self.rules_of(port)))
                except firewall.InvalidRule as error:
                    log.error("%s: port %s keeps its previous rules: %s", self.host, port.pk, error)
        dhcp_port = next((port for port in here if port.device_owner == port_rows.DHCP), None)
        if dhcp_port is None:
            self.disable_dhcp(resource)
        else:
            self.sync_dhcp(network, subnets, resource, dhcp_port,
                           next((port for port in here if port.pk == only_port), None) if only_port else None,
                           partial=only_port is not None)

    # -- DHCP ---------------------------------------------------------------

    def schedule_dhcp(self, network, subnets=None):
        """Gives a network with DHCP subnets a DHCP port, bound to this host
        when no other host serves it (under the network's row lock, so two
        agents never both take it); fills in the port's address on a DHCP
        subnet added since; deletes it when no DHCP subnet is left."""
        subnets = [s for s in (network.subnets.all() if subnets is None else subnets) if s.enable_dhcp]
        # Served by another host, or here on the subnets it should be: nothing
        # to lock (the usual case of a plug).
        served = Port.objects.filter(network=network, device_owner=port_rows.DHCP).prefetch_related(
            "fixed_ips").first()
        if served is not None and (served.binding_host_id not in ("", self.host) or (
                subnets and {a.subnet_id for a in served.fixed_ips.all()} == {s.id for s in subnets})):
            return
        with transaction.atomic():
            if not Network.objects.select_for_update().filter(pk=network.pk).exists():
                return
            existing = Port.objects.filter(network=network, device_owner=port_rows.DHCP).first()
            if existing is not None and existing.binding_host_id not in ("", self.host):
                return
            if not subnets:
                if existing is not None:
                    port_rows.delete_port(existing)
                return
            if existing is None:
                if not Agent.objects.filter(host=self.host, agent_type=Agent.DHCP, admin_state_up=True).exists():
                    return  # disabled by an operator: takes no new network
                port_rows.create_port(network, network.project_id, count_quota=False,
                                      fixed_ips=[{"subnet_id": str(s.id)} for s in subnets],
                                      device_owner=port_rows.DHCP, device_id=f"dhcp-{self.host}",
                                      binding_host_id=self.host, port_security_enabled=False, security_groups=[])
                return
            served = set(existing.fixed_ips.values_list("subnet_id", flat=True))
            wanted = {s.id for s in subnets}
            if served != wanted:
                current = {a.subnet_id: a.ip_address for a in existing.fixed_ips.all()}
                port_rows.update_port(existing, fixed_ips=[
                    {"subnet_id": str(s), **({"ip_address": current[s]} if s in current else {})} for s in wanted])

    def sync_dhcp(self, network, subnets, resource, dhcp_port, plugged=None, partial=False):
        """The network's DHCP server brought up to date; `partial` (a plug
        or unplug of one port, `plugged` when it is here) touches only that
        port's entry of a running server."""
        subnets = [subnet_resource(s) for s in subnets]
        if not any(s.enable_dhcp for s in subnets):
            self.disable_dhcp(resource)
            return
        if partial and dhcp.running_pid(self.kernel, resource):
            # A plug changes one host entry of a running server: that entry
            # written and reread is enough (an unplug changes none; the full
            # sync, which checks the namespace, addresses, options and every
            # entry, is the resync's and a change message's).
            try:
                if plugged is not None and plugged.device_owner not in (
                        port_rows.DHCP, port_rows.ROUTER_GATEWAY, port_rows.FLOATING_IP):
                    dhcp.set_port(self.kernel, resource, subnets, port_resource(plugged, ()))
                return
            except RuntimeError:
                pass  # it stopped meanwhile: started again below
        entries = dhcp_entries(network, dhcp_port)
        dhcp.enable(self.kernel, resource, subnets, port_resource(dhcp_port, ()), entries)
        # Guests reach 169.254.169.254 through the DHCP port (dnsmasq's
        # classless route), and fe80::a9fe:a9fe on their link: the metadata
        # proxy listens in that namespace.
        try:
            metadata_proxy.start(dhcp.namespace_name(resource), resource.id, settings.METADATA_URL,
                                 interface=dhcp.DHCP_INTERFACE)
        except OSError as error:
            log.error("%s: no metadata proxy for network %s: %s", self.host, resource.id, error)

    def disable_dhcp(self, resource):
        # The proxy's socket would keep the namespace alive.
        metadata_proxy.stop(resource.id)
        dhcp.disable(self.kernel, resource)

    # -- routers ------------------------------------------------------------

    def sync_router_metadata(self, router_id, interfaces):
        """IPv6 metadata from the router's namespace into the networks no
        DHCP namespace serves (no DHCP port: DHCP off, or SLAAC with no
        dnsmasq), as Neutron's router metadata proxy: [fe80::a9fe:a9fe] on
        each of their IPv6 legs. A network with a DHCP namespace is served
        there (its DHCP port appearing or going tells the router)."""
        legs = {leg.port_id: leg for leg in interfaces if leg.version == 6}
        served = {str(network_id) for network_id in Port.objects.filter(
            network_id__in={leg.network.id for leg in legs.values()}, device_owner=port_rows.DHCP)
            .values_list("network_id", flat=True)} if legs else set()
        prefix, wanted = router_proxy_prefix(router_id), set()
        namespace = routers.namespace_name(resources.Router(id=str(router_id)))
        for port_id, leg in legs.items():
            if leg.network.id in served:
                continue
            key = f"{prefix}{port_id}"
            try:
                metadata_proxy.start(namespace, leg.network.id, settings.METADATA_URL, address=None,
                                     interface=routers.interface_name(routers.INTERNAL_PREFIX, port_id), key=key)
                wanted.add(key)
            except OSError as error:
                log.error("%s: no metadata proxy on router %s's leg %s: %s", self.host, router_id, port_id, error)
        metadata_proxy.stop_others(prefix, keep=wanted)

    def sync_router(self, router_id):
        with self._lock(f"router-{router_id}"):
            self._sync_router(router_id)

    def _router_legs(self, router):
        legs = Port.objects.filter(device_owner=port_rows.ROUTER_INTERFACE, device_id=str(router.pk))
        if router.gateway_port_id:
            legs = legs | Port.objects.filter(pk=router.gateway_port_id)
        return legs

    def schedule_router(self, router):
        """Binds the router's legs to this host when no other host has it;
        returns whether it is hosted here."""
        with transaction.atomic():
            router = Router.objects.select_for_update().filter(pk=router.pk).first()
            if router is None:
                return False
            hosts = set(self._router_legs(router).exclude(binding_host_id="")
                        .values_list("binding_host_id", flat=True))
            if hosts - {self.host}:
                return False
            if not Agent.objects.filter(host=self.host, agent_type=Agent.L3, admin_state_up=True).exists() \
                    and not hosts:
                return False
            bound = list(self._router_legs(router).exclude(binding_host_id=self.host).values_list("pk", flat=True))
            Port.objects.filter(pk__in=bound).update(binding_host_id=self.host)
        if bound:
            changes.network_changed(set(Port.objects.filter(pk__in=bound).values_list("network_id", flat=True)))
        return True

    def _sync_router(self, router_id):
        router = Router.objects.select_related("gateway_port").filter(pk=router_id).first()
        if router is None or not self.serves_l3 or not self.schedule_router(router):
            # Their sockets would keep the namespace alive.
            metadata_proxy.stop_others(router_proxy_prefix(router_id))
            routers.delete_router(self.kernel, resources.Router(id=str(router_id)))
            return
        interfaces = []
        for leg in Port.objects.filter(device_owner=port_rows.ROUTER_INTERFACE, device_id=str(router.pk)) \
                .select_related("network").prefetch_related("fixed_ips__subnet"):
            addresses = list(leg.fixed_ips.all())
            if not addresses:
                continue
            self.sync_network(leg.network_id)
            network = self.network_resource(leg.network)
            # Every fixed IP of the leg's port: one address per subnet (a
            # port added as an interface may have several).
            interfaces += [resources.RouterInterface(
                port_id=str(leg.pk), network=network, mac_address=leg.mac_address, ip_address=address.ip_address,
                cidr=address.subnet.cidr, ipv6_ra_mode=address.subnet.ipv6_ra_mode) for address in addresses]
        gateway = None
        if router.gateway_port_id:
            leg = Port.objects.select_related("network").prefetch_related("fixed_ips__subnet").get(
                pk=router.gateway_port_id)
            # Its IPv4 address (the one SNAT and floating IPs use) and its
            # IPv6 ones, the first IPv6 subnet with a gateway the default route.
            address = next((a for a in leg.fixed_ips.all() if a.subnet.ip_version == 4), None)
            ipv6 = [a for a in leg.fixed_ips.all() if a.subnet.ip_version == 6]
            if address is not None or ipv6:
                self.sync_network(leg.network_id)
                gateway = resources.RouterGateway(
                    port_id=str(leg.pk), network=self.network_resource(leg.network), mac_address=leg.mac_address,
                    ip_address=address.ip_address if address else None, cidr=address.subnet.cidr if address else None,
                    gateway_ip=address.subnet.gateway_ip if address else None,
                    ipv6_addresses=tuple((a.ip_address, a.subnet.cidr) for a in ipv6),
                    ipv6_gateway_ip=next((a.subnet.gateway_ip for a in ipv6 if a.subnet.gateway_ip), None))
        floating = FloatingIP.objects.filter(router=router, port__isnull=False, fixed_ip_address__isnull=False)
        routers.sync_router(self.kernel, resources.Router(
            id=str(router.pk), interfaces=tuple(interfaces), gateway=gateway, enable_snat=router.enable_snat,
            admin_state_up=router.admin_state_up,
            floating_ips=tuple(resources.FloatingIP(f.floating_ip_address, f.fixed_ip_address) for f in floating),
            routes=tuple((route["destination"], route["nexthop"]) for route in router.routes)))
        self.sync_router_metadata(router.pk, interfaces)
        floating.exclude(status="ACTIVE").update(status="ACTIVE")
        FloatingIP.objects.filter(router=router).exclude(pk__in=floating.values("pk")).exclude(
            status="DOWN").update(status="DOWN")
        self._router_legs(router).exclude(status=Port.Status.ACTIVE).update(status=Port.Status.ACTIVE)


def router_proxy_prefix(router_id):
    return f"router:{router_id}:"


def kernel_host(name, namespace=None, underlay_interface=None, local_ip=None, state_dir=None):
    """The drivers' Host for the node `name`: the underlay interface is the
    one holding `local_ip` when not named."""
    if local_ip and not underlay_interface:
        with iplib.ip(namespace) as handle:
            for address in handle.addr("dump", family=2):
                if address.get("IFA_ADDRESS") == local_ip:
                    underlay_interface = handle.get_links(address["index"])[0].get("ifname")
    return resources.Host(namespace=namespace, underlay_interface=underlay_interface, local_ip=local_ip,
                          state_dir=state_dir or conf.AGENT_STATE_DIR / name, name=name)


def serve(host, kernel, **options):
    """Makes and starts this process's agent for `host` (the node worker's
    hook); returns it."""
    agent = NodeAgent(host, kernel, **options)
    agent.start()
    AGENTS[host] = agent
    return agent


def keep_reporting(agents, interval, stopping):
    """Heartbeats of `agents` every `interval` seconds until `stopping` is
    set, in a daemon thread (the network agent's and the node worker's)."""
    failing = set()

    def beat():
        while not stopping.wait(interval):
            for agent in agents:
                try:
                    agent.heartbeat()
                except Exception:  # noqa: BLE001  (the next beat tries again)
                    log.exception("%s: heartbeat failed", agent.host)
                    failing.add(agent.host)
                    continue
                if agent.host in failing:
                    # The database is back: what changed meanwhile is converged now.
                    failing.discard(agent.host)
                    agent.resync_wanted.set()
            close_old_connections()

    thread = threading.Thread(target=beat, name="network-heartbeat", daemon=True)
    thread.start()
    return thread


def keep_resyncing(agents, interval, stopping, retry=5):
    """Resyncs each real agent of `agents` every `interval` seconds until
    `stopping` is set, in a daemon thread each: whatever was changed behind
    an agent's back, or told in a message lost with the broker, is
    converged within a period. A resync that fails (the database away) is
    tried again every `retry` seconds until one succeeds; a heartbeat that
    works again after failing, or the worker's broker connection restored
    (messages published meanwhile never came), asks for one at once."""
    real = [agent for agent in agents if not agent.simulated]

    def broker_back(**kwargs):
        for agent in real:
            agent.resync_wanted.set()

    broker.connection_restored.connect(broker_back, weak=False)
    threads = []
    for agent in real:

        def loop(agent=agent):
            wait = interval
            while not stopping.is_set():
                agent.resync_wanted.wait(wait)
                agent.resync_wanted.clear()
                if stopping.is_set():
                    return
                close_old_connections()
                try:
                    agent.resync(announce=False)
                    wait = interval
                except Exception:  # noqa: BLE001  (the next try converges)
                    log.exception("%s: resync failed; trying again in %s s", agent.host, retry)
                    wait = min(interval, retry)

        threads.append(threading.Thread(target=loop, name=f"network-resync-{agent.host}", daemon=True))
        threads[-1].start()
    return threads


def serve_simulated(hosts):
    """Agents for simulated nodes: no kernel objects, ports only reported.
    Returns them."""
    for host in hosts:
        AGENTS[host] = NodeAgent(host, resources.Host(), dhcp=False, l3=False, simulated=True)
        AGENTS[host].start()
    return [AGENTS[host] for host in hosts]

