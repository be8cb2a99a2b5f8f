"""os-instance_usage_audit_log (admins): how Nova's periodic instance
usage audit went on each compute host over the last completed audit
period (a calendar month) before a time.

Stratus runs no such audit (it sends no usage notifications), so, as Nova
answers with its audit turned off (its default), no host has a log: every
compute service not forced down, enabled or not, is a host the audit has
not run on."""
from datetime import datetime, timezone

from rest_framework.response import Response

from cloud.errors import BadRequest
from compute.api.base import ComputeView
from compute.models import Service


def previous_month(moment):
    return moment.replace(year=moment.year - 1, month=12) if moment.month == 1 else \
        moment.replace(month=moment.month - 1)


def audit_period(before):
    """(beginning, ending) of the last whole month that ended before
    `before` (Nova's last_completed_audit_period, unit `month`)."""
    ending = datetime(before.year, before.month, 1)
    if ending >= before:
        ending = previous_month(ending)
    return previous_month(ending), ending


def parse_before(value):
    """Nova's before-timestamp: `YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC."""
    for layout in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(value, layout)
        except ValueError:
            continue
    raise BadRequest(f"Invalid timestamp for date {value}")


def audit_log(before):
    beginning, ending = audit_period(before)
    hosts = sorted(set(Service.objects.filter(binary=Service.COMPUTE_BINARY, forced_down=False)
                       .values_list("host", flat=True)))
    done = 0  # hosts whose audit of the period is DONE: none, no audit runs
    return {
        "period_beginning": str(beginning), "period_ending": str(ending),
        "num_hosts": len(hosts), "num_hosts_done": done, "num_hosts_running": 0,
        "num_hosts_not_run": len(hosts), "hosts_not_run": hosts,
        "total_instances": 0, "total_errors": 0,
        "overall_status": f"{'ALL' if done == len(hosts) else f'{done} of {len(hosts)}'} hosts done. 0 errors.",
        "log": {},
    }


class AuditLogListView(ComputeView):
    policy = {"get": "admin"}

    def get(self, request):
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        return Response({"instance_usage_audit_logs": audit_log(now)})


class AuditLogView(ComputeView):
    policy = {"get": "admin"}

    def get(self, request, before):
        return Response({"instance_usage_audit_log": audit_log(parse_before(before))})
