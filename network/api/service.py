"""Quotas, availability zones, service providers and IP availability."""
import ipaddress

from django.db import transaction
from django.db.models import Count
from rest_framework.response import Response

from cloud.errors import BadRequest
from cloud.views import ApiView
from network import conf, errors, quotas, topology
from network.api.base import as_uuid
from network.models import IPAllocation, Network, Quota

# What the quota table's columns hold.
MAX_LIMIT = 2**31 - 1
PROJECT_ID_LENGTH = Quota._meta.get_field("project_id").max_length


def own_or_admin(request, view):
    return view.kwargs.get("project_id") == request.auth.project_id


def checked_project_id(project_id):
    """A project id from a path, refused (400) when longer than any project id."""
    if len(project_id) > PROJECT_ID_LENGTH:
        raise BadRequest(f"Invalid input for project_id. Reason: '{project_id}' is longer than a project id.")
    return project_id


def limits_body(project_id, limits):
    return {resource: limits[resource] for resource in quotas.RESOURCES}


class QuotaListView(ApiView):
    """GET /v2.0/quotas: the projects whose quotas differ from the defaults."""

    policy = {"get": "admin"}

    def get(self, request):
        projects = Quota.objects.values_list("project_id", flat=True).distinct().order_by("project_id")
        return Response({"quotas": [{**limits_body(project_id, quotas.limits_of(project_id)),
                                     "project_id": project_id, "tenant_id": project_id}
                                    for project_id in projects]})


class QuotaView(ApiView):
    policy = {"get": own_or_admin, "put": "admin", "delete": "admin"}

    def get(self, request, project_id):
        return Response({"quota": limits_body(project_id, quotas.limits_of(project_id))})

    def put(self, request, project_id):
        checked_project_id(project_id)
        body = request.data.get("quota") if isinstance(request.data, dict) else None
        if not isinstance(body, dict):
            raise BadRequest("Invalid input for field 'quota': the request body must be {\"quota\": {...}}.")
        body = dict(body)
        # Neutron's check_limit: refuse a limit below what the project already uses.
        check_limit = body.pop("check_limit", False)
        if not isinstance(check_limit, bool):
            raise BadRequest(f"Invalid input for check_limit. Reason: '{check_limit}' is not a boolean.")
        unknown = sorted(set(body) - set(quotas.RESOURCES))
        if unknown:
            raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        limits = {}
        for resource, value in body.items():
            try:
                limit = int(value)
            except (TypeError, ValueError):
                limit = None
            if limit is None or isinstance(value, bool) or not -1 <= limit <= MAX_LIMIT:
                raise BadRequest(f"Invalid input for {resource}. Reason: '{value}' is not an integer greater "
                                 f"than or equal to -1.")
            if check_limit and limit >= 0 and quotas.usage_of(project_id, resource) > limit:
                raise BadRequest(f"Quota limit {limit} for {resource} must be greater than or equal to already "
                                 f"used {quotas.usage_of(project_id, resource)}")
            limits[resource] = limit
        with transaction.atomic():
            quotas.set_limits(project_id, limits)
        return Response({"quota": limits_body(project_id, quotas.limits_of(project_id))})

    def delete(self, request, project_id):
        quotas.reset(project_id)
        return Response(status=204)


class QuotaDefaultView(ApiView):
    policy = {"get": own_or_admin}

    def get(self, request, project_id):
        return Response({"quota": dict(conf.DEFAULT_QUOTAS)})


class QuotaDetailsView(ApiView):
    policy = {"get": own_or_admin}

    def get(self, request, project_id):
        limits = quotas.limits_of(project_id)
        return Response({"quota": {resource: {"limit": limits[resource], "used": quotas.usage_of(project_id, resource),
                                              "reserved": 0} for resource in quotas.RESOURCES}})


class AvailabilityZoneListView(ApiView):
    policy = {"get": "reader"}

    def get(self, request):
        zones = [{"name": conf.AVAILABILITY_ZONE, "resource": resource, "state": "available"}
                 for resource in ("network", "router")]
        for attribute in ("name", "resource", "state"):
            wanted = request.query_params.getlist(attribute)
            if wanted:
                zones = [zone for zone in zones if zone[attribute] in wanted]
        return Response({"availability_zones": zones})


class ServiceProviderListView(ApiView):
    """service-type: the one provider of each advanced service there is
    (routers, by the node agent's router namespaces)."""
    policy = {"get": "reader"}
    PROVIDERS = [{"service_type": "L3_ROUTER_NAT", "name": "stratus", "default": True}]

    def get(self, request):
        providers = self.PROVIDERS
        for attribute in ("service_type", "name"):
            wanted = request.query_params.getlist(attribute)
            if wanted:
                providers = [provider for provider in providers if provider[attribute] in wanted]
        return Response({"service_providers": providers})


def pool_size(subnet):
    return sum(end - start + 1 for start, end in
               ((int(ipaddress.ip_address(p["start"])), int(ipaddress.ip_address(p["end"])))
                for p in subnet.allocation_pools))


class IpAvailabilityMixin:
    def availabilities(self, networks):
        networks = list(networks.prefetch_related("subnets"))
        used = dict(IPAllocation.objects.filter(subnet__network__in=networks).values("subnet_id")
                    .annotate(count=Count("id")).values_list("subnet_id", "count"))
        result = []
        for network in networks:
            subnets = [{"subnet_id": str(subnet.id), "subnet_name": subnet.name, "cidr": subnet.cidr,
                        "ip_version": subnet.ip_version, "total_ips": pool_size(subnet),
                        "used_ips": used.get(subnet.id, 0)} for subnet in network.subnets.all()]
            result.append({"network_id": str(network.id), "network_name": network.name,
                           "project_id": network.project_id, "tenant_id": network.project_id,
                           "total_ips": sum(s["total_ips"] for s in subnets),
                           "used_ips": sum(s["used_ips"] for s in subnets), "subnet_ip_availability": subnets})
        return result


class IpAvailabilityListView(IpAvailabilityMixin, ApiView):
    """Admin-only, as in Neutron's policy."""

    policy = {"get": "admin"}
    FILTERS = {"network_id": "id", "network_name": "name", "project_id": "project_id", "tenant_id": "project_id"}

    def get(self, request):
        networks = Network.objects.order_by("created_at", "id")
        for param, lookup in self.FILTERS.items():
            values = request.query_params.getlist(param)
            if values:
                if lookup == "id":
                    values = [value for value in values if _is_uuid(value)]
                networks = networks.filter(**{f"{lookup}__in": values})
        if request.query_params.get("ip_version") not in (None, "4"):
            networks = networks.none()
        return Response({"network_ip_availabilities": self.availabilities(networks)})


class IpAvailabilityView(IpAvailabilityMixin, ApiView):
    policy = {"get": "admin"}

    def get(self, request, network_id):
        networks = Network.objects.filter(pk=network_id) if _is_uuid(network_id) else Network.objects.none()
        found = self.availabilities(networks)
        if not found:
            raise errors.not_found("Network", network_id)
        return Response({"network_ip_availability": found[0]})


def _is_uuid(value):
    return as_uuid(value, "network_id") is not None



class AutoAllocatedTopologyView(ApiView):
    """GET /v2.0/auto-allocated-topology/{project}: the project's network,
    made (with subnet and router) on first use; `fields=dry-run` only
    checks that it could be. DELETE removes it."""

    policy = {"get": own_or_admin, "delete": own_or_admin}

    def get(self, request, project_id):
        checked_project_id(project_id)
        if "dry-run" in request.query_params.getlist("fields"):
            if topology.existing(project_id) is None:
                topology.check_requirements()
            return Response({"auto_allocated_topology": {"dry-run": "dry-run=pass"}})
        network = topology.get_or_create(project_id)
        return Response({"auto_allocated_topology": {"id": str(network.pk), "tenant_id": project_id,
                                                     "project_id": project_id}})

    def delete(self, request, project_id):
        topology.delete(checked_project_id(project_id))
        return Response(status=204)
