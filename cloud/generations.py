"""Generation counters: one value per kind of shared state, kept in Redis,
that changes whenever a process changes that state. Each API process keeps
what it derived from the database in memory and rereads it when the
counter it read it under has moved, so a change anywhere is seen by the
next request everywhere, at the cost of one Redis round trip per request
(the counters of one request are read together, once).

Counters are plain Redis strings read with one MGET on a client of their
own (no pickling, no cache versioning), in the cache's Redis database and
under its key prefix."""
import contextvars
import logging
import threading
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


def _read():
    try:
        found = _redis().mget([_key(name) for name in NAMES])
    except redis.RedisError as error:
        log.warning("generation counters unreachable (%s); reading from the database", error)
        return dict.fromkeys(NAMES)
    values = {}
    for name, value in zip(NAMES, found):
        if value is None:
            # A fresh Redis (or a flushed one): start the counter, so that
            # what processes hold from before is not trusted.
            value = uuid.uuid4().hex.encode()
            try:
                _redis().set(_key(name), value, nx=True)
                value = _redis().get(_key(name))
            except redis.RedisError:
                value = None
        values[name] = value
    return values


def changed(name):
    """Moves the counter once the writing transaction commits (at once
    outside a transaction), so no process rereads before the change is
    visible to it."""
    def bump():
        try:
            _redis().set(_key(name), uuid.uuid4().hex)
        except redis.RedisError:
            log.exception("could not publish a change of %s", name)

    transaction.on_commit(bump)


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
