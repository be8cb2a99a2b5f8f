"""Picks a back end for a volume and claims its size there. Filters are
query conditions (alive and enabled, the type's volume_backend_name, the
availability zone, room for the size); the weigher is free capacity, most
first (Cinder's CapacityWeigher); the claim is the atomic part
(models.claim_capacity). A volume made from a snapshot or another volume
stays on that one's back end, where its data is.

A new volume is placed in the transaction that inserts it (`place`): the
claim is a few queries, so the request needs no trip through the control
queue before its back end's worker can start."""
from django.db import transaction
from django.db.models import F, Q

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
    with transaction.atomic(savepoint=False):
        for backend in Backend.objects.filter(condition).order_by(free.desc(), "host"):
            # Another request may have filled it since the query read it:
            # the claim refuses, and the next back end is tried.
            if not claim_capacity(backend.pk, spec["size"]):
                continue
            if record is not None:
                record(backend)
            return backend
    # Raised once out of the block, so the caller's transaction goes on.
    raise NoValidBackend(explain(spec))


def schedule(volume):
    """Claims the volume's size on the best back end and records it on the
    volume, in one transaction. Returns the Backend; raises NoValidBackend
    (saying why), or InvalidStatus if the volume stopped creating meanwhile."""
    return claim(spec_of(volume), lambda backend: volume.set_status(
        Volume.Status.CREATING, expected=Volume.Status.CREATING, backend=backend))


def place(volume):
    """Inside the transaction that inserted the volume: claims its space on
    a back end, whose worker is handed the create once that commits; when
    none can take it, the volume ends in error with the reason (a 202
    all the same, as Cinder's)."""
    try:
        backend = schedule(volume)
    except NoValidBackend as error:
        fail(volume, f"schedule allocate volume: {error}", SCHEDULE_ALLOCATE_VOLUME, expected=Volume.Status.CREATING)
        return None
    dispatch.to_backend(dispatch.CREATE, backend.host, volume.pk)
    return backend


__all__ = ["NoValidBackend", "claim", "schedule", "place", "InvalidStatus"]
