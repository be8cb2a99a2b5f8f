"""Boot-pipeline steps of the services compute meets: the network step
(on the node's network.<host> queue: compute.node.networking allocates,
binds and plugs the server's ports) and the volume step (on the node's
compute.<host> queue: compute.node.volumes makes the server's mapped
volumes through the volumes app and attaches them)."""
from celery import shared_task

from compute.models import BOOT_STEP, Instance, UnexpectedState, record_event


def _boot_step(task, instance_id, step, work):
    """One node-side step of the build: the instance enters `step`, its
    event records `work(node, instance)`, and a server deleted meanwhile
    ends the chain (its delete released what the step made)."""
    from compute.node.tasks import _node_and_instance

    node, instance = _node_and_instance(task, instance_id)
    instance.enter_step(step)
    with record_event(instance, "create", BOOT_STEP[step].event, host=node.host):
        work(node, instance)
    if Instance.objects.filter(pk=instance.pk, deleted=True).exists():
        raise UnexpectedState(instance.pk, "building", "deleted")
    return instance_id


@shared_task(bind=True, name="workers.tasks.plumb_network", ignore_result=True)
def plumb_network(self, instance_id):
    from compute.node import networking

    return _boot_step(self, instance_id, "network", networking.plumb)


@shared_task(bind=True, name="workers.tasks.attach_volumes", ignore_result=True)
def attach_volumes(self, instance_id):
    """The server's block device mappings: volumes made through the
    volumes app, waited for and attached to its node (compute.node.volumes)."""
    from compute.node import volumes

    return _boot_step(self, instance_id, "volumes", volumes.connect_block_devices)
