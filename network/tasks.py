"""The node network agent's tasks, on its host's `network.<host>` queue
(each names its host: a process may serve several). The agent is imported
when a task runs: other processes load this module without the drivers."""
from celery import shared_task


@shared_task(name="network.tasks.converge", ignore_result=True)
def converge(host, payload):
    """A "network changed" message from the API side (network.changes)."""
    from network import changes
    from network.agent import node

    agent = node.agent_for(host)
    if agent.simulated:
        # It makes nothing, so it needs telling no more: its pending marks
        # are left to expire, and changes meanwhile send it nothing (the
        # default group's remote-group rule tells every host with a member
        # of each new port).
        return
    changes.taken(host, payload)
    agent.converge(payload)


@shared_task(name="network.tasks.plug_port")
def plug_port(host, port_id):
    """The boot pipeline's network step for one port: {"bridge", "tap"}."""
    from network.agent import node

    return node.agent_for(host).plug_port(port_id)


@shared_task(name="network.tasks.unplug_port")
def unplug_port(host, port_id):
    from network.agent import node

    node.agent_for(host).unplug_port(port_id)
