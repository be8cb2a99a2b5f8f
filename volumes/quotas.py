"""Cinder's quotas: volumes, snapshots and gigabytes per project, and the
same per volume type (`volumes_<type>`...), from the defaults of
volumes.conf (or of the `default` quota class where an admin set one)
unless set for the project. Usage is counted from the rows themselves (a
volume or snapshot whose create failed holds nothing and counts nothing)
while the project's quota lock is held, so concurrent creates of one
project cannot together pass a limit."""
from django.db import connection, transaction
from django.db.models import Count, Sum

from cloud.errors import ApiError
from volumes import conf
from volumes.models import Backup, Quota, QuotaClass, QuotaLock, Snapshot, Volume, VolumeType

RESOURCES = tuple(conf.DEFAULT_QUOTAS)
PER_TYPE = ("volumes", "snapshots", "gigabytes")
DEFAULT_CLASS = "default"


class OverQuota(ApiError):
    status = 413

    def __init__(self, resource, requested, used, limit):
        self.resource = resource
        if resource.startswith("gigabytes") or resource == "per_volume_gigabytes":
            message = (f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed {resource} "
                       f"quota. Requested {requested}G, quota is {limit}G and {used}G has been consumed.")
        elif resource == "backup_gigabytes":
            message = (f"VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes "
                       f"quota. Requested {requested}G, quota is {limit}G and {used}G has been consumed.")
        else:
            message = f"Maximum number of {resource} allowed ({limit}) exceeded for quota '{resource}'."
        super().__init__(message)


def type_resources():
    return [f"{resource}_{name}" for name in VolumeType.objects.values_list("name", flat=True)
            for resource in PER_TYPE]


def class_limits(class_name=DEFAULT_CLASS, every_type=True):
    """A quota class's limits: volumes.conf's defaults (no limit per type)
    where the class sets none. The `default` class's are every project's
    defaults."""
    limits = {**conf.DEFAULT_QUOTAS, **({name: -1 for name in type_resources()} if every_type else {})}
    limits.update(QuotaClass.objects.filter(class_name=class_name).values_list("resource", "hard_limit"))
    return limits


def set_class_limits(class_name, values):
    for resource, hard_limit in values.items():
        QuotaClass.objects.update_or_create(class_name=class_name, resource=resource,
                                            defaults={"hard_limit": hard_limit})


# A project's own limits and the `default` class's in one query, written
# as SQL once (a create reads them; composing the union through the ORM
# took more of the API's CPU than the database takes to answer it).
LIMITS = (f'SELECT "resource", "hard_limit", 0 FROM "{QuotaClass._meta.db_table}" WHERE "class_name" = %s '
          f'UNION ALL SELECT "resource", "hard_limit", 1 FROM "{Quota._meta.db_table}" WHERE "project_id" = %s')


def limits_of(project_id, every_type=True):
    """The project's limits: its own where set, else the `default` class's,
    else volumes.conf's; both sets read in one query (a create reads them)."""
    limits = {**conf.DEFAULT_QUOTAS, **({name: -1 for name in type_resources()} if every_type else {})}
    with connection.cursor() as cursor:
        cursor.execute(LIMITS, [DEFAULT_CLASS, project_id])
        rows = cursor.fetchall()
    # The class's first, so that the project's own override them.
    for resource, hard_limit, _ in sorted(rows, key=lambda row: row[2]):
        limits[resource] = hard_limit
    return limits


def usage_of(project_id, every_type=True):
    """{resource: in use} for the project, per type too (every type's,
    or only those of the types in use when not `every_type`)."""
    used = {resource: 0 for resource in RESOURCES}
    if every_type:
        used.update({name: 0 for name in type_resources()})
    for row in Volume.counted().filter(project_id=project_id).values("volume_type__name").annotate(
            count=Count("id"), size=Sum("size")):
        name = row["volume_type__name"]
        used["volumes"] += row["count"]
        used["gigabytes"] += row["size"] or 0
        used[f"volumes_{name}"] = row["count"]
        used[f"gigabytes_{name}"] = row["size"] or 0
    for row in Snapshot.counted().filter(project_id=project_id).values("volume__volume_type__name").annotate(
            count=Count("id"), size=Sum("size")):
        name = row["volume__volume_type__name"]
        used["snapshots"] += row["count"]
        used["gigabytes"] += row["size"] or 0
        used[f"snapshots_{name}"] = row["count"]
        used[f"gigabytes_{name}"] = used.get(f"gigabytes_{name}", 0) + (row["size"] or 0)
    backups = Backup.counted().filter(project_id=project_id).aggregate(count=Count("id"), size=Sum("size"))
    used["backups"] = backups["count"]
    used["backup_gigabytes"] = backups["size"] or 0
    return used


def lock_project(project_id):
    """Takes the project's quota lock until the surrounding transaction
    ends (its row made by the project's first request)."""
    locked = QuotaLock.objects.select_for_update().filter(project_id=project_id)
    if not locked.exists():
        QuotaLock.objects.bulk_create([QuotaLock(project_id=project_id)], ignore_conflicts=True)
        locked.exists()


def _check_under_lock(project_id, limited):
    """OverQuota naming the first of `limited` ((resource, need, limit)
    triples) that the project's usage, counted under its quota lock, would
    pass; with nothing limited, no lock and no count."""
    if not limited:
        return
    lock_project(project_id)
    used = usage_of(project_id, every_type=False)
    for name, need, limit in limited:
        if used.get(name, 0) + need > limit:
            raise OverQuota(name, need, used.get(name, 0), limit)


def reserve(project_id, volume_type, volumes=0, snapshots=0, gigabytes=0):
    """Inside the transaction that goes on to insert the rows (or grow a
    volume): locks the project and raises OverQuota naming the first
    resource the request would pass, overall or for its type. Usage is
    counted, under the lock, only when one of those has a limit: with none,
    there is nothing concurrent creates could pass together, and no lock."""
    assert transaction.get_connection().in_atomic_block, "reserve must run inside the inserting transaction"
    limits = limits_of(project_id, every_type=False)
    per_volume = limits["per_volume_gigabytes"]
    if volumes and per_volume >= 0 and gigabytes > per_volume:
        raise OverQuota("per_volume_gigabytes", gigabytes, 0, per_volume)
    limited = [(name, need, limits[name]) for resource, need in (
        ("volumes", volumes), ("snapshots", snapshots), ("gigabytes", gigabytes)) if need
        for name in (resource, f"{resource}_{volume_type.name}") if limits.get(name, -1) >= 0]
    _check_under_lock(project_id, limited)


def reserve_backup(project_id, gigabytes):
    """A new backup of `gigabytes`, inside the transaction that inserts it:
    OverQuota naming backups or backup_gigabytes if it would pass one."""
    assert transaction.get_connection().in_atomic_block, "reserve_backup must run inside the inserting transaction"
    limits = limits_of(project_id, every_type=False)
    limited = [(name, need, limits[name]) for name, need in (("backups", 1), ("backup_gigabytes", gigabytes))
               if limits.get(name, -1) >= 0]
    _check_under_lock(project_id, limited)


def reserve_type(project_id, volume_type, volumes=0, gigabytes=0):
    """A volume moving to `volume_type` (a retype): raises OverQuota if it
    passes that type's own limits (the project's overall usage is the same)."""
    assert transaction.get_connection().in_atomic_block, "reserve_type must run inside the retyping transaction"
    limits = limits_of(project_id, every_type=False)
    limited = [(name, need, limits[name]) for name, need in (
        (f"volumes_{volume_type.name}", volumes), (f"gigabytes_{volume_type.name}", gigabytes))
        if need and limits.get(name, -1) >= 0]
    _check_under_lock(project_id, limited)


def set_limits(project_id, values):
    for resource, hard_limit in values.items():
        Quota.objects.update_or_create(project_id=project_id, resource=resource, defaults={"hard_limit": hard_limit})


def reset_limits(project_id):
    Quota.objects.filter(project_id=project_id).delete()
