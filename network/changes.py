"""Tells the node agents that rows they plumb changed: a small "network
changed" message to the `network.<host>` queue of each host concerned,
sent once the writing transaction commits (an agent never reads the rows
before they are there). Each write's owner calls one of these:
ports.py for ports, the views for subnets, security-group rules, routers
and floating IPs. The hosts are found when the call is made, so a delete
calls before its rows go.

A message is {"networks": [ids], "routers": [ids], "groups": [ids]}: the
agent converges those networks and routers on its host
(network.agent.node.NodeAgent.converge); for a group, whose members
changed, it only brings that group's address sets up to date (the sets
remote-group rules match), however many ports name it. A lost message
(the broker away) is made up for by the agent's resync on its next start.

Messages coalesce: while a host has a message about a network (or router)
it has not begun to converge, a further change of that network sends it
nothing, since the agent reads the rows when it begins and so sees this
change too (a "pending" key per host and id in the broker's Redis, set by
the sender, cleared by the agent before it reads; it expires, so one lost
with its message holds nothing back for long). A boot storm of N ports on
one network so costs each host a few converges instead of N."""
import logging
import threading
import uuid
from collections import defaultdict

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Q, Subquery
from kombu.exceptions import OperationalError

from network.models import Agent, Network, Port, Router, SecurityGroupRule, Subnet

log = logging.getLogger(__name__)

CONVERGE = "network.tasks.converge"
DHCP = "network:dhcp"
ROUTER_INTERFACE = "network:router_interface"
# Seconds a pending key outlives the message it stands for at most.
PENDING_SECONDS = 30

_redis = threading.local()


def _pending_store():
    """The broker's Redis (the pending keys live and go with its queues),
    or None when the broker is something else: then nothing coalesces."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        return None
    client = getattr(_redis, "client", None)
    if client is None or _redis.url != url:
        _redis.client, _redis.url = redis.Redis.from_url(url), url
    return _redis.client


def _pending_keys(host, payload):
    return [f"stratus:network-pending:{host}:{kind}:{item}" for kind, ids in payload.items() for item in ids]


def _not_pending(messages):
    """Of {host: payload}, the part each host has no message waiting about,
    each id of it marked pending (hosts left with nothing left out); all of
    it when the store does not answer. One round trip for every host: a
    port of a remote group its rules name tells every host with a member."""
    store = _pending_store()
    if store is None:
        return messages
    entries = [(host, kind, item) for host, payload in messages.items() for kind, ids in payload.items()
               for item in ids]
    try:
        with store.pipeline(transaction=False) as pipe:
            for host, kind, item in entries:
                pipe.set(_pending_keys(host, {kind: [item]})[0], 1, nx=True, ex=PENDING_SECONDS)
            marked = pipe.execute()
    except redis.RedisError as error:
        log.warning("could not mark changes pending for %s: %s", ", ".join(sorted(messages)), error)
        return messages
    fresh = defaultdict(lambda: defaultdict(list))
    for (host, kind, item), new in zip(entries, marked):
        if new:
            fresh[host][kind].append(item)
    return {host: dict(payload) for host, payload in fresh.items()}


def _forget_pending(host, payload):
    store = _pending_store()
    keys = _pending_keys(host, payload)
    if store is None or not keys:
        return
    try:
        store.delete(*keys)
    except redis.RedisError as error:
        log.warning("could not clear the pending changes of %s: %s", host, error)


def taken(host, payload):
    """The agent of `host` begins to converge `payload`: changes made from
    now on are told again (called before it reads the rows)."""
    _forget_pending(host, payload)


def _publish(messages):
    """Sends {host: {"networks": set, "routers": set}} after commit, but
    not what the host has a message waiting about already."""
    messages = {host: {kind: sorted(map(str, ids)) for kind, ids in kinds.items() if ids}
                for host, kinds in messages.items() if host}
    messages = {host: payload for host, payload in messages.items() if payload}
    if not messages:
        return

    def send():
        from workers import queues
        from workers.celery import app

        for host, payload in _not_pending(messages).items():
            queue = queues.network(host)
            try:
                app.send_task(CONVERGE, args=(host, payload), queue=queue, routing_key=queue, ignore_result=True)
            except OperationalError as error:
                _forget_pending(host, payload)
                log.warning("could not tell %s that %s changed: %s", host, payload, error)

    transaction.on_commit(send)


def _empty():
    return defaultdict(lambda: {"networks": set(), "routers": set(), "groups": set()})


def _dhcp_agent_hosts():
    """Hosts that may take a network's DHCP when none serves it yet."""
    return [agent.host for agent in Agent.alive(agent_type=Agent.DHCP, admin_state_up=True)]


def _add_networks(messages, network_ids, exclude_host=None):
    network_ids = set(network_ids)
    if not network_ids:
        return
    pairs = set(Port.objects.filter(network_id__in=network_ids).exclude(binding_host_id="")
                .values_list("binding_host_id", "network_id"))
    served = set(Port.objects.filter(network_id__in=network_ids, device_owner=DHCP)
                 .values_list("network_id", flat=True))
    wanting = set(Subnet.objects.filter(network_id__in=network_ids, enable_dhcp=True)
                  .values_list("network_id", flat=True))
    unserved = wanting - served
    if unserved:
        # A DHCP agent takes the network (the first to lock it wins).
        pairs |= {(host, network_id) for host in _dhcp_agent_hosts() for network_id in unserved}
    for host, network_id in pairs:
        if host != exclude_host:
            messages[host]["networks"].add(network_id)


def network_changed(network_ids, exclude_host=None, also_hosts=()):
    """The networks' ports, subnets or hosts changed: every host with a
    port on them (and `also_hosts`, which may have had one) converges them
    (bridge, peers, DHCP, rules)."""
    messages = _empty()
    _add_networks(messages, network_ids, exclude_host)
    for host in also_hosts:
        if host and host != exclude_host:
            messages[host]["networks"].update(network_ids)
    _publish(messages)


def _networks_of_groups(group_ids):
    """Networks of the ports whose rules depend on the groups: their
    members, and the members of groups with a rule naming one of them."""
    group_ids = set(group_ids)
    if not group_ids:
        return set()
    referring = set(SecurityGroupRule.objects.filter(remote_group_id__in=group_ids)
                    .values_list("security_group_id", flat=True))
    return set(Port.objects.filter(security_groups__in=group_ids | referring).exclude(binding_host_id="")
               .values_list("network_id", flat=True).distinct())


def port_changed(port, also_hosts=()):
    """A port was made, changed or is about to be deleted. Told of its network: its
    host and `also_hosts` (a host it leaves), the network's DHCP host (the
    port's entry), every host of the network when one of those gains its
    first or loses its last port there (the VXLAN peers change); and the
    hosts of the ports whose remote-group rules list its addresses, of
    its groups those rules name (their sets gain or lose its addresses,
    nothing else there changes). The network's other hosts have nothing
    to change."""
    if port.device_owner == ROUTER_INTERFACE and port.device_id:
        router_changed(port.device_id)
    elif port.device_owner == DHCP:
        # The network's IPv6 metadata moves between its DHCP namespace and its routers'.
        for router_id in set(Port.objects.filter(network_id=port.network_id, device_owner=ROUTER_INTERFACE)
                             .values_list("device_id", flat=True)):
            router_changed(router_id)
    messages = _empty()
    network_id = port.network_id
    hosts = sorted({port.binding_host_id, *also_hosts} - {""})
    for host in hosts:
        messages[host]["networks"].add(network_id)
    others = Port.objects.filter(network_id=network_id).exclude(pk=port.pk)
    # In one query (a port create's round trips count): the network's DHCP
    # host, and whether each of the port's hosts has another port there.
    found = Network.objects.filter(pk=network_id).values_list(
        Subquery(Port.objects.filter(network_id=network_id, device_owner=DHCP).order_by("pk")
                 .values("binding_host_id")[:1]),
        *(Exists(others.filter(binding_host_id=host)) for host in hosts)).first()
    served_by, *present = found or (None, *[False] * len(hosts))
    if not all(present):
        for host in others.exclude(binding_host_id="").values_list("binding_host_id", flat=True).distinct():
            messages[host]["networks"].add(network_id)
    _add_dhcp_hosts(messages, network_id, served_by)
    if port.pk:
        # Each host with a port whose rules name one of the port's groups, and
        # that group, in one query.
        for host, group_id in remote_group_hosts(port.pk):
            messages[host]["groups"].add(group_id)
    _publish(messages)


def remote_group_hosts(port_id):
    """(host, group id) of each host with a port whose rules name one of
    the groups of port `port_id` as their remote group."""
    return set(Port.objects.filter(security_groups__rules__remote_group__ports=port_id)
               .exclude(binding_host_id="")
               .values_list("binding_host_id", "security_groups__rules__remote_group_id").distinct())


def _add_dhcp_hosts(messages, network_id, served_by):
    """The host serving the network's DHCP (`served_by`: its DHCP port's
    binding, None without one), or, while none does and it has a DHCP
    subnet, every DHCP agent's (the first to lock the network takes it)."""
    if served_by is not None:
        hosts = [served_by]
    else:
        hosts = _dhcp_agent_hosts()
        if hosts and not Subnet.objects.filter(network_id=network_id, enable_dhcp=True).exists():
            hosts = []
    for host in hosts:
        messages[host]["networks"].add(network_id)


def security_group_changed(group_id):
    """A group's rules changed: the networks of its members (and of the
    members of groups whose rules name it)."""
    network_changed(_networks_of_groups({group_id}))


def subnet_changed(subnet):
    """A subnet's DHCP settings or addressing changed."""
    network_changed({subnet.network_id})


def router_changed(router_id):
    """A router's interfaces, gateway, routes or floating IPs changed: the
    host that has it, or every L3 agent's host while none has it."""
    messages = _empty()
    router = Router.objects.filter(pk=router_id).first() if _is_uuid(router_id) else None
    if router is None:
        return
    legs = Port.objects.filter(Q(device_owner=ROUTER_INTERFACE, device_id=str(router.pk))
                               | Q(pk=router.gateway_port_id))
    hosts = set(legs.exclude(binding_host_id="").values_list("binding_host_id", flat=True))
    if not hosts:
        hosts = {agent.host for agent in Agent.alive(agent_type=Agent.L3, admin_state_up=True)}
    for host in hosts:
        messages[host]["routers"].add(router.pk)
    _publish(messages)


def _is_uuid(value):
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False
