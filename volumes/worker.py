"""The volume worker's side of a back end: its Backend row (registered on
start, capacity and liveness on every heartbeat) and, on start, the clean-up
of what a killed predecessor left: partial files, and files no volume or
snapshot on this back end owns any more (a create the reconciler ended in
error, say); a partial one that cannot go yet (an RBD image a dead client
still watches) is tried again on the heartbeats until it goes."""
import logging
import threading

from django.db import close_old_connections
from django.utils import timezone

from volumes import conf
from volumes.models import Backend, Snapshot, Volume

log = logging.getLogger(__name__)

# host -> the back end object this process serves.
SERVED = {}


class WrongBackend(Exception):
    pass


def served(host):
    try:
        return SERVED[host]
    except KeyError:
        raise WrongBackend(f"This worker does not serve back end {host}.") from None


class BackendWorker:
    def __init__(self, host, backend_name, backend, availability_zone=None):
        self.host = host
        self.backend_name = backend_name
        self.backend = backend
        self.availability_zone = availability_zone or conf.AVAILABILITY_ZONE

    def register(self):
        row, _ = Backend.objects.update_or_create(host=self.host, defaults={
            "backend_name": self.backend_name, "driver": self.backend.driver,
            "availability_zone": self.availability_zone, "total_capacity_gb": self.backend.capacity_gb(),
            "max_over_subscription_ratio": conf.OVER_SUBSCRIPTION_RATIO, "heartbeat_at": timezone.now()})
        return row

    def heartbeat(self):
        Backend.objects.filter(host=self.host).update(total_capacity_gb=self.backend.capacity_gb(),
                                                      heartbeat_at=timezone.now())
        if self.backend.partial_left:
            removed = self.backend.discard_partial(only_left=True)  # still busy at the start
            if removed:
                log.info("removed %d stray file(s) from %s: %s", len(removed), self.host, ", ".join(removed))

    def remove_strays(self):
        """Deletes the files of volumes and snapshots this back end does not
        hold: unknown ids, or rows that gave their space back."""
        removed = self.backend.discard_partial()
        held = {str(pk) for pk in Volume.objects.filter(backend__host=self.host).values_list("pk", flat=True)}
        for volume_id in self.backend.volume_ids() - held:
            self.backend.delete(volume_id)
            removed.append(f"volume-{volume_id}")
        held = {str(pk) for pk in Snapshot.objects.filter(backend__host=self.host).values_list("pk", flat=True)}
        for snapshot_id in self.backend.snapshot_ids() - held:
            self.backend.delete_snapshot(snapshot_id)
            removed.append(f"snapshot-{snapshot_id}")
        if removed:
            log.info("removed %d stray file(s) from %s: %s", len(removed), self.host, ", ".join(removed))
        return removed

    def start(self):
        self.register()
        self.remove_strays()
        SERVED[self.host] = self.backend


class Heartbeat(threading.Thread):
    def __init__(self, workers, interval=None):
        super().__init__(name="volume-heartbeat", daemon=True)
        self.workers = workers
        self.interval = interval or conf.HEARTBEAT_INTERVAL
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(self.interval):
            for backend_worker in self.workers:
                try:
                    backend_worker.heartbeat()
                except Exception as error:  # database away: the next beat tries again
                    log.warning("heartbeat of %s failed: %s", backend_worker.host, error)
                    close_old_connections()

    def stop(self):
        self.stopped.set()
