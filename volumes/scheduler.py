"""Picks a back end for a volume and claims its size there. Filters are
SQL conditions on the back end's row (alive and enabled, the type's
volume_backend_name, the availability zone, room for the size); the weigher is free capacity, most
first (Cinder's CapacityWeigher); the claim is the atomic part
(models.claim_capacity). A volume made from a snapshot or another volume
stays on that one's back end, where its data is.

A new volume is placed in the transaction that inserts it (`place`): the
claim is one statement (the best back end chosen and its capacity claimed
in one UPDATE ... RETURNING), and the volume is inserted on it, so the
request needs no trip through the control queue before its back end's
worker can start."""
from django.db import connection, transaction
from django.db.models import BooleanField, F
from django.db.models.expressions import RawSQL

from volumes import dispatch
from volumes.models import Backend, InvalidStatus, Volume, alive_since, claim_capacity, fail

# Cinder's message event id of a volume no back end could take.
SCHEDULE_ALLOCATE_VOLUME = "VOLUME_VOLUME_001_002"


class NoValidBackend(Exception):
    pass


def _condition(sql, *params):
    """A filter as an SQL condition on the back end's own columns (one
    statement text for the claim and for explain's counts)."""
    return RawSQL(sql, params, output_field=BooleanField())


FILTERS = (
    ("CapabilitiesFilter:alive", lambda spec: _condition(
        'NOT "disabled" AND "heartbeat_at" >= %s',
        connection.ops.adapt_datetimefield_value(alive_since()))),
    ("AvailabilityZoneFilter", lambda spec: _condition('"availability_zone" = %s', spec["availability_zone"])),
    ("CapabilitiesFilter", lambda spec: _condition('"backend_name" = %s', spec["backend_name"])
     if spec["backend_name"] else None),
    ("SameBackendFilter", lambda spec: _condition('"id" = %s', spec["backend_id"]) if spec["backend_id"] else None),
    ("CapacityFilter", lambda spec: _condition(
        '"allocated_capacity_gb" <= "total_capacity_gb" * "max_over_subscription_ratio" - %s', spec["size"])),
)
FREE = '"total_capacity_gb" * "max_over_subscription_ratio" - "allocated_capacity_gb"'
_TABLE = Backend._meta.db_table
_RETURNING = ", ".join(f'"{field.column}"' for field in Backend._meta.concrete_fields)
# The usual claim in one statement: the best back end (the filters, most
# free first), claimed. The UPDATE checks the filters again on the row it
# locks (capacity among them), so a claim racing it cannot pass capacity.
# Written as SQL once, not built through the ORM per request: building
# and compiling it took about 1 ms of the API's CPU, ten times what the
# database takes to run it.
CLAIM = (f'UPDATE "{_TABLE}" SET "allocated_capacity_gb" = "allocated_capacity_gb" + %s '
         f'WHERE {{condition}} AND "id" = (SELECT "id" FROM "{_TABLE}" WHERE {{condition}} '
         f'ORDER BY {FREE} DESC, "host" LIMIT 1) RETURNING {_RETURNING}')


def conditions(spec):
    """The filters' conditions for `spec`: [(name, RawSQL)] of those that apply."""
    return [(name, condition) for name, make in FILTERS if (condition := make(spec)) is not None]


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
    for name, condition in conditions(spec):
        before = remaining.count()
        remaining = remaining.filter(condition)
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
    applied = [condition for _, condition in conditions(spec)]
    where = " AND ".join(f"({condition.sql})" for condition in applied)
    params = [param for condition in applied for param in condition.params]
    with transaction.atomic(savepoint=False):
        # raw() turns the row into a Backend as a query would (the
        # database's values converted to the fields' types).
        claimed = list(Backend.objects.raw(CLAIM.format(condition=where), [spec["size"], *params, *params]))
        if claimed:
            if record is not None:
                record(claimed[0])
            return claimed[0]
        free = F("total_capacity_gb") * F("max_over_subscription_ratio") - F("allocated_capacity_gb")
        for backend in Backend.objects.filter(*applied).order_by(free.desc(), "host"):
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
