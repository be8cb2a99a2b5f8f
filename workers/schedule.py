"""Periodic work Celery beat sends to the control queue."""
from datetime import timedelta

BEAT_SCHEDULE = {
    # Ends instances stuck in a transitional state and builds on dead nodes.
    "compute-reconcile": {
        "task": "compute.tasks.reconcile",
        "schedule": timedelta(seconds=30),
    },
    # Images whose upload died with its API process go back to queued.
    "images-reap-stalled-uploads": {
        "task": "images.tasks.reap_stalled_uploads",
        "schedule": timedelta(seconds=60),
    },
    # Objects past their X-Delete-At are deleted.
    "objects-reap-expired": {
        "task": "objects.tasks.reap_expired_objects",
        "schedule": timedelta(seconds=60),
    },
    "objects-discard-stale-temporary": {
        "task": "objects.tasks.discard_stale_temporary",
        "schedule": timedelta(hours=1),
    },
    # S3 multipart uploads left unfinished for a week free their parts.
    "objects-reap-stale-uploads": {
        "task": "objects.tasks.reap_stale_uploads",
        "schedule": timedelta(hours=1),
    },
    # Volumes and snapshots stuck creating, deleting or extending end in error.
    "volumes-reconcile": {
        "task": "volumes.tasks.reconcile",
        "schedule": timedelta(seconds=30),
    },
    "purge-revocation-events": {
        "task": "identity.tasks.purge_revocation_events",
        "schedule": timedelta(hours=1),
    },
}
