"""Boot-pipeline steps of the services compute meets: the network step
(on the node's network.<host> queue: compute.node.networking allocates,
binds and plugs the server's ports) and the volume step (on the node's
compute.<host> queue: compute.node.volumes makes the server's mapped
volumes through the volumes app and attaches them)."""
from celery import shared_task

from compute.models import BOOT_STEP, Instance, UnexpectedState, record_event


@shared_task(bind=True, name="workers.tasks.plumb_network", ignore_result=True)
def plumb_network(self, instance_id):
    from compute.node import networking
    from compute.node.tasks import _node_and_instance

    node, instance = _node_and_instance(self, instance_id)
    instance.enter_step("network")
    with record_event(instance, "create", BOOT_STEP["network"].event, host=node.host):
        networking.plumb(node, instance)
    if Instance.objects.filter(pk=instance.pk, deleted=True).exists():
        raise UnexpectedState(instance.pk, "building", "deleted")  # its delete released the ports
    return instance_id


@shared_task(bind=True, name="workers.tasks.attach_volumes", ignore_result=True)
def attach_volumes(self, instance_id):
    """The server's block device mappings: volumes made through the
    volumes app, waited for and attached to its node (compute.node.volumes)."""
    from compute.node import volumes
    from compute.node.tasks import _node_and_instance

    node, instance = _node_and_instance(self, instance_id)
    instance.enter_step("volumes")
    with record_event(instance, "create", BOOT_STEP["volumes"].event, host=node.host):
        volumes.connect_block_devices(node, instance)
    if Instance.objects.filter(pk=instance.pk, deleted=True).exists():
        raise UnexpectedState(instance.pk, "building", "deleted")  # its delete released the volumes
    return instance_id
