"""Hands volume work to the workers once the transaction that wrote its
rows commits (so no worker picks up a row it cannot see yet): on the back
end's own `volume.<host>` queue, or a compute node's. Tasks are named, not
imported: the API never loads a back end."""
import logging

from django.db import transaction
from kombu.exceptions import OperationalError

from workers import queues
from workers.celery import app

log = logging.getLogger(__name__)

CREATE = "volumes.tasks.create_volume"
DELETE = "volumes.tasks.delete_volume"
EXTEND = "volumes.tasks.extend_volume"
CREATE_SNAPSHOT = "volumes.tasks.create_snapshot"
DELETE_SNAPSHOT = "volumes.tasks.delete_snapshot"
UPLOAD_IMAGE = "volumes.tasks.upload_to_image"
# A retype's move: the source hands the data over, the target copies it in,
# the source drops its copy.
SEND_VOLUME = "volumes.tasks.send_volume"
RECEIVE_VOLUME = "volumes.tasks.receive_volume"
DROP_VOLUME_COPY = "volumes.tasks.drop_volume_copy"
# Backups: made and restored by the volume's back end worker, deleted (from
# the object store only) by a control worker.
CREATE_BACKUP = "volumes.tasks.create_backup"
RESTORE_BACKUP = "volumes.tasks.restore_backup"
DELETE_BACKUP = "volumes.tasks.delete_backup"
# On a compute node: grow an attached volume's disk in the running domain.
NODE_EXTEND_VOLUME = "compute.node.tasks.extend_volume"


def send(name, args, queue):
    """Publishes now. A broker that cannot take it is logged: the
    reconciler sends scheduling again and ends what stays stuck."""
    try:
        app.send_task(name, args=[str(arg) for arg in args], queue=queue, routing_key=queue, ignore_result=True)
    except OperationalError as error:
        log.warning("could not send %s%s now: %s", name, tuple(args), error)


def after_commit(name, args, queue):
    transaction.on_commit(lambda: send(name, args, queue))


def to_backend(name, host, *args):
    after_commit(name, (*args, host), queues.volume(host))


def to_control(name, *args):
    after_commit(name, args, queues.CONTROL)


def to_node(name, host, *args):
    """A task for compute node `host` (the node a volume is attached on)."""
    after_commit(name, args, queues.compute(host))
