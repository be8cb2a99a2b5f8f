"""Boot-pipeline steps that belong to services still to come. Until
networking and block storage exist, servers boot with `networks: none` and
no volumes: these steps only move the instance through their task_state
and record their event, so `server event list` shows where they will run.
They plumb nothing and attach nothing. They run in the chosen node's worker
(workers/pipelines.py says why)."""
from celery import shared_task

from compute.models import BOOT_STEP, Instance, record_event


def _record_step(instance_id, step_name):
    instance = Instance.objects.get(pk=instance_id)
    instance.enter_step(step_name)
    with record_event(instance, "create", BOOT_STEP[step_name].event, host=instance.host):
        pass
    return instance_id


@shared_task(name="workers.tasks.plumb_network", ignore_result=True)
def plumb_network(instance_id):
    return _record_step(instance_id, "network")


@shared_task(name="workers.tasks.attach_volumes", ignore_result=True)
def attach_volumes(instance_id):
    return _record_step(instance_id, "volumes")
