"""The operator's view of the hosts: os-services, os-hypervisors and
availability zones. Ids are UUIDs (Nova's form from 2.53)."""
import json
import uuid

from django.db import transaction
from django.utils import timezone
from django.db.models import Count, Q, Sum
from rest_framework.response import Response

from cloud.errors import ApiError, BadRequest, NotFound
from cloud.pagination import paginate
from compute import lifecycle
from compute.api.base import ComputeView, ProxyView, nova_time, nova_time_usec, require_bool, require_string
from compute.models import ComputeNode, Instance, Service, alive_since


def by_uuid(model, value, label):
    try:
        row = model.objects.filter(id=uuid.UUID(str(value))).first()
    except ValueError:
        row = None
    if row is None:
        raise NotFound(f"{label} {value} could not be found.")
    return row


def service_body(request, service):
    data = {
        "id": str(service.id) if request.api_version >= (2, 53) else _legacy_id(service.id),
        "binary": service.binary, "host": service.host, "zone": service.availability_zone
        if service.binary == Service.COMPUTE_BINARY else "internal",
        "status": "disabled" if service.disabled else "enabled",
        "state": "up" if service.is_up else "down",
        "updated_at": nova_time_usec(service.last_seen_up), "disabled_reason": service.disabled_reason,
    }
    if request.api_version >= (2, 11):
        data["forced_down"] = service.forced_down
    return data


def _legacy_id(value):
    """Before 2.53 Nova's ids are integers: a stable number from the UUID."""
    return uuid.UUID(str(value)).int % (2 ** 31)


def sync_node(service):
    """A compute service's enabled state is its node's: the scheduler reads the node."""
    if service.binary == Service.COMPUTE_BINARY:
        ComputeNode.objects.filter(host=service.host).update(disabled=service.disabled,
                                                             disabled_reason=service.disabled_reason)


class ServiceListView(ComputeView):
    policy = {"get": "admin"}

    def get(self, request):
        services = Service.objects.all()
        for param in ("host", "binary"):
            if request.query_params.get(param):
                services = services.filter(**{param: request.query_params[param]})
        return Response({"services": [service_body(request, service) for service in services]})


class ServiceView(ComputeView):
    """PUT /os-services/{id} (2.53+): status, disabled_reason, forced_down."""

    policy = {"put": "admin", "delete": "admin"}

    def find(self, service_id):
        return by_uuid(Service, service_id, "Service")

    def put(self, request, service_id):
        if request.api_version < (2, 53):
            return LegacyServiceActionView().update(request, service_id)
        service = self.find(service_id)
        data = request.data if isinstance(request.data, dict) else None
        if not data or not set(data) <= {"status", "disabled_reason", "forced_down"}:
            raise BadRequest("Invalid input for field 'service': give status, disabled_reason and/or forced_down.")
        if "status" in data:
            if data["status"] not in ("enabled", "disabled"):
                raise BadRequest("Invalid input for field 'status': must be 'enabled' or 'disabled'.")
            service.disabled = data["status"] == "disabled"
            service.disabled_reason = None
        if "disabled_reason" in data:
            if not service.disabled:
                raise BadRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.")
            service.disabled_reason = require_string(data["disabled_reason"], "disabled_reason")
        if "forced_down" in data:
            service.forced_down = require_bool(data["forced_down"], "forced_down")
        with transaction.atomic():
            service.save(update_fields=["disabled", "disabled_reason", "forced_down", "updated_at"])
            sync_node(service)
        return Response({"service": service_body(request, service)})

    def delete(self, request, service_id):
        service = self.find(service_id)
        if service.binary == Service.COMPUTE_BINARY:
            try:
                lifecycle.remove_compute_host(service.host)
            except lifecycle.HostingInstances as error:
                raise BadRequest(str(error)) from None
        else:
            service.delete()
        return Response(status=204)


class LegacyServiceActionView(ComputeView):
    """Before 2.53: PUT /os-services/{disable,enable,disable-log-reason,force-down}
    with {"host", "binary"[, "disabled_reason" | "forced_down"]}."""

    policy = {"put": "admin"}

    def put(self, request, service_id):
        return self.update(request, service_id)

    def update(self, request, action):
        data = request.data if isinstance(request.data, dict) else {}
        host = require_string(data.get("host"), "host")
        binary = require_string(data.get("binary"), "binary")
        service = Service.objects.filter(host=host, binary=binary).first()
        if service is None:
            raise NotFound(f"Service {binary} on host {host} could not be found.")
        body = {"host": host, "binary": binary}
        if action == "enable":
            service.disabled, service.disabled_reason = False, None
        elif action == "disable":
            service.disabled = True
        elif action == "disable-log-reason":
            service.disabled = True
            service.disabled_reason = require_string(data.get("disabled_reason"), "disabled_reason")
            body["disabled_reason"] = service.disabled_reason
        elif action == "force-down" and request.api_version >= (2, 11):
            service.forced_down = require_bool(data.get("forced_down"), "forced_down")
            body["forced_down"] = service.forced_down
        else:
            raise NotFound(f"Unknown action {action}.")
        with transaction.atomic():
            service.save(update_fields=["disabled", "disabled_reason", "forced_down", "updated_at"])
            sync_node(service)
        if action != "force-down":
            body["status"] = "disabled" if service.disabled else "enabled"
        return Response({"service": body})


def compute_services():
    return {service.host: service for service in Service.objects.filter(binary=Service.COMPUTE_BINARY)}


def hypervisor_summary(request, node, service):
    up = node.is_up and (service is None or service.is_up)
    return {"id": str(node.id), "hypervisor_hostname": node.hypervisor_hostname,
            "state": "up" if up else "down", "status": "disabled" if node.disabled else "enabled"}


def hypervisor_detail(request, node, service):
    data = hypervisor_summary(request, node, service)
    data.update({
        "vcpus": node.vcpus, "memory_mb": node.memory_mb, "local_gb": node.local_gb,
        "vcpus_used": node.vcpus_used, "memory_mb_used": node.memory_mb_used, "local_gb_used": node.local_gb_used,
        "hypervisor_type": node.hypervisor_type, "hypervisor_version": node.hypervisor_version,
        "free_ram_mb": node.memory_mb - node.memory_mb_used, "free_disk_gb": node.local_gb - node.local_gb_used,
        "current_workload": getattr(node, "workload", 0) or 0, "running_vms": node.running_vms,
        # A JSON object from 2.28, a string holding one before.
        "cpu_info": node.cpu_info if request.api_version >= (2, 28) else json.dumps(node.cpu_info),
        "disk_available_least": node.local_gb - node.local_gb_used,
        "host_ip": node.host_ip,
        "service": {"host": node.host, "id": str(service.id) if service else None,
                    "disabled_reason": node.disabled_reason},
    })
    return data


class HypervisorListView(ComputeView):
    policy = {"get": "admin"}
    detail = False

    def get(self, request):
        nodes = ComputeNode.objects.all()
        pattern = request.query_params.get("hypervisor_hostname_pattern")
        if pattern:
            nodes = nodes.filter(hypervisor_hostname__icontains=pattern)
        with_servers = request.api_version >= (2, 53) and require_bool(
            request.query_params.get("with_servers", "false"), "with_servers")
        nodes = nodes.annotate(workload=Count("instances", filter=Q(instances__deleted=False,
                                                                     instances__task_state__isnull=False)))
        rows, next_url = paginate(request, nodes, [("hypervisor_hostname", "asc"), ("id", "asc")])
        services = compute_services()
        render = hypervisor_detail if self.detail else hypervisor_summary
        hypervisors = [render(request, node, services.get(node.host)) for node in rows]
        if with_servers:
            attach_servers(hypervisors, rows)
        body = {"hypervisors": hypervisors}
        if next_url:
            body["hypervisors_links"] = [{"rel": "next", "href": next_url}]
        return Response(body)


def attach_servers(hypervisors, nodes):
    servers = {}
    for name, instance_id, node_id in Instance.objects.filter(node__in=nodes, deleted=False).values_list(
            "name", "id", "node_id"):
        servers.setdefault(node_id, []).append({"name": name, "uuid": str(instance_id)})
    for body, node in zip(hypervisors, nodes):
        if node.id in servers:
            body["servers"] = servers[node.id]


class HypervisorDetailListView(HypervisorListView):
    detail = True


class HypervisorView(ComputeView):
    policy = {"get": "admin"}

    def get(self, request, hypervisor_id):
        node = by_uuid(ComputeNode, hypervisor_id, "Hypervisor")
        body = hypervisor_detail(request, node, compute_services().get(node.host))
        if request.api_version >= (2, 53) and require_bool(request.query_params.get("with_servers", "false"),
                                                       "with_servers"):
            attach_servers([body], [node])
        return Response({"hypervisor": body})


class HypervisorStatisticsView(ComputeView):
    policy = {"get": "admin"}

    def get(self, request):
        totals = ComputeNode.objects.aggregate(
            count=Count("id"), vcpus=Sum("vcpus"), memory_mb=Sum("memory_mb"), local_gb=Sum("local_gb"),
            vcpus_used=Sum("vcpus_used"), memory_mb_used=Sum("memory_mb_used"),
            local_gb_used=Sum("local_gb_used"), running_vms=Sum("running_vms"))
        totals = {key: value or 0 for key, value in totals.items()}
        workload = Instance.objects.filter(deleted=False, task_state__isnull=False, node__isnull=False).count()
        totals.update({"free_ram_mb": totals["memory_mb"] - totals["memory_mb_used"],
                       "free_disk_gb": totals["local_gb"] - totals["local_gb_used"],
                       "disk_available_least": totals["local_gb"] - totals["local_gb_used"],
                       "current_workload": workload})
        return Response({"hypervisor_statistics": totals})


class AvailabilityZoneView(ComputeView):
    policy = {"get": "reader"}
    detail = False

    def get(self, request):
        if self.detail and not request.auth.is_admin:
            raise NotFound("The resource could not be found.")
        zones = {}
        alive = alive_since()
        for node in ComputeNode.objects.all():
            zone = zones.setdefault(node.availability_zone, {"available": False, "hosts": {}})
            up = not node.disabled and node.heartbeat_at is not None and node.heartbeat_at >= alive
            zone["available"] |= up
            zone["hosts"][node.host] = {Service.COMPUTE_BINARY: {"available": up, "active": not node.disabled,
                                                         "updated_at": nova_time(node.heartbeat_at)}}
        info = [{"zoneName": name, "zoneState": {"available": zone["available"]},
                 "hosts": zone["hosts"] if self.detail else None} for name, zone in sorted(zones.items())]
        if self.detail:
            internal = {}
            for service in Service.objects.exclude(binary=Service.COMPUTE_BINARY):
                internal.setdefault(service.host, {})[service.binary] = {
                    "available": service.is_up, "active": not service.disabled,
                    "updated_at": nova_time(service.last_seen_up)}
            if internal:
                info.append({"zoneName": "internal", "zoneState": {"available": True}, "hosts": internal})
        return Response({"availabilityZoneInfo": info})


class AvailabilityZoneDetailView(AvailabilityZoneView):
    policy = {"get": "admin"}
    detail = True


def uptime_text(booted_at, load_average, now):
    """The host's uptime as the `uptime` command prints it (what Nova's
    libvirt driver returns and the CLI parses), from the boot time and load
    the node reports; nodes do not count logged-in users: 0."""
    seconds = max(int((now - booted_at).total_seconds()), 0)
    days, seconds = divmod(seconds, 86400)
    hours, minutes = divmod(seconds // 60, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts.append(f"{hours:2d}:{minutes:02d}" if hours else f"{minutes} min")
    return f" {now:%H:%M:%S} up {', '.join(parts)},  0 users,  load average: {load_average or '0.00, 0.00, 0.00'}"


class HypervisorUptimeView(ComputeView):
    """The host's uptime from the boot time its agent reports on each
    heartbeat. A node that never reported one answers 501, as Nova does
    for a driver without uptime (the CLI then shows the hypervisor
    without it)."""

    policy = {"get": "admin"}

    def get(self, request, hypervisor_id):
        node = by_uuid(ComputeNode, hypervisor_id, "Hypervisor")
        if node.booted_at is None:
            raise ApiError("Hypervisor uptime is not reported by this compute node.", status=501)
        body = hypervisor_summary(request, node, compute_services().get(node.host))
        body["uptime"] = uptime_text(node.booted_at, node.load_average, timezone.now())
        return Response({"hypervisor": body})


class OsHostsView(ProxyView):
    """Nova's os-hosts (below 2.43, where os-services and os-hypervisors
    replace it): every service's host, with its zone."""

    removed_in = (2, 43)
    policy = {"get": "admin"}

    def get(self, request):
        zone = request.query_params.get("zone")
        hosts = []
        for service in Service.objects.order_by("host", "binary"):
            service_zone = service.availability_zone if service.binary == Service.COMPUTE_BINARY else "internal"
            if zone is None or zone == service_zone:
                hosts.append({"host_name": service.host, "service": service.binary.split("-", 1)[-1],
                              "zone": service_zone})
        return Response({"hosts": hosts})


class OsHostView(ProxyView):
    """GET /os-hosts/{host}: the compute host's capacity, what it uses now,
    what its servers ask for at most, and that per project. Enabling,
    maintenance and power actions are Nova's libvirt answer: 501."""

    removed_in = (2, 43)
    policy = {"get": "admin", "put": "admin"}

    def get(self, request, host_name, host_action=None):
        if host_action is not None:
            return self.not_implemented(host_action)
        node = ComputeNode.objects.filter(host=host_name).first()
        if node is None:
            raise NotFound(f"Compute host {host_name} could not be found.")

        def resource(project, cpu, memory_mb, disk_gb):
            return {"resource": {"host": host_name, "project": project, "cpu": cpu or 0,
                                 "memory_mb": memory_mb or 0, "disk_gb": disk_gb or 0}}

        usage = Instance.objects.filter(host=host_name, deleted=False).values("project_id").annotate(
            cpu=Sum("vcpus"), memory_mb=Sum("memory_mb"), disk_gb=Sum("root_gb") + Sum("ephemeral_gb"))
        usage = sorted(usage, key=lambda row: row["project_id"])
        body = [resource("(total)", node.vcpus, node.memory_mb, node.local_gb),
                resource("(used_now)", node.vcpus_used, node.memory_mb_used, node.local_gb_used),
                resource("(used_max)", *(sum(row[key] or 0 for row in usage)
                                         for key in ("cpu", "memory_mb", "disk_gb")))]
        body += [resource(row["project_id"], row["cpu"], row["memory_mb"], row["disk_gb"]) for row in usage]
        return Response({"host": body})

    def put(self, request, host_name, host_action=None):
        if host_action is not None:
            # Nova's power actions are GETs; their paths take no update.
            self.http_method_not_allowed(request)
        data = request.data if isinstance(request.data, dict) else None
        if not data or not set(data) <= {"status", "maintenance_mode"}:
            raise BadRequest("Invalid input for field 'host': give status and/or maintenance_mode.")
        for field, value in data.items():
            if value not in ("enable", "disable"):
                raise BadRequest(f"Invalid input for field '{field}': must be 'enable' or 'disable'.")
        if not ComputeNode.objects.filter(host=host_name).exists():
            raise NotFound(f"Compute host {host_name} could not be found.")
        return self.not_implemented("update")

    @staticmethod
    def not_implemented(what):
        # os-services disables a host; the libvirt driver answers these with NotImplemented in Nova too.
        raise ApiError(f"os-hosts {what} is not implemented by this cloud's hypervisor driver "
                       f"(use os-services to enable or disable a host).", status=501)
