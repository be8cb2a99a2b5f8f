"""Boot-pipeline steps of the services compute meets: the network step
(on the node's network.<host> queue: compute.node.networking allocates,
binds and plugs the server's ports) and the volume step, which only moves
the instance through its task_state and records its event until block
storage exists."""
from celery import shared_task

from compute.models import BOOT_STEP, Instance, UnexpectedState, record_event


def _record_step(instance_id, step_name):
    instance = Instance.objects.get(pk=instance_id)
    instance.enter_step(step_name)
    with record_event(instance, "create", BOOT_STEP[step_name].event, host=instance.host):
        pass
    return instance_id


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


@shared_task(name="workers.tasks.attach_volumes", ignore_result=True)
def attach_volumes(instance_id):
    return _record_step(instance_id, "volumes")
