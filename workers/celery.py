"""The Celery app every Stratus worker runs. Queues:
  control            scheduling, reconciliation, periodic work (control worker)
  compute.<host>     everything that touches the hypervisor on <host>
  network.<host>     bridges, taps, DHCP and firewall on <host>
  volume.<backend>   a storage back end's volumes
A node worker consumes its host's compute and network queues."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")

app = Celery("stratus")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The node agent's tasks (queue compute.<host>) live below the compute app.
app.autodiscover_tasks(["compute.node"])

from workers.schedule import BEAT_SCHEDULE  # noqa: E402

app.conf.beat_schedule = BEAT_SCHEDULE
