"""The Celery app every Stratus worker runs. Queues:
  control            scheduling, reconciliation, periodic work (control worker)
  compute.<host>     everything that touches the hypervisor on <host>
  network.<host>     bridges, taps, DHCP and firewall on <host>
  volume.<backend>   a storage back end's volumes
A node worker consumes its host's compute and network queues."""
import os
import sys

from celery import Celery, signals
from django.db import close_old_connections

from workers.schedule import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")

# Tasks and the worker's consumer from workers/broker.py: late
# acknowledgements that survive the broker going away.
app = Celery("stratus", task_cls="workers.broker:Task")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The node agent's tasks (queue compute.<host>) live below the compute app.
app.autodiscover_tasks(["compute.node"])
app.conf.beat_schedule = BEAT_SCHEDULE

# Celery's Django fix-up closes the database connection around every task:
# a new PostgreSQL connection per task, most of a node worker's CPU in a
# boot storm. Keep them instead, and drop only the broken ones and those
# past CONN_MAX_AGE, as Django does around web requests.
app.conf["CELERY_DB_REUSE_MAX"] = sys.maxsize


@signals.task_prerun.connect
@signals.task_postrun.connect
def recycle_database_connections(**kwargs):
    close_old_connections()
