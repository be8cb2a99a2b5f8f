"""Boot-pipeline steps of the services compute meets: the network step
(on the node's network.<host> queue: compute.node.networking allocates,
binds and plugs the server's ports) and the volume step (on the node's
compute.<host> queue: compute.node.volumes makes the server's mapped
volumes through the volumes app and attaches them)."""
from celery import shared_task

from compute.models import BOOT_STEP, record_event


def _boot_step(task, instance_id, step, needed, work):
    """One node-side step of the build: the instance enters `step` and its
    event records `work(node, instance)`, or only that the step had nothing
    to do when `needed(instance)` is false. A server deleted meanwhile is
    found by the next step's entry, which ends the chain."""
    from compute.node.tasks import enter_boot_step

    node, instance = enter_boot_step(task, instance_id, step)
    if not needed(instance):
        with record_event(instance, "create", BOOT_STEP[step].event, host=node.host, quick=True):
            pass
        return instance_id
    with record_event(instance, "create", BOOT_STEP[step].event, host=node.host):
        work(node, instance)
    return instance_id


@shared_task(bind=True, name="workers.tasks.plumb_network", ignore_result=True)
def plumb_network(self, instance_id):
    from compute import networking
    from compute.node import networking as node_networking

    return _boot_step(self, instance_id, "network", networking.has_ports, node_networking.plumb)


@shared_task(bind=True, name="workers.tasks.attach_volumes", ignore_result=True)
def attach_volumes(self, instance_id):
    """The server's block device mappings: volumes made through the
    volumes app, waited for and attached to its node (compute.node.volumes)."""
    from compute import block_devices
    from compute.node import volumes

    return _boot_step(self, instance_id, "volumes", block_devices.of, volumes.connect_block_devices)
