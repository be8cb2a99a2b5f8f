"""Scheduling one instance: pre-filter in SQL, filter, weigh, then claim
on the best host that still has room (the claim is the atomic part: a
conditional UPDATE of the node's usage, see compute.models.claim_resources)."""
import random
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F

from compute import conf
from compute.models import (
    OWN, ComputeNode, Instance, Migration, ServerGroup, TaskState, VmState, claim_resources, disk_gb_of,
    flavor_snapshot, release_claim,
)
from compute.scheduler.filters import FILTERS, explain_no_host, prefilter
from compute.scheduler.weights import order_hosts

# How many candidates the SQL pre-filter hands to the Python filters and
# weighers, most free RAM first.
CANDIDATES = 200
HOST_SUBSET_SIZE = max(1, conf.SCHEDULER_HOST_SUBSET_SIZE)


class NoValidHost(Exception):
    pass


@dataclass
class RequestSpec:
    vcpus: int
    memory_mb: int
    disk_gb: int
    availability_zone: str = ""
    tried_hosts: list = field(default_factory=list)
    group_policy: str | None = None
    group_hosts: list = field(default_factory=list)

    @classmethod
    def for_instance(cls, instance, group=None, flavor=None):
        """What `instance` needs, with its own flavor or `flavor` (a
        flavor_snapshot: the new one of a resize)."""
        sizes = flavor or flavor_snapshot(instance)
        spec = cls(vcpus=sizes["vcpus"], memory_mb=sizes["memory_mb"], disk_gb=disk_gb_of(sizes),
                   availability_zone=instance.availability_zone or "", tried_hosts=list(instance.tried_hosts or []))
        if flavor is not None:
            spec.tried_hosts = []  # the boot's failed hosts say nothing about a resize
        if group is not None:
            spec.group_policy = group.policy
            spec.group_hosts = list(Instance.objects.filter(
                server_group=group, deleted=False, host__isnull=False).exclude(pk=instance.pk).values_list(
                "host", flat=True).distinct())
        return spec


def _lock_group(instance):
    """Placements of one group's members are made one after the other, so
    two of them cannot both miss the other's host."""
    if not instance.server_group_id:
        return None
    return ServerGroup.objects.select_for_update().filter(pk=instance.server_group_id).first()


def _hosts_for(spec):
    """The hosts that pass every filter, best first."""
    free_ram = F("memory_mb") * F("ram_allocation_ratio") - F("memory_mb_used")
    order = free_ram.desc() if conf.RAM_WEIGHT_MULTIPLIER >= 0 else free_ram.asc()
    candidates = prefilter(spec, CANDIDATES, [order, "host"])
    for host_filter in FILTERS:
        candidates = [host for host in candidates if host_filter.host_passes(host, spec)]
    hosts = order_hosts(candidates, spec)
    if HOST_SUBSET_SIZE > 1 and len(hosts) > 1:
        best = hosts[:HOST_SUBSET_SIZE]
        random.shuffle(best)
        hosts = best + hosts[HOST_SUBSET_SIZE:]
    return hosts


def schedule(instance):
    """Claims resources for `instance` on a host and records the host on
    the instance, in one transaction. Returns the ComputeNode; raises
    NoValidHost (saying which filter removed how many hosts), or
    UnexpectedState if the instance stopped scheduling meanwhile (deleted)."""
    with transaction.atomic():
        spec = RequestSpec.for_instance(instance, _lock_group(instance))
        for node in _hosts_for(spec):
            # Another boot may have filled the host since the pre-filter
            # read it: the claim refuses, and the next host is tried.
            if claim_resources(instance, node) is None:
                continue
            instance.update_state(expected_task_state=TaskState.SCHEDULING, expected_vm_state=VmState.BUILDING,
                                  host=node.host, node=node, attempts=instance.attempts + 1,
                                  tried_hosts=spec.tried_hosts + [node.host])
            return node
        raise NoValidHost(explain_no_host(spec))


def schedule_resize(instance, migration):
    """Claims the migration's new flavor on a host, beside the claim the
    instance holds, and records the destination on the migration. The
    instance's own host is tried first when it passes the filters: its
    disk is there already (a cold migration never stays). Returns the
    ComputeNode; raises NoValidHost,
    or UnexpectedState if the instance left resize_prep meanwhile."""
    with transaction.atomic():
        spec = RequestSpec.for_instance(instance, _lock_group(instance), flavor=migration.new_flavor)
        hosts = _hosts_for(spec)
        if migration.migration_type == Migration.COLD_MIGRATION:
            # A cold migration moves: never to the host it is on, and only
            # to the one an admin asked for (dest_compute set by the API).
            hosts = [node for node in hosts if node.host != instance.host
                     and (not migration.dest_compute or node.host == migration.dest_compute)]
        else:
            hosts.sort(key=lambda node: node.host != instance.host)  # stable: the rest keep their order
        for node in hosts:
            if claim_resources(instance, node, migration) is None:
                continue
            # Only moves on if the instance is still waiting to be placed.
            instance.update_state(expected_task_state=TaskState.RESIZE_PREP)
            migration.set_status(Migration.Status.MIGRATING, dest_compute=node.host,
                                 dest_node=node.hypervisor_hostname, dest_host=node.host_ip)
            return node
        raise NoValidHost(explain_no_host(spec))


def schedule_evacuate(instance, migration, force=False):
    """Moves an evacuated instance's claim from its (down) host to another
    one, and records that host on the instance and the migration, in one
    transaction: any host but its own that passes the filters, or only the
    one the migration names (with `force`, that one whatever the filters
    say, if it has room). Returns the ComputeNode; raises NoValidHost (the
    old claim then stays), or UnexpectedState if the instance left
    task_state rebuilding meanwhile."""
    with transaction.atomic():
        spec = RequestSpec.for_instance(instance, _lock_group(instance))
        spec.tried_hosts = []  # the boot's failed hosts say nothing now
        if force and migration.dest_compute:
            hosts = list(ComputeNode.objects.filter(host=migration.dest_compute))
        else:
            hosts = [node for node in _hosts_for(spec) if node.host != instance.host
                     and (not migration.dest_compute or node.host == migration.dest_compute)]
        release_claim(instance, OWN)
        for node in hosts:
            if claim_resources(instance, node) is None:
                continue
            instance.update_state(expected_task_state=TaskState.REBUILDING, host=node.host, node=node)
            migration.set_status(Migration.Status.PRE_MIGRATING, dest_compute=node.host,
                                 dest_node=node.hypervisor_hostname, dest_host=node.host_ip)
            return node
        raise NoValidHost(explain_no_host(spec))


def schedule_unshelve(instance):
    """Claims an offloaded instance's flavor on a host for its unshelve and
    records the host on the instance, in one transaction. Returns the
    ComputeNode; raises NoValidHost, or UnexpectedState if the instance
    stopped unshelving meanwhile (deleted)."""
    with transaction.atomic():
        spec = RequestSpec.for_instance(instance, _lock_group(instance))
        spec.tried_hosts = []  # the boot's failed hosts say nothing now
        for node in _hosts_for(spec):
            if claim_resources(instance, node) is None:
                continue
            instance.update_state(expected_task_state=TaskState.UNSHELVING,
                                  expected_vm_state=VmState.SHELVED_OFFLOADED, host=node.host, node=node)
            return node
        raise NoValidHost(explain_no_host(spec))
