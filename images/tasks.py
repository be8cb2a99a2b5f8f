"""Image work: the image cache's on the compute nodes' queues
(compute.<host>); imports and the reaper of dead uploads and imports on
the control queue."""
from celery import shared_task
from django.conf import settings

from images import data, importing
from images.cache import ImageCache


@shared_task(name="images.tasks.reap_stalled_uploads")
def reap_stalled_uploads():
    """Periodic (workers/schedule.py): see images.data.reap_stalled_uploads
    and images.importing.reap_stalled."""
    return data.reap_stalled_uploads() + importing.reap_stalled()


@shared_task(name=importing.RUN_IMPORT)
def run_import(task_id):
    """An interoperable import (images.importing.run_import)."""
    importing.run_import(task_id)


@shared_task(name="images.tasks.evict_image_cache")
def evict_image_cache(max_bytes=None, in_use_image_ids=()):
    """Trims this node's image cache to max_bytes (default
    settings.IMAGE_CACHE_MAX_BYTES), least recently used images first,
    keeping those in use (given, or with a live instance disk on them)."""
    limit = settings.IMAGE_CACHE_MAX_BYTES if max_bytes is None else max_bytes
    return ImageCache().evict(limit, in_use_image_ids)
