"""Host filters. Each removes the hosts that cannot take the request:
`sql(spec)` is the same rule as a query condition (the pre-filter that
narrows thousands of nodes to a few candidates in the database),
`host_passes(host, spec)` checks one fetched node. Adding a rule is
adding a class to FILTERS."""
from django.db.models import F, Q

from compute.models import ComputeNode, Service, alive_since

COMPUTE_BINARY = "stratus-compute"


class HostFilter:
    name = ""

    def sql(self, spec):
        return Q()

    def host_passes(self, host, spec):
        return True


class ComputeFilter(HostFilter):
    """Enabled, heartbeating, and its compute service not forced down."""

    name = "ComputeFilter"

    def sql(self, spec):
        forced_down = Service.objects.filter(binary=COMPUTE_BINARY, forced_down=True).values("host")
        return Q(disabled=False, heartbeat_at__gte=alive_since()) & ~Q(host__in=forced_down)

    def host_passes(self, host, spec):
        return not host.disabled and host.is_up


class AvailabilityZoneFilter(HostFilter):
    name = "AvailabilityZoneFilter"

    def sql(self, spec):
        return Q(availability_zone=spec.availability_zone) if spec.availability_zone else Q()

    def host_passes(self, host, spec):
        return not spec.availability_zone or host.availability_zone == spec.availability_zone


class RamFilter(HostFilter):
    name = "RamFilter"

    def sql(self, spec):
        return Q(memory_mb_used__lte=F("memory_mb") * F("ram_allocation_ratio") - spec.memory_mb)

    def host_passes(self, host, spec):
        return host.memory_mb_used + spec.memory_mb <= host.memory_mb * host.ram_allocation_ratio


class CoreFilter(HostFilter):
    name = "CoreFilter"

    def sql(self, spec):
        return Q(vcpus_used__lte=F("vcpus") * F("cpu_allocation_ratio") - spec.vcpus)

    def host_passes(self, host, spec):
        return host.vcpus_used + spec.vcpus <= host.vcpus * host.cpu_allocation_ratio


class DiskFilter(HostFilter):
    name = "DiskFilter"

    def sql(self, spec):
        return Q(local_gb_used__lte=F("local_gb") * F("disk_allocation_ratio") - spec.disk_gb)

    def host_passes(self, host, spec):
        return host.local_gb_used + spec.disk_gb <= host.local_gb * host.disk_allocation_ratio


class RetryFilter(HostFilter):
    """Skips the hosts this boot already failed on."""

    name = "RetryFilter"

    def sql(self, spec):
        return ~Q(host__in=spec.tried_hosts) if spec.tried_hosts else Q()

    def host_passes(self, host, spec):
        return host.host not in spec.tried_hosts


class ServerGroupAffinityFilter(HostFilter):
    name = "ServerGroupAffinityFilter"

    def sql(self, spec):
        if spec.group_policy == "affinity" and spec.group_hosts:
            return Q(host__in=spec.group_hosts)
        return Q()

    def host_passes(self, host, spec):
        return not (spec.group_policy == "affinity" and spec.group_hosts) or host.host in spec.group_hosts


class ServerGroupAntiAffinityFilter(HostFilter):
    name = "ServerGroupAntiAffinityFilter"

    def sql(self, spec):
        if spec.group_policy == "anti-affinity" and spec.group_hosts:
            return ~Q(host__in=spec.group_hosts)
        return Q()

    def host_passes(self, host, spec):
        return spec.group_policy != "anti-affinity" or host.host not in spec.group_hosts


FILTERS = (ComputeFilter(), AvailabilityZoneFilter(), RamFilter(), CoreFilter(), DiskFilter(), RetryFilter(),
           ServerGroupAffinityFilter(), ServerGroupAntiAffinityFilter())


def prefilter(spec, limit, order_by):
    """The candidate nodes: every filter's condition in one query."""
    condition = Q()
    for host_filter in FILTERS:
        condition &= host_filter.sql(spec)
    return list(ComputeNode.objects.filter(condition).order_by(*order_by)[:limit])


def explain_no_host(spec):
    """Which filter removed how many hosts, in the order they apply: the
    message of a "No valid host" (only computed when it happens)."""
    remaining = ComputeNode.objects.all()
    total = remaining.count()
    if not total:
        return "there are no compute nodes"
    parts = []
    for host_filter in FILTERS:
        before = remaining.count()
        remaining = remaining.filter(host_filter.sql(spec))
        after = remaining.count()
        if after < before:
            parts.append(f"{host_filter.name} removed {before - after}")
        if not after:
            break
    return f"{total} host(s) considered; " + ", ".join(parts or ["the hosts left were claimed by other boots"])
