"""What keeps a worker's messages safe when the broker goes away.

Tasks are acknowledged late: a message a worker has taken waits in Redis's
`unacked` hash until the task is done. If the worker dies, or drops its
prefetched messages when its connection breaks, nothing acknowledges them;
every worker's periodic sweep gives them back to their queue once they are
older than the visibility timeout (settings.BROKER_VISIBILITY_TIMEOUT,
short so that a lost boot resumes within a minute). So a worker renews, on
a lease, the messages it still holds: while it works on one, however long,
no other worker is handed it. And a task that ends while the broker is
away, or after the connection it came on was replaced, is acknowledged
later over a connection of its own instead of being run again.

One window is Redis's own: a consumer's BRPOP takes the message off its
queue, and only the next command records it as unacknowledged. A broker
that goes away in between would leave the message nowhere but in this
process; RedisTransport keeps it and the lease keeper puts it back. A
worker killed in between loses it: a node worker starting again sends
again the boots whose next step is in none of its queues
(compute.node.agent's resume_lost_boots).
"""
import json
import logging
import threading
import time

from celery import signals
from celery.contrib.django.task import DjangoTask
from celery.utils.dispatch import Signal
from celery.worker import state
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.request import Request as CeleryRequest
from django.conf import settings
from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)

# Sent (by the worker's consumer, sender: the consumer) when the consumer is
# connected to the broker again after losing it: messages published while
# it was away are lost to this worker, so whoever keeps state from them
# converges now rather than at its next periodic pass.
connection_restored = Signal(name="connection_restored")

# Delivery tags of finished tasks whose acknowledgement did not reach the broker.
_unsettled = set()
_unsettled_lock = threading.Lock()
# Messages taken off their queue whose unacknowledged record the broker
# never got: (payload, exchange, routing key), to be put back.
_orphans = []
_orphans_lock = threading.Lock()


def unacked_channel(connection):
    """The connection's channel if its broker is Redis (whose unacknowledged
    messages these helpers look after), else None: other brokers know by
    themselves which consumer holds what."""
    channel = connection.default_channel
    return channel if hasattr(channel, "unacked_index_key") else None


def requeue_unacknowledged(queue_names):
    """Puts back in their queues, at once, the messages of `queue_names`
    that a worker took but never acknowledged: those of a predecessor
    killed mid-task, which the sweep would give back only after the
    visibility timeout. Only for queues no other live worker consumes (a
    node's own queues: one node worker per host). Returns how many."""
    from workers.celery import app

    queue_names = set(queue_names)
    restored = 0
    with app.connection_for_read() as connection:
        channel = unacked_channel(connection)
        if channel is None:
            return 0
        client = channel.client
        for tag, raw in client.hscan_iter(channel.unacked_key):
            _payload, _exchange, routing_key = json.loads(raw)
            if routing_key in queue_names:
                channel.qos.restore_by_tag(tag, client=client)
                restored += 1
    if restored:
        log.info("requeued %d message(s) a stopped worker had taken", restored)
    return restored


def queued_messages(queue_names):
    """The raw messages waiting in `queue_names` (every priority), or None
    if the broker is not Redis. Exact only for queues nobody consumes yet:
    a node worker's own, read as it starts."""
    from workers.celery import app

    with app.connection_for_read() as connection:
        channel = unacked_channel(connection)
        if channel is None:
            return None
        pipe = channel.client.pipeline()
        for queue in queue_names:
            for priority in channel.priority_steps:
                pipe.lrange(channel._q_for_pri(queue, priority), 0, -1)
        return [raw.decode() if isinstance(raw, bytes) else raw for raws in pipe.execute() for raw in raws]


def held_delivery_tags():
    """The delivery tags of the messages this worker has taken and not yet
    acknowledged (running, waiting for a pool slot or for their ETA)."""
    while True:
        try:
            requests = [*state.active_requests, *state.reserved_requests, *state.scheduled_requests]
            break
        except RuntimeError:  # the sets changed while being copied; try again
            continue
    tags = set()
    for request in requests:
        message = request.message
        if message is not None and not message.acknowledged:
            tags.add(message.delivery_tag)
    return tags


def renew_leases(channel, tags):
    """Marks `tags` as delivered just now, so the broker's sweep of messages
    past the visibility timeout leaves them alone. Only messages still
    unacknowledged are touched (an acknowledged one stays gone)."""
    if not tags:
        return 0
    now = time.time()
    return channel.client.zadd(channel.unacked_index_key, {tag: now for tag in tags}, xx=True, ch=True)


def settle(channel, tags):
    """Acknowledges `tags` directly in Redis (what an acknowledgement on
    their own channel would have done)."""
    if not tags:
        return
    pipe = channel.client.pipeline()
    pipe.zrem(channel.unacked_index_key, *tags).hdel(channel.unacked_key, *tags)
    pipe.execute()


class RedisQoS(kombu_redis.QoS):
    """Kombu's Redis QoS, keeping a message it cannot record as
    unacknowledged (the broker went away right after handing it over)."""

    def append(self, message, delivery_tag):
        try:
            super().append(message, delivery_tag)
        except self.channel.connection_errors:
            delivery = message.delivery_info
            log.warning("broker lost while taking message %s; it goes back to %s when the broker returns",
                        delivery_tag, delivery["routing_key"])
            with _orphans_lock:
                _orphans.append((message._raw, delivery["exchange"], delivery["routing_key"]))
            raise  # the message is not run here: the connection is being reset


class RedisChannel(kombu_redis.Channel):
    QoS = RedisQoS


class RedisTransport(kombu_redis.Transport):
    """The Redis transport every Stratus worker uses (settings
    CELERY_BROKER_TRANSPORT when the broker is Redis)."""
    Channel = RedisChannel


def return_orphans(channel):
    """Puts the messages RedisQoS kept back in their queues, marked
    redelivered. Returns how many."""
    with _orphans_lock:
        orphans = list(_orphans)
    for payload, exchange, routing_key in orphans:
        pipe = channel.client.pipeline()
        channel._do_restore_message(payload, exchange, routing_key, pipe)
        pipe.execute()
        with _orphans_lock:
            _orphans.remove((payload, exchange, routing_key))
        log.info("message taken as the broker went away is back in %s", routing_key)
    return len(orphans)


class LeaseKeeper(threading.Thread):
    """Every quarter of the visibility timeout, over its own broker
    connection: puts back the messages taken as the broker went away,
    acknowledges what could not be acknowledged before, and renews the
    leases of the messages this worker holds."""

    def __init__(self, app, interval):
        super().__init__(name="broker-leases", daemon=True)
        self.app = app
        self.interval = interval
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(self.interval):
            try:
                with self.app.connection_for_write() as connection:
                    channel = unacked_channel(connection)
                    if channel is None:
                        return
                    return_orphans(channel)
                    with _unsettled_lock:
                        unsettled = set(_unsettled)
                    settle(channel, unsettled)
                    with _unsettled_lock:
                        _unsettled.difference_update(unsettled)
                    renew_leases(channel, held_delivery_tags())
            except Exception as error:  # broker away: the next round tries again
                log.warning("could not renew message leases: %s", error)

    def stop(self):
        self.stopped.set()


_keeper = None


@signals.worker_ready.connect
def start_lease_keeper(sender, **kwargs):
    global _keeper
    _keeper = LeaseKeeper(sender.app, settings.BROKER_VISIBILITY_TIMEOUT / 4)
    _keeper.start()


@signals.worker_shutdown.connect
def stop_lease_keeper(**kwargs):
    if _keeper is not None:
        _keeper.stop()


class Request(CeleryRequest):
    """A task request whose acknowledgement, when it cannot reach the
    broker (Redis is away, or the channel the message came on belonged to
    a connection lost since, which raises AttributeError), is left to the
    lease keeper instead of being lost (or ending the worker)."""

    def acknowledge(self):
        if self.acknowledged:
            return
        # The acknowledgement runs now (threads pool) or later in the
        # worker's event loop (prefork pool), where an error it raises ends
        # the worker: AttributeError is one of the errors it logs instead.
        try:
            self._on_ack(log, (*self._connection_errors, AttributeError))
        except AttributeError:
            pass
        self.acknowledged = True
        if not self.message.acknowledged:
            # Deferred to the event loop (prefork pool), or the broker is
            # away: the lease keeper settles it either way (a settled
            # message acknowledged meanwhile is left as it is).
            log.debug("task %s done; its acknowledgement is not confirmed yet", self.id)
            with _unsettled_lock:
                _unsettled.add(self.message.delivery_tag)


class Task(DjangoTask):
    """The base of every Stratus task (workers/celery.py): Celery's Django
    task, with the request above."""
    Request = Request


class Consumer(CeleryConsumer):
    """Celery's consumer, telling `connection_restored` when it is connected
    again after losing the broker, and surviving its own cleanup of a lost
    connection:
    Celery 5.7 closes the broken connection once more after collect() has
    already detached its transport, and with messages to give back that
    close raises AttributeError, which ends the whole worker. The close is
    only tidying a dead connection; the messages it meant to give back
    return through the visibility timeout."""

    _connected_before = False

    def connect(self):
        connection = super().connect()
        if self._connected_before:
            log.info("broker connection restored")
            connection_restored.send(sender=self)
        self._connected_before = True
        return connection

    def on_connection_error_after_connected(self, exc):
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError as error:
            log.warning("ignored an error closing the lost broker connection: %r", error)
