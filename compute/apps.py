import os
import threading

from django.apps import AppConfig


class ComputeConfig(AppConfig):
    name = "compute"

    def ready(self):
        # bench/boot_storm.py sets STRATUS_COUNT_QUERIES_KEY in the processes
        # it starts, to count every SQL query they make.
        key = os.environ.get("STRATUS_COUNT_QUERIES_KEY")
        if key:
            QueryCounter(key, os.environ.get("STRATUS_COUNT_QUERIES_LABEL", ""),
                         os.environ.get("STRATUS_COUNT_QUERIES_LOG")).install()


class QueryCounter:
    """Counts the SQL queries of this process into a Redis counter, and
    into one per `label` (flushed every 0.2 s, so counting adds no round
    trip per query). Given `log`, a file path, it also appends each
    statement there, one per line, to see which ones a storm makes."""

    def __init__(self, key, label="", log=None):
        self.key = key
        self.label = label
        self.pending = 0
        self.lock = threading.Lock()
        self.log = open(log, "a", buffering=1) if log else None

    def install(self):
        from django.db.backends.signals import connection_created

        connection_created.connect(self.on_connection, weak=False)
        threading.Thread(target=self.flush_forever, name="query-counter", daemon=True).start()

    def on_connection(self, sender, connection, **kwargs):
        # A reconnect reuses the wrapper object: count once.
        if self.count not in connection.execute_wrappers:
            connection.execute_wrappers.append(self.count)

    def count(self, execute, sql, params, many, context):
        with self.lock:
            self.pending += 1
            if self.log:
                self.log.write(" ".join(sql.split()) + "\n")
        return execute(sql, params, many, context)

    def flush_forever(self):
        import time

        import redis
        from django.conf import settings

        client = redis.Redis.from_url(settings.REDIS_URL)
        while True:
            time.sleep(0.2)
            with self.lock:
                pending, self.pending = self.pending, 0
            if pending:
                client.incrby(self.key, pending)
                if self.label:
                    client.incrby(f"{self.key}:{self.label}", pending)
