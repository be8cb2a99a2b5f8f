"""Picks a back end for a volume and claims its size there. Filters are
query conditions (alive and enabled, the type's volume_backend_name, the
availability zone, room for the size); the weigher is free capacity, most
first (Cinder's CapacityWeigher); the claim is the atomic part
(models.claim_capacity). A volume made from a snapshot or another volume
stays on that one's back end, where its data is.

A new volume is placed in the transaction that inserts it (`place`): the
claim is one statement (the best back end chosen and its capacity claimed
in one UPDATE ... RETURNING), and the volume is inserted on it, so the
request needs no trip through the control queue before its back end's
worker can start."""
from django.db import transaction
from django.db.models import F, Q, Subquery

from cloud.updates import update_returning
from volumes import dispatch
from volumes.models import Backend, InvalidStatus, Volume, alive_since, claim_capacity, fail

# Cinder's message event id of a volume no back end could take.
SCHEDULE_ALLOCATE_VOLUME = "VOLUME_VOLUME_001_002"


class NoValidBackend(Exception):
    pass


FILTERS = (
    ("CapabilitiesFilter:alive", lambda spec: Q(disabled=False, heartbeat_at__gte=alive_since())),
    ("AvailabilityZoneFilter", lambda spec: Q(availability_zone=spec["availability_zone"])),
    ("CapabilitiesFilter", lambda spec: Q(backend_name=spec["backend_name"]) if spec["backend_name"] else Q()),
    ("SameBackendFilter", lambda spec: Q(pk=spec["backend_id"]) if spec["backend_id"] else Q()),
    ("CapacityFilter", lambda spec: Q(allocated_capacity_gb__lte=F("total_capacity_gb")
                                      * F("max_over_subscription_ratio") - spec["size"])),
)


def spec_of(volume):
    source = volume.snapshot or volume.source_volume
    return {"availability_zone": volume.availability_zone, "backend_name": volume.volume_type.backend_name,
            "backend_id": source.backend_id if source is not None else None, "size": volume.size}


def explain(spec):
    """Which filter removed how many back ends: the reason of a failure."""
    remaining = Backend.objects.all()
    total = remaining.count()
    if not total:
        return "No valid backend was found. There are no volume back ends."
    parts = []
    for name, condition in FILTERS:
        before = remaining.count()
        remaining = remaining.filter(condition(spec))
        after = remaining.count()
        if after < before:
            parts.append(f"{name} removed {before - after}")
        if not after:
            break
    return (f"No valid backend was found. {total} back end(s) considered; "
            + ", ".join(parts or ["the back ends left were filled by other requests"]) + ".")


def claim(spec, record=None):
    """Claims spec["size"] on the best back end for `spec`; `record(backend)`
    writes it down in the same transaction. Returns the Backend, or raises
    NoValidBackend saying why."""
    condition = Q()
    for _, make in FILTERS:
        condition &= make(spec)
    free = F("total_capacity_gb") * F("max_over_subscription_ratio") - F("allocated_capacity_gb")
    ranked = Backend.objects.filter(condition).order_by(free.desc(), "host")
    with transaction.atomic(savepoint=False):
        # The usual case in one statement: the best back end, claimed. The
        # UPDATE checks the filters again on the row it locks (capacity
        # among them), so a claim racing it cannot pass capacity.
        claimed = update_returning(Backend.objects.filter(condition, pk=Subquery(ranked.values("pk")[:1])),
                                   allocated_capacity_gb=F("allocated_capacity_gb") + spec["size"])
        if claimed:
            if record is not None:
                record(claimed[0])
            return claimed[0]
        for backend in ranked:
            # Another request may have filled it since the query read it:
            # the claim refuses, and the next back end is tried.
            if not claim_capacity(backend.pk, spec["size"]):
                continue
            if record is not None:
                record(backend)
            return backend
    # Raised once out of the block, so the caller's transaction goes on.
    raise NoValidBackend(explain(spec))


def place(volume, task=dispatch.CREATE, *args):
    """Inserts the new volume (unsaved, in creating) inside the caller's
    transaction, its space claimed on a back end, whose worker is handed
    the create (`task` with the volume's id and `args`) once that commits;
    when none can take it, the volume ends in error with the reason (a 202
    all the same, as Cinder's)."""
    try:
        backend = claim(spec_of(volume))
    except NoValidBackend as error:
        volume.save(force_insert=True)
        fail(volume, f"schedule allocate volume: {error}", SCHEDULE_ALLOCATE_VOLUME, expected=Volume.Status.CREATING)
        return None
    volume.backend = backend
    volume.save(force_insert=True)
    dispatch.to_backend(task, backend.host, volume.pk, *args)
    return backend


__all__ = ["NoValidBackend", "claim", "place", "InvalidStatus"]
