"""A remote group's members change (the default group's ports joining and
leaving): the hosts whose rules name the group are told the group, not
its members' networks, and their agents change only that group's
address set. Read on the real kernel: a host played by a namespace with
two machines in the group, other members on hosts that are names only
(their ports bound there, as the API records them), the messages taken
from the host's queue in the broker as its agent would take them."""
import base64
import ipaddress
import json
import os
import uuid
from dataclasses import replace

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from network import changes, ipam, ports
from network.agent import iplib, node
from network.agent import resources as kernel
from network.models import Port, SecurityGroup, SecurityGroupRule, Subnet
from workers import queues

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root (namespaces, nftables)")]
PROJECT = "rgtest"


@pytest.fixture
def broker():
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def take(broker, host):
    """The payloads waiting on the host's queue, oldest first, removed from
    it and their pending marks cleared, as the agent's task does."""
    payloads = []
    for key in sorted(broker.keys(f"{queues.network(host)}*")):
        for raw in reversed(broker.lrange(key, 0, -1)):
            args, _, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
            payloads.append(args[1])
        broker.delete(key)
    for payload in payloads:
        changes.taken(host, payload)
    return payloads


class Counted:
    """Counts the commands the drivers run (nft and the rest) while it is on."""

    def __init__(self, monkeypatch):
        self.commands = []
        run = iplib.run

        def counting(namespace, argv, *args, **kwargs):
            self.commands.append(argv[0])
            return run(namespace, argv, *args, **kwargs)

        monkeypatch.setattr(iplib, "run", counting)

    def nft(self):
        return self.commands.count("nft")


@pytest.fixture
def scene(lab, broker, django_capture_on_commit_callbacks):
    """A host with an agent and two plugged machines, server and client, in
    group `members` (ingress from the group only, any egress)."""
    name = f"rg{uuid.uuid4().hex[:6]}"
    host = replace(lab.host(underlay_number=1), name=name)
    agent = node.NodeAgent(name, host, dhcp=False, l3=False)
    members = SecurityGroup.objects.create(project_id=PROJECT, name=f"members-{name}")
    outsider = SecurityGroup.objects.create(project_id=PROJECT, name=f"outsider-{name}")
    for group in (members, outsider):
        SecurityGroupRule.objects.create(project_id=PROJECT, security_group=group, direction="egress",
                                         ethertype="IPv4")
    SecurityGroupRule.objects.create(project_id=PROJECT, security_group=members, direction="ingress",
                                     ethertype="IPv4", remote_group=members)
    network = ipam.create_network(project_id=PROJECT, name=name)
    Subnet.objects.create(network=network, project_id=PROJECT, cidr="10.141.0.0/16", gateway_ip="10.141.0.1",
                          allocation_pools=[{"start": "10.141.0.2", "end": "10.141.255.254"}])
    machines = {}
    with django_capture_on_commit_callbacks(execute=True):
        for role in ("server", "client"):
            port = ports.create_port(network, PROJECT, security_groups=[members], binding_host_id=name,
                                     device_owner="compute:nova", name=role)
            agent.plug_port(port.pk)
            address = port.fixed_ips.get().ip_address
            # The "tap" on the bridge, as the hypervisor would put it there.
            machine = lab.machine(host, kernel.Network(id=str(network.pk)), kernel.Port(
                id=str(port.pk), network_id=str(network.pk), mac_address=port.mac_address))
            machine.set_address(f"{address}/16")
            machines[role] = (port, machine, address)
    take(broker, name)
    try:
        yield agent, host, network, members, outsider, machines
    finally:
        # The far hosts are names only: what they were told goes too.
        for far in [f"far{number}-{name}" for number in range(8)] + [name]:
            for key in broker.keys(f"{queues.network(far)}*") + broker.keys(f"stratus:network-pending:{far}:*"):
                broker.delete(key)


def group_set(host, group):
    result = iplib.run(host.namespace, ["nft", "-j", "list", "set", "inet", f"stratus_sg_{host.tag}",
                                        f"rg4-{group.pk}"])
    return {element for item in json.loads(result.stdout)["nftables"] if "set" in item
            for element in item["set"].get("elem", [])}


def member_addresses(group):
    return {str(ipaddress.ip_address(a)) for a in node.NodeAgent.group_members(group.pk)}


def test_each_join_changes_only_the_groups_set_at_a_flat_cost_and_a_member_removed_loses_access(
        scene, broker, monkeypatch, django_capture_on_commit_callbacks):
    agent, host, network, members, outsider, machines = scene
    server, client = machines["server"], machines["client"]
    assert client[1].reachable(server[2])
    elsewhere = ipam.create_network(project_id=PROJECT, name=f"{agent.host}-far")
    Subnet.objects.create(network=elsewhere, project_id=PROJECT, cidr="10.142.0.0/16", gateway_ip="10.142.0.1",
                          allocation_pools=[{"start": "10.142.0.2", "end": "10.142.255.254"}])

    joins, counted = [], Counted(monkeypatch)
    for number in range(40):
        # A member on another host of another network: nothing of this
        # host's networks changes, only the group's membership.
        with django_capture_on_commit_callbacks(execute=True):
            ports.create_port(elsewhere, PROJECT, security_groups=[members], device_owner="compute:nova",
                              binding_host_id=f"far{number % 8}-{agent.host}")
        payloads = take(broker, agent.host)
        assert payloads == [{"groups": [str(members.pk)]}]
        counted.commands.clear()
        with CaptureQueriesContext(connection) as queries:
            agent.converge(payloads[0])
        joins.append((len(queries), counted.nft(), len(counted.commands)))
        assert group_set(host, members) == member_addresses(members)
    print(f"\nper join (queries, nft calls, commands): first {joins[0]}, 10th {joins[9]}, 40th {joins[-1]}")
    # Flat: the 40th join costs what the first did (one query, the set's two
    # families listed and one transaction), whatever the group holds.
    assert set(joins) == {(1, 3, 3)}, joins
    assert len(group_set(host, members)) == 42
    assert client[1].reachable(server[2])

    # The client leaves the group: its host hears of its own network (its
    # rules change) and of the group, whose set loses its address.
    with django_capture_on_commit_callbacks(execute=True):
        ports.update_port(client[0], security_groups=[outsider])
    payloads = take(broker, agent.host)
    assert {group for payload in payloads for group in payload.get("groups", ())} == {str(members.pk)}
    for payload in payloads:
        agent.converge(payload)
    assert client[2] not in group_set(host, members) and len(group_set(host, members)) == 41
    assert client[1].unreachable(server[2])

    # Back in the group, and a far member deleted: the set follows each.
    with django_capture_on_commit_callbacks(execute=True):
        ports.update_port(client[0], security_groups=[members])
        ports.delete_port(Port.objects.filter(network=elsewhere).first())
    for payload in take(broker, agent.host):
        agent.converge(payload)
    assert group_set(host, members) == member_addresses(members) and len(group_set(host, members)) == 41
    assert client[1].reachable(server[2])
