"""Object work on the control queue: the expirer of X-Delete-At objects and
the sweep of temporary files writes left when their process died."""
from celery import shared_task

from objects import data


@shared_task(name="objects.tasks.reap_expired_objects")
def reap_expired_objects():
    """Periodic (workers/schedule.py): see objects.data.reap_expired."""
    return data.reap_expired()


@shared_task(name="objects.tasks.discard_stale_temporary")
def discard_stale_temporary():
    return data.discard_stale_temporary()


@shared_task(name="objects.tasks.reap_stale_uploads")
def reap_stale_uploads():
    """Periodic (workers/schedule.py): see objects.multipart.reap_stale."""
    from objects import multipart

    return multipart.reap_stale()
