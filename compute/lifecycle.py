"""What is done the same way whoever asks for it: the compute API and the
operators' admin site both delete instances and compute hosts through
here."""
from django.db import transaction
from django.utils import timezone

from compute.models import (
    AggregateHost, ComputeNode, Instance, InstanceAction, Migration, Service, TaskState, start_action,
)
from workers import pipelines


def leftover_hosts(instance):
    """Hosts other than the instance's own that hold files of a resize in
    progress: a delete cleans them too."""
    hosts = set()
    for source, dest in Migration.objects.filter(instance_id=instance.pk, status__in=Migration.Status.IN_PROGRESS
                                                 ).values_list("source_compute", "dest_compute"):
        hosts.update(host for host in (source, dest) if host and host != instance.host)
    return hosts


def delete(instance, request_id, user_id, project_id):
    """Starts deleting `instance` (compute.models.InvalidState if its state
    does not allow it): its node destroys the domain and files, then marks
    it deleted and gives the node its capacity back; with no node to ask
    (never scheduled, or the node is down) the record is deleted here, as
    Nova's local delete does. False when a delete is under way already."""
    if instance.task_state == TaskState.DELETING:
        return False
    with transaction.atomic():
        instance.begin("delete")
        action = start_action(instance, "delete", request_id, user_id, project_id)
        node = instance.node
        if instance.host is None or node is None or not node.is_up:
            instance.mark_deleted()
            InstanceAction.objects.filter(pk=action.pk).update(finish_time=timezone.now())
        else:
            pipelines.destroy(instance.pk, instance.host)
        for host in leftover_hosts(instance):
            pipelines.cleanup(instance.pk, host)
    return True


class HostingInstances(Exception):
    """A compute host cannot be forgotten while instances live on it."""


def remove_compute_host(host):
    """Forgets compute host `host`: its node, its compute service and its
    place in aggregates (as Nova does). Refused with HostingInstances while
    instances live there: their claims and domains are on it."""
    with transaction.atomic():
        if Instance.objects.filter(host=host, deleted=False).exists():
            raise HostingInstances(f"Unable to delete compute service that is hosting instances on {host}.")
        ComputeNode.objects.filter(host=host).delete()
        AggregateHost.objects.filter(host=host).delete()
        Service.objects.filter(host=host, binary=Service.COMPUTE_BINARY).delete()
