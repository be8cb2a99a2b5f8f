"""Which hosts hear of a port change, read from their network.<host>
queues in the broker: the port's own host, every host of the network only
when one gains its first port there, the hosts whose remote-group rules
list the port's addresses (of the group, not of their networks); and a host with a message waiting about a
network gets no second one until its agent has begun on the first."""
import base64
import json
import uuid

import pytest
import redis
from django.conf import settings

from network import changes, ipam, ports
from network.models import SecurityGroup, SecurityGroupRule
from workers import queues

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker():
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


@pytest.fixture
def hosts(broker):
    names = [f"chg-{uuid.uuid4().hex[:6]}-{n}" for n in range(4)]
    yield names
    for host in names:
        for key in broker.keys(f"{queues.network(host)}*"):
            broker.delete(key)
        for key in broker.keys(f"stratus:network-pending:{host}:*"):
            broker.delete(key)


def told(broker, host):
    """The payloads waiting on the host's queue, oldest first."""
    payloads = []
    for key in sorted(broker.keys(f"{queues.network(host)}*")):
        for raw in reversed(broker.lrange(key, 0, -1)):
            args, _, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
            assert args[0] == host
            payloads.append(args[1])
    return payloads


def new_port(network, host, groups=()):
    return ports.create_port(network, "chg", count_quota=False, security_groups=list(groups),
                             fixed_ips=[], binding_host_id=host, device_owner="compute:nova")


def test_a_port_change_reaches_the_hosts_it_concerns_and_coalesces(broker, hosts, django_capture_on_commit_callbacks):
    first, second, newcomer, _ = hosts
    network = ipam.create_network(project_id="chg")
    with django_capture_on_commit_callbacks(execute=True):
        new_port(network, first)
        new_port(network, second)
    for host in (first, second):
        changes.taken(host, {"networks": [str(network.pk)]})   # as their agents do when they begin
        for key in broker.keys(f"{queues.network(host)}*"):
            broker.delete(key)

    with django_capture_on_commit_callbacks(execute=True):
        new_port(network, first)
    # The first host's own port; the second has nothing of it to change (no VXLAN peer is new).
    assert told(broker, first) == [{"networks": [str(network.pk)]}] and told(broker, second) == []

    with django_capture_on_commit_callbacks(execute=True):
        new_port(network, newcomer)
    # A host new on the network: every host of it learns the peer; the first
    # host's message, not yet begun, already covers the network.
    assert told(broker, first) == [{"networks": [str(network.pk)]}]
    assert told(broker, second) == told(broker, newcomer) == [{"networks": [str(network.pk)]}]

    changes.taken(first, {"networks": [str(network.pk)]})
    with django_capture_on_commit_callbacks(execute=True):
        new_port(network, first)
    assert len(told(broker, first)) == 2   # begun on: the next change is told again


def test_a_port_in_a_remote_group_reaches_the_hosts_of_the_groups_that_name_it(
        broker, hosts, django_capture_on_commit_callbacks):
    here, _, member_host, bystander = hosts
    group = SecurityGroup.objects.create(project_id="chg", name=f"g-{uuid.uuid4().hex[:6]}")
    naming = SecurityGroup.objects.create(project_id="chg", name=f"n-{uuid.uuid4().hex[:6]}")
    SecurityGroupRule.objects.create(project_id="chg", security_group=naming, direction="ingress",
                                     remote_group=group)
    network, elsewhere = ipam.create_network(project_id="chg"), ipam.create_network(project_id="chg")
    with django_capture_on_commit_callbacks(execute=True):
        new_port(elsewhere, member_host, [naming])
        new_port(elsewhere, bystander)
    for host in hosts:
        changes.taken(host, {"networks": [str(network.pk), str(elsewhere.pk)]})
        for key in broker.keys(f"{queues.network(host)}*"):
            broker.delete(key)

    with django_capture_on_commit_callbacks(execute=True):
        new_port(network, here, [group])
    # Its rule lists the new address: the group is told, not the network.
    assert told(broker, member_host) == [{"groups": [str(group.pk)]}]
    assert told(broker, bystander) == []
