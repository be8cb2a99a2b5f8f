"""Messages a worker has taken but not acknowledged (workers/broker.py): a
live worker keeps them, however long it holds them; those of a worker
that died go back to their queue after the visibility timeout and another
worker runs them."""
import re
import time
import uuid

import pytest
from celery.result import AsyncResult
from django.conf import settings
from kombu import Connection, Queue
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.compute.nodes import wait_until
from tests.compute.pipeline import ControlWorker, live_db  # noqa: F401  (live_db is a fixture)
from tests.private_redis import PrivateRedis
from workers.broker import RedisChannel, RedisTransport, renew_leases, return_orphans
from workers.celery import app

pytestmark = pytest.mark.live

# Short enough for a test; a worker renews its leases every quarter of it.
VISIBILITY_TIMEOUT = 3
# Held past several sweeps (every 10 s) after the visibility timeout.
HOLD_SECONDS = 25


@pytest.fixture
def scratch_broker():
    """A kombu connection to the real Redis broker whose keys carry a
    prefix of their own, so its sweeps touch no other test's messages."""
    prefix = f"lease-test-{uuid.uuid4().hex[:8]}:"
    connection = Connection(settings.CELERY_BROKER_URL,
                            transport_options={"global_keyprefix": prefix, "visibility_timeout": VISIBILITY_TIMEOUT})
    yield connection
    client = connection.default_channel.client
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key.decode().removeprefix(prefix))
    connection.release()


def test_a_renewed_message_stays_taken_and_an_abandoned_one_returns(scratch_broker):
    channel = scratch_broker.default_channel
    queue = Queue("work", routing_key="work")(channel)
    queue.declare()
    producer = scratch_broker.Producer(channel)
    for number in (1, 2):
        producer.publish({"number": number}, routing_key="work", declare=[queue])
    held, abandoned = queue.get(no_ack=False), queue.get(no_ack=False)
    assert queue.get(no_ack=False) is None

    for _ in range((VISIBILITY_TIMEOUT + 1) * 2):
        renew_leases(channel, {held.delivery_tag})
        time.sleep(0.5)
    channel.qos.restore_visible(interval=1)  # the sweep every worker runs

    returned = queue.get(no_ack=False)
    assert returned is not None and returned.payload == abandoned.payload == {"number": 2}
    assert queue.get(no_ack=False) is None  # the renewed one was not handed out again
    held.ack()
    returned.ack()
    assert renew_leases(channel, {held.delivery_tag}) == 0  # an acknowledged message stays gone


def received(worker, task_id):
    return len(re.findall(rf"Task [\w.]+\[{task_id}\] received", worker.output()))


def test_a_worker_keeps_what_it_holds_and_a_dead_workers_message_runs_elsewhere(live_db, tmp_path):
    env = {"STRATUS_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)}
    first = ControlWorker(tmp_path / "first.log", **env).start()
    try:
        # Held by the worker until its countdown ends, far past the visibility timeout.
        kept = app.send_task("identity.tasks.purge_revocation_events", queue="control", countdown=HOLD_SECONDS)
        AsyncResult(kept.id).get(timeout=HOLD_SECONDS + 30)
        assert received(first, kept.id) == 1, first.output()

        lost = app.send_task("identity.tasks.purge_revocation_events", queue="control", countdown=5)
        wait_until(lambda: received(first, lost.id), timeout=20, message="the worker to take the message")
        first.process.kill()  # dies holding it
        first.process.wait()
    finally:
        first.stop()
    second = ControlWorker(tmp_path / "second.log", **env).start()
    try:
        AsyncResult(lost.id).get(timeout=VISIBILITY_TIMEOUT + 40)
        assert received(second, lost.id) == 1, second.output()
    finally:
        second.stop()


def test_a_message_taken_as_redis_goes_away_goes_back_to_its_queue(tmp_path):
    """Redis hands a consumer a message (BRPOP) and goes away before the
    consumer's next command records it as unacknowledged: the message is
    then nowhere in Redis. The worker keeps it and puts it back."""
    redis_server = PrivateRedis(tmp_path)
    redis_server.start()

    class BrokerLostAfterThePop(RedisChannel):
        def _get(self, queue):
            item = super()._get(queue)
            redis_server.stop()  # the window: popped, not yet recorded
            return item

    class Transport(RedisTransport):
        Channel = BrokerLostAfterThePop

    url = f"redis://127.0.0.1:{redis_server.port}/0"
    try:
        with Connection(url, transport=Transport) as connection:
            channel = connection.default_channel
            queue = Queue("work", routing_key="work")(channel)
            queue.declare()
            connection.Producer(channel).publish({"boot": "step"}, routing_key="work", declare=[queue])
            with pytest.raises(RedisConnectionError):
                queue.get(no_ack=False)
        redis_server.start()
        with Connection(url, transport=RedisTransport) as connection:
            channel = connection.default_channel
            queue = Queue("work", routing_key="work")(channel)
            assert channel.client.llen("work") == 0 and channel.client.hlen("unacked") == 0  # lost to Redis
            assert return_orphans(channel) == 1
            returned = queue.get(no_ack=False)
            assert returned is not None and returned.payload == {"boot": "step"}
            returned.ack()
            assert return_orphans(channel) == 0  # put back once
    finally:
        redis_server.stop()
