"""Periodic work Celery beat sends to the control queue."""
from datetime import timedelta

BEAT_SCHEDULE = {
    "purge-revocation-events": {
        "task": "identity.tasks.purge_revocation_events",
        "schedule": timedelta(hours=1),
    },
}
