"""os-simple-tenant-usage: vCPU, RAM and disk hours of each project's
servers over a period (from launch to termination, clipped to it).

From 2.40 the servers are paged as Nova pages them (`limit`, `marker` an
instance id, a `next` link): the totals of a page cover its servers only."""
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from rest_framework.response import Response

from cloud.errors import BadRequest, Forbidden
from compute.api.base import ComputeView, paginate_from
from compute.api.servers import parse_time
from compute.api.server_views import status_of
from compute.models import Instance


def period(request):
    now = timezone.now()
    start = parse_time(request.query_params["start"], "start") if request.query_params.get("start") else \
        now - timedelta(days=1)
    end = parse_time(request.query_params["end"], "end") if request.query_params.get("end") else now
    if start > end:
        raise BadRequest("Invalid input for field 'start': start must be before end.")
    return start, min(end, now)


def usages(instances, start, end, detailed):
    by_project = {}
    for instance in instances:
        began = max(instance.launched_at, start)
        ended = min(instance.terminated_at or end, end)
        hours = max((ended - began).total_seconds(), 0) / 3600
        usage = by_project.setdefault(instance.project_id, {
            "tenant_id": instance.project_id, "total_hours": 0.0, "total_vcpus_usage": 0.0,
            "total_memory_mb_usage": 0.0, "total_local_gb_usage": 0.0,
            "start": start.strftime("%Y-%m-%dT%H:%M:%S.%f"), "stop": end.strftime("%Y-%m-%dT%H:%M:%S.%f"),
            "server_usages": []})
        usage["total_hours"] += hours
        usage["total_vcpus_usage"] += hours * instance.vcpus
        usage["total_memory_mb_usage"] += hours * instance.memory_mb
        usage["total_local_gb_usage"] += hours * (instance.root_gb + instance.ephemeral_gb)
        if detailed:
            usage["server_usages"].append({
                "instance_id": str(instance.id), "name": instance.name, "hours": hours,
                "vcpus": instance.vcpus, "memory_mb": instance.memory_mb,
                "local_gb": instance.root_gb + instance.ephemeral_gb, "flavor": instance.flavor_name,
                "tenant_id": instance.project_id,
                "started_at": instance.launched_at.strftime("%Y-%m-%dT%H:%M:%S.%f"),
                "ended_at": instance.terminated_at.strftime("%Y-%m-%dT%H:%M:%S.%f")
                if instance.terminated_at else None,
                "state": status_of(instance).lower() if not instance.deleted else "terminated",
                "uptime": int((ended - began).total_seconds())})
    for usage in by_project.values():
        if not detailed:
            del usage["server_usages"]
    return by_project


def launched_in(start, end):
    return Instance.objects.filter(launched_at__isnull=False, launched_at__lt=end).filter(
        Q(terminated_at__isnull=True) | Q(terminated_at__gt=start))


class UsageListView(ComputeView):
    policy = {"get": "admin"}

    def get(self, request):
        start, end = period(request)
        detailed = request.query_params.get("detailed", "0") in ("1", "true", "True")
        instances, next_url = paginate_from(request, (2, 40), launched_in(start, end),
                                            [("project_id", "asc"), ("launched_at", "asc"), ("id", "asc")])
        body = {"tenant_usages": list(usages(instances, start, end, detailed).values())}
        if next_url:
            body["tenant_usages_links"] = [{"rel": "next", "href": next_url}]
        return Response(body)


class UsageView(ComputeView):
    policy = {"get": "reader"}

    def get(self, request, project_id):
        if not request.auth.is_admin and project_id != request.auth.project_id:
            raise Forbidden("You are not authorized to perform the requested action.")
        start, end = period(request)
        instances, next_url = paginate_from(request, (2, 40), launched_in(start, end).filter(project_id=project_id),
                                            [("launched_at", "asc"), ("id", "asc")])
        body = {"tenant_usage": usages(instances, start, end, detailed=True).get(project_id, {})}
        if next_url:
            body["tenant_usage_links"] = [{"rel": "next", "href": next_url}]
        return Response(body)
