"""Neutron's quotas: a limit per project and resource (the defaults of
network.conf unless set), usage counted from the rows themselves while the
project's quota lock is held, so concurrent creates cannot pass a limit."""
from network import conf, errors
from network.models import FloatingIP, Network, Port, Quota, QuotaLock, Router, SecurityGroup, SecurityGroupRule, \
    Subnet

COUNTED = {
    "network": Network, "subnet": Subnet, "port": Port, "router": Router, "floatingip": FloatingIP,
    "security_group": SecurityGroup, "security_group_rule": SecurityGroupRule,
}
RESOURCES = tuple(COUNTED)


def limits_of(project_id):
    limits = dict(conf.DEFAULT_QUOTAS)
    limits.update(Quota.objects.filter(project_id=project_id).values_list("resource", "limit"))
    return limits


def usage_of(project_id, resource):
    return COUNTED[resource].objects.filter(project_id=project_id).count()


def lock_project(project_id):
    """Takes the project's quota lock until the surrounding transaction ends
    (its row made on the project's first create)."""
    locked = QuotaLock.objects.select_for_update().filter(project_id=project_id)
    if locked.values_list("pk").first() is None:
        QuotaLock.objects.bulk_create([QuotaLock(project_id=project_id)], ignore_conflicts=True)
        locked.values_list("pk").first()


def reserve(project_id, resource, count=1):
    """Inside the transaction that goes on to insert `count` more rows of
    `resource` (0: it has inserted them): locks the project and raises
    OverQuota if they would pass its limit."""
    limit = limits_of(project_id)[resource]
    if limit < 0:
        return   # no limit: nothing to count, so nothing to wait for
    lock_project(project_id)
    if usage_of(project_id, resource) + count > limit:
        raise errors.over_quota(resource)


def headroom(project_id, resource):
    """How many more rows of `resource` the project may have (None: no
    limit). A check for other services' requests; creates still reserve."""
    limit = limits_of(project_id)[resource]
    return None if limit < 0 else max(limit - usage_of(project_id, resource), 0)


def set_limits(project_id, limits):
    for resource, limit in limits.items():
        Quota.objects.update_or_create(project_id=project_id, resource=resource, defaults={"limit": limit})


def reset(project_id):
    Quota.objects.filter(project_id=project_id).delete()
