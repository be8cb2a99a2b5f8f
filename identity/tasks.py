from celery import shared_task
from django.utils import timezone

from identity.models import RevocationEvent
from identity.tokens import max_token_life, revocations_changed


@shared_task(name="identity.tasks.purge_revocation_events")
def purge_revocation_events():
    """Revocation events older than the longest token life match nothing."""
    deleted, _ = RevocationEvent.objects.filter(issued_before__lt=timezone.now() - max_token_life()).delete()
    if deleted:
        revocations_changed()
    return deleted
