"""Generation counters: one value per kind of shared state, kept in Redis,
that changes whenever a process changes that state. Each API process keeps
what it derived from the database in memory and rereads it when the
counter it read it under has moved, so a change anywhere is seen by the
next request everywhere (the counters of one request are read together,
once).

Counters are plain Redis strings (no pickling, no cache versioning), in
the cache's Redis database and under its key prefix. A change is also
published on a channel that a thread of each process follows: while it is
subscribed, a request reads the counters from memory, with no round trip.
A change is published before the request that made it answers, so it is
in the follower's socket before any request that could depend on it
arrives. A read that finds the socket not yet read, the follower not
subscribed (starting, Redis gone), or this process's own change not yet
back from the channel, asks Redis with one MGET instead."""
import contextvars
import logging
import os
import select
import threading
import time
import uuid
from contextlib import contextmanager

import redis
from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)

# Every counter a process follows; all of them are read in one MGET.
NAMES = ("revocations", "identity")

_client = None
_client_lock = threading.Lock()
# The counters as read in this request (None outside a request: read each time).
_request_values = contextvars.ContextVar("generation_values", default=None)


def _redis():
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"], socket_timeout=2,
                                               socket_connect_timeout=2)
    return _client


def _key(name):
    return f"{settings.CACHES['default']['KEY_PREFIX']}:generation:{name}"


def current(name):
    """The counter's value, or None when Redis cannot be asked (callers
    then read the database instead of trusting what they hold)."""
    values = _request_values.get()
    if values is None or name not in values:
        values = _read()
        if _request_values.get() is not None:
            _request_values.set(values)
    return values[name]


def _channel():
    return f"{settings.CACHES['default']['KEY_PREFIX']}:generations"


def _read():
    follower = _follower()
    values = follower.values
    if values is not None and not follower.awaited and not follower.behind():
        return values
    try:
        return _fetch(_redis())
    except redis.RedisError as error:
        log.warning("generation counters unreachable (%s); reading from the database", error)
        return dict.fromkeys(NAMES)


def _fetch(client):
    """The counters as Redis holds them (each started if missing)."""
    found = client.mget([_key(name) for name in NAMES])
    values = {}
    for name, value in zip(NAMES, found):
        if value is None:
            # A fresh Redis (or a flushed one): start the counter, so that
            # what processes hold from before is not trusted.
            client.set(_key(name), uuid.uuid4().hex.encode(), nx=True)
            value = client.get(_key(name))
        values[name] = value
    return values


def changed(name):
    """Moves the counter once the writing transaction commits (at once
    outside a transaction), so no process rereads before the change is
    visible to it."""
    def bump():
        value = uuid.uuid4().hex
        # Until this process's own follower has the change, this process
        # asks Redis: its next read may come before the message does.
        awaited = (name, value.encode())
        follower = _follower()
        follower.awaited.add(awaited)
        try:
            _redis().pipeline().set(_key(name), value).publish(_channel(), f"{name} {value}").execute()
        except redis.RedisError:
            follower.awaited.discard(awaited)
            log.exception("could not publish a change of %s", name)

    transaction.on_commit(bump)


class _Follower(threading.Thread):
    """Follows the counters' channel: `values` holds the counters while it
    is subscribed (None otherwise), updated as each change arrives."""

    def __init__(self):
        super().__init__(name="generation-follower", daemon=True)
        self.values = None
        self._socket = None
        # Changes this process published that the channel has not brought back yet.
        self.awaited = set()

    def behind(self):
        """Whether a change has reached this process unread (its socket
        holds data): the counters in memory may be older than it."""
        sock = self._socket
        if sock is None:
            return True
        poller = select.poll()
        try:
            poller.register(sock, select.POLLIN)
        except (ValueError, OSError):  # closed meanwhile
            return True
        return bool(poller.poll(0))

    def run(self):
        while True:
            try:
                self._follow()
            except Exception as error:  # noqa: BLE001  (Redis gone, or anything: ask Redis per request meanwhile)
                log.info("generation counters not followed (%s); reading them per request", error)
            self.values, self._socket = None, None
            time.sleep(1)

    def _follow(self):
        client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"], socket_connect_timeout=2,
                                      socket_keepalive=True)
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(_channel())
            if (pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
                raise redis.RedisError("the subscription was not confirmed")
            # Subscribed first, then read: no change falls in between.
            # What was awaited and published before the subscription is in
            # what is read now.
            self.awaited.clear()
            values = _fetch(client)
            self._socket = pubsub.connection._sock
            self.values = values
            for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                name, _, value = message["data"].partition(b" ")
                name = name.decode()
                if name in NAMES:
                    self.values = {**self.values, name: value}
                    self.awaited.discard((name, value))
        finally:
            pubsub.close()
            client.close()


_follower_thread = None
_follower_pid = None


def _follower():
    """This process's follower, started on first use (again in a forked child)."""
    global _follower_thread, _follower_pid
    if _follower_pid != os.getpid():
        with _client_lock:
            if _follower_pid != os.getpid():
                _follower_thread = _Follower()
                _follower_thread.start()
                _follower_pid = os.getpid()
    return _follower_thread


@contextmanager
def request_scope():
    """Within it (one API request), each counter is read at most once."""
    token = _request_values.set({})
    try:
        yield
    finally:
        _request_values.reset(token)


class Derived:
    """A value computed from the database and held in this process while
    the counter `name` stays where it was when it was computed; keyed, so
    one instance holds e.g. one entry per project. Bounded: past
    `max_entries` it starts afresh."""

    def __init__(self, name, compute, max_entries=4096):
        self.name = name
        self.compute = compute
        self.max_entries = max_entries
        self._generation = None
        self._values = {}
        self._lock = threading.Lock()

    def get(self, *key):
        generation = current(self.name)
        if generation is None:
            return self.compute(*key)
        with self._lock:
            if generation != self._generation:
                self._values, self._generation = {}, generation
            elif key in self._values:
                return self._values[key]
        value = self.compute(*key)
        with self._lock:
            if generation == self._generation:
                if len(self._values) >= self.max_entries:
                    self._values = {}
                self._values[key] = value
        return value
