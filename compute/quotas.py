"""Per-project quotas of instances, cores and RAM (and the smaller ones
Nova lists): a project's own limit where an admin set one, else the
`default` quota class's where an admin set that, else conf.DEFAULT_QUOTAS. Usage is counted from the instances themselves, plus the
growth of resizes not finished yet; a boot or a resize locks its project's
QuotaLock row, counts, checks and writes in one transaction, so concurrent
requests of one project cannot together pass the limit."""
from django.db import connection, transaction
from django.db.models import Count, Sum, Value

from cloud.errors import ApiError
from compute import conf
from compute.models import Instance, KeyPair, Migration, Quota, QuotaClass, QuotaLock, ServerGroup

RESOURCES = tuple(conf.DEFAULT_QUOTAS)
DEFAULT_CLASS = "default"
# What a quota_set shows at microversion 2.57 and later.
QUOTA_SET_RESOURCES = ("cores", "instances", "key_pairs", "metadata_items", "ram", "server_groups",
                       "server_group_members")


class QuotaExceeded(ApiError):
    status = 403

    def __init__(self, resource, requested, used, limit):
        self.resource = resource
        super().__init__(f"Quota exceeded for {resource}: Requested {requested}, but already used {used} "
                         f"of {limit} {resource}")


def class_limits(class_name=DEFAULT_CLASS):
    """A quota class's limits: conf.DEFAULT_QUOTAS where it sets none."""
    limits = dict(conf.DEFAULT_QUOTAS)
    limits.update(QuotaClass.objects.filter(class_name=class_name, resource__in=RESOURCES)
                  .values_list("resource", "hard_limit"))
    return limits


def set_class_limits(class_name, values):
    for resource, hard_limit in values.items():
        QuotaClass.objects.update_or_create(class_name=class_name, resource=resource,
                                            defaults={"hard_limit": hard_limit})


def _overrides(project_id, resources=RESOURCES):
    """[(resource, limit)] set for the default class, then for the project
    (which wins), read in one query: a boot checks them on every request."""
    by_class = QuotaClass.objects.filter(class_name=DEFAULT_CLASS, resource__in=resources).annotate(
        own=Value(0)).values_list("resource", "hard_limit", "own")
    by_project = Quota.objects.filter(project_id=project_id, resource__in=resources).annotate(
        own=Value(1)).values_list("resource", "hard_limit", "own")
    return [(resource, limit) for resource, limit, _own in sorted(by_class.union(by_project, all=True),
                                                                   key=lambda row: row[2])]


def limits_of(project_id):
    limits = dict(conf.DEFAULT_QUOTAS)
    limits.update(_overrides(project_id))
    return limits


def limit_of(project_id, resource):
    return dict([(resource, conf.DEFAULT_QUOTAS[resource]), *_overrides(project_id, (resource,))])[resource]


def usage_of(project_id, server_groups=True):
    """What the project holds now: instances, cores, ram and (unless not
    asked for) server groups. Keypairs belong to users, not projects."""
    totals = Instance.objects.filter(project_id=project_id, deleted=False).aggregate(
        instances=Count("id"), cores=Sum("vcpus"), ram=Sum("memory_mb"))
    usage = {"instances": totals["instances"] or 0, "cores": totals["cores"] or 0, "ram": totals["ram"] or 0}
    # A resize not finished yet runs with its old flavor but holds the new one.
    for old, new in Migration.objects.filter(project_id=project_id, status__in=Migration.Status.BEFORE_FINISH,
                                             instance__deleted=False).values_list("old_flavor", "new_flavor"):
        usage["cores"] += max(new["vcpus"] - old["vcpus"], 0)
        usage["ram"] += max(new["memory_mb"] - old["memory_mb"], 0)
    if server_groups:
        usage["server_groups"] = ServerGroup.objects.filter(project_id=project_id).count()
    return usage


def _lock(key):
    """Takes lock row `key` (made on first use) until the transaction ends,
    in one upsert: on PostgreSQL it locks the row it inserts or finds, and
    SQLite holds the whole database for a writing transaction."""
    quote = connection.ops.quote_name
    table, column = quote(QuotaLock._meta.db_table), quote(QuotaLock._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({column}) VALUES (%s) "
                       f"ON CONFLICT ({column}) DO UPDATE SET {column} = EXCLUDED.{column}", [key])


def lock_project(project_id):
    """Takes the project's quota lock until the surrounding transaction ends."""
    _lock(project_id)


def reserve_key_pair(user_id, project_id):
    """Inside the transaction that goes on to insert a keypair of
    `user_id`: takes the user's lock (keypairs are counted per user,
    whichever project the request comes from) and raises QuotaExceeded if
    one more would pass the key_pairs limit of `project_id`."""
    assert transaction.get_connection().in_atomic_block, "reserve_key_pair must run inside the inserting transaction"
    _lock(f"user:{user_id}")
    limit = limit_of(project_id, "key_pairs")
    _check([("key_pairs", 1)], {"key_pairs": limit}, {"key_pairs": key_pairs_used(user_id)})


def _locked_usage(project_id):
    """(limits, usage) of the project, its quota lock taken until the
    surrounding transaction ends."""
    lock_project(project_id)
    return limits_of(project_id), usage_of(project_id, server_groups=False)


def _check(needs, limits, used):
    """Raises QuotaExceeded naming the first (resource, need) of `needs`
    that would pass its limit."""
    for resource, need in needs:
        if limits[resource] >= 0 and used[resource] + need > limits[resource]:
            raise QuotaExceeded(resource, need, used[resource], limits[resource])


def reserve_boot(project_id, minimum, maximum, vcpus, memory_mb):
    """Inside the transaction that goes on to insert the instances: locks
    the project and returns how many instances (the most between minimum
    and maximum) its quota allows, or raises QuotaExceeded naming the first
    resource that `minimum` of them would exceed."""
    assert transaction.get_connection().in_atomic_block, "reserve_boot must run inside the inserting transaction"
    limits, used = _locked_usage(project_id)

    def needs(count):
        return (("instances", count), ("cores", count * vcpus), ("ram", count * memory_mb))

    _check(needs(minimum), limits, used)
    for count in range(maximum, minimum, -1):
        if all(limits[r] < 0 or used[r] + need <= limits[r] for r, need in needs(count)):
            return count
    return minimum


def reserve_growth(project_id, vcpus, memory_mb):
    """Inside the transaction that records a resize (or its revert):
    locks the project and raises QuotaExceeded if growing its usage by
    `vcpus` cores and `memory_mb` of RAM would pass a limit."""
    assert transaction.get_connection().in_atomic_block, "reserve_growth must run inside the recording transaction"
    limits, used = _locked_usage(project_id)
    _check([(resource, need) for resource, need in (("cores", vcpus), ("ram", memory_mb)) if need > 0], limits, used)


def key_pairs_used(user_id):
    return KeyPair.objects.filter(user_id=user_id).count()


def set_limits(project_id, values):
    for resource, hard_limit in values.items():
        Quota.objects.update_or_create(project_id=project_id, resource=resource,
                                       defaults={"hard_limit": hard_limit})


def reset_limits(project_id):
    Quota.objects.filter(project_id=project_id).delete()
