"""Runs a volume back end's worker: registers the back end, cleans up what
a killed predecessor left, heartbeats its capacity and consumes its queue
`volume.<host>@<name>`.

    manage.py volumeworker                       # the file back end in STRATUS_VOLUME_DIR
    manage.py volumeworker --name file --directory /srv/volumes --capacity-gb 500
    manage.py volumeworker --name rbd --driver rbd --ceph-conf /etc/ceph/ceph.conf --pool volumes
"""
from django.conf import settings
from django.core.management.base import BaseCommand

from volumes import backends, conf
from volumes.worker import BackendWorker, Heartbeat
from workers import broker, queues


class Command(BaseCommand):
    help = "Run the worker of a volume back end."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.HOSTNAME, help="this storage host's name")
        parser.add_argument("--name", default="file",
                            help="the back end's name (its volume_backend_name; default file)")
        parser.add_argument("--driver", default="file", choices=backends.DRIVERS)
        parser.add_argument("--directory", default=str(conf.VOLUME_DIR),
                            help="file back end: where volume files live (default STRATUS_VOLUME_DIR)")
        parser.add_argument("--format", default=conf.VOLUME_FORMAT, choices=["raw", "qcow2"],
                            help="file back end: the format of new volumes")
        parser.add_argument("--ceph-conf", default=conf.VOLUME_RBD_CEPH_CONF,
                            help="rbd back end: the cluster's ceph.conf (default STRATUS_VOLUME_RBD_CEPH_CONF)")
        parser.add_argument("--pool", default=conf.VOLUME_RBD_POOL,
                            help="rbd back end: the pool volumes live in (default STRATUS_VOLUME_RBD_POOL)")
        parser.add_argument("--capacity-gb", type=int, default=conf.VOLUME_CAPACITY_GB,
                            help="capacity to report (default: the directory's filesystem size, or the "
                                 "Ceph cluster's)")
        parser.add_argument("--availability-zone", default=conf.AVAILABILITY_ZONE)
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args, host, name, driver, directory, format, ceph_conf, pool, capacity_gb, availability_zone,
               concurrency, loglevel, **options):
        if driver == "rbd":
            backend = backends.get(driver, ceph_conf=ceph_conf, pool=pool, user=conf.VOLUME_RBD_USER,
                                   secret_uuid=conf.VOLUME_RBD_SECRET_UUID, capacity_gb=capacity_gb)
            where = f"{pool} in {ceph_conf}"
        else:
            backend = backends.get(driver, directory=directory, volume_format=format, capacity_gb=capacity_gb)
            where = directory
        backend_host = f"{host}@{name}"
        queue = queues.volume(backend_host)
        # The messages a killed predecessor took come back at once.
        broker.requeue_unacknowledged([queue])
        backend_worker = BackendWorker(backend_host, name, backend, availability_zone)
        backend_worker.start()
        heartbeat = Heartbeat([backend_worker])
        heartbeat.start()
        self.stdout.write(f"serving volume back end {backend_host} ({driver}, {where})")

        from workers.celery import app

        try:
            app.worker_main(["worker", "--queues", queue, "--hostname", f"volume@{backend_host}", "--pool", "threads",
                             "--concurrency", str(concurrency), "--without-gossip", "--without-mingle",
                             "--loglevel", loglevel])
        finally:
            heartbeat.stop()
