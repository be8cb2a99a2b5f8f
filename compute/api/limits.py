"""Absolute limits of the caller's project, and quota sets (admin writes)."""
from django.db import transaction
from rest_framework.response import Response

from cloud.errors import BadRequest, Forbidden
from compute import quotas
from compute.api.base import ComputeView, require_int
from compute.models import QuotaClass
from identity.models import Project
from network import conf as network_conf
from network import quotas as network_quotas

# Below 2.36 Nova still shows the network quotas, which are Neutron's: its
# name for each, and Neutron's (fixed IPs have no limit of their own).
NETWORK_QUOTAS = {"floating_ips": "floatingip", "security_groups": "security_group",
                  "security_group_rules": "security_group_rule"}
BEFORE_NETWORK_PROXY_REMOVAL = (2, 36)


def network_limits(project_id):
    limits = network_quotas.limits_of(project_id)
    return {"fixed_ips": -1, **{nova: limits[neutron] for nova, neutron in NETWORK_QUOTAS.items()}}


def network_usage(project_id):
    return {"fixed_ips": 0, **{nova: network_quotas.usage_of(project_id, neutron)
                               for nova, neutron in NETWORK_QUOTAS.items()}}


def check_project(project_id):
    """Quotas are set for projects that exist, as Nova checks with Keystone
    (an id that could never be a project used to reach the database)."""
    if not Project.objects.filter(pk=project_id).exists():
        raise BadRequest(f"Project ID {project_id} is not a valid project.")


class LimitsView(ComputeView):
    policy = {"get": "reader"}

    def get(self, request):
        project_id = request.query_params.get("tenant_id") if request.auth.is_admin else None
        project_id = project_id or request.auth.project_id
        limits = quotas.limits_of(project_id)
        used = quotas.usage_of(project_id)
        absolute = {
            "maxTotalInstances": limits["instances"], "maxTotalCores": limits["cores"],
            "maxTotalRAMSize": limits["ram"], "maxServerMeta": limits["metadata_items"],
            "maxTotalKeypairs": limits["key_pairs"], "maxServerGroups": limits["server_groups"],
            "maxServerGroupMembers": limits["server_group_members"],
            "totalInstancesUsed": used["instances"], "totalCoresUsed": used["cores"],
            "totalRAMUsed": used["ram"], "totalServerGroupsUsed": used["server_groups"],
        }
        if request.api_version < (2, 39):
            absolute["maxImageMeta"] = limits["metadata_items"]
        if request.api_version < (2, 57):
            absolute.update({"maxPersonality": limits["injected_files"],
                             "maxPersonalitySize": limits["injected_file_content_bytes"]})
        if request.api_version < BEFORE_NETWORK_PROXY_REMOVAL:
            network, network_used = network_limits(project_id), network_usage(project_id)
            absolute.update({
                "maxTotalFloatingIps": network["floating_ips"], "maxSecurityGroups": network["security_groups"],
                "maxSecurityGroupRules": network["security_group_rules"],
                "totalFloatingIpsUsed": network_used["floating_ips"],
                "totalSecurityGroupsUsed": network_used["security_groups"]})
        return Response({"limits": {"rate": [], "absolute": absolute}})


def quota_resources(request):
    if request.api_version >= (2, 57):
        return quotas.QUOTA_SET_RESOURCES
    return quotas.QUOTA_SET_RESOURCES + ("injected_files", "injected_file_content_bytes",
                                         "injected_file_path_bytes")


def check_project_access(request, project_id):
    if not request.auth.is_admin and project_id != request.auth.project_id:
        raise Forbidden("Policy doesn't allow os_compute_api:os-quota-sets:show to be performed.")


class QuotaSetView(ComputeView):
    policy = {"get": "reader", "put": "admin", "delete": "admin"}
    detail = False

    def get(self, request, project_id):
        check_project_access(request, project_id)
        limits = quotas.limits_of(project_id)
        body = {"id": project_id}
        if self.detail:
            used = quotas.usage_of(project_id)
            for resource in quota_resources(request):
                body[resource] = {"limit": limits[resource], "in_use": used.get(resource, 0), "reserved": 0}
            if request.api_version < BEFORE_NETWORK_PROXY_REMOVAL:
                network, network_used = network_limits(project_id), network_usage(project_id)
                body.update({resource: {"limit": limit, "in_use": network_used[resource], "reserved": 0}
                             for resource, limit in network.items()})
        else:
            body.update({resource: limits[resource] for resource in quota_resources(request)})
            if request.api_version < BEFORE_NETWORK_PROXY_REMOVAL:
                body.update(network_limits(project_id))
        return Response({"quota_set": body})

    def put(self, request, project_id):
        data = self.body("quota_set")
        check_project(project_id)
        allowed = quota_resources(request)
        values = {}
        for key, value in data.items():
            if key == "force":
                continue
            if key not in allowed:
                raise BadRequest(f"Invalid input for field 'quota_set': unknown quota {key!r}.")
            values[key] = require_int(value, key, minimum=-1)
        force = str(data.get("force", "false")).lower() == "true"
        with transaction.atomic():
            if not force:
                quotas.lock_project(project_id)
                used = quotas.usage_of(project_id)
                for key, value in values.items():
                    if value >= 0 and used.get(key, 0) > value:
                        raise BadRequest(f"Quota limit {value} for {key} must be greater than or equal to "
                                         f"already used and reserved {used[key]}.")
            quotas.set_limits(project_id, values)
        limits = quotas.limits_of(project_id)
        body = {resource: limits[resource] for resource in allowed}
        if request.api_version < BEFORE_NETWORK_PROXY_REMOVAL:
            body.update(network_limits(project_id))  # shown, but set through the network API
        return Response({"quota_set": body})

    def delete(self, request, project_id):
        quotas.reset_limits(project_id)
        return Response(status=202)


class QuotaSetDetailView(QuotaSetView):
    policy = {"get": "reader"}
    detail = True


class QuotaDefaultsView(ComputeView):
    policy = {"get": "reader"}

    def get(self, request, project_id):
        body = {"id": project_id}
        defaults = quotas.class_limits()
        body.update({resource: defaults[resource] for resource in quota_resources(request)})
        if request.api_version < BEFORE_NETWORK_PROXY_REMOVAL:
            body.update({"fixed_ips": -1, **{nova: network_conf.DEFAULT_QUOTAS[neutron]
                                             for nova, neutron in NETWORK_QUOTAS.items()}})
        return Response({"quota_set": body})


# A quota class shows the network quotas below 2.50 (kept, but enforced by
# Neutron's own quotas, as in Nova), the server group ones from 2.50, the
# injected file ones below 2.57.
CLASS_NETWORK_QUOTAS = ("fixed_ips", "floating_ips", "security_groups", "security_group_rules")
CLASS_SERVER_GROUP_QUOTAS = ("server_groups", "server_group_members")
CLASS_NETWORK_REMOVAL = (2, 50)


def class_resources(request):
    """(what a quota class shows, what a PUT may set) at the request's microversion."""
    shown = quota_resources(request)
    if request.api_version < CLASS_NETWORK_REMOVAL:
        shown = tuple(name for name in shown if name not in CLASS_SERVER_GROUP_QUOTAS) + CLASS_NETWORK_QUOTAS
        return shown, shown + CLASS_SERVER_GROUP_QUOTAS
    return shown, shown


def class_network_limits(class_name):
    """The network quotas of a quota class: what an admin set, else
    Neutron's defaults (fixed IPs have no limit of their own)."""
    limits = {"fixed_ips": -1, **{nova: network_conf.DEFAULT_QUOTAS[neutron]
                                  for nova, neutron in NETWORK_QUOTAS.items()}}
    limits.update(QuotaClass.objects.filter(class_name=class_name, resource__in=CLASS_NETWORK_QUOTAS)
                  .values_list("resource", "hard_limit"))
    return limits


def quota_class_body(request, class_name):
    shown, _ = class_resources(request)
    limits = quotas.class_limits(class_name)
    if request.api_version < CLASS_NETWORK_REMOVAL:
        limits.update(class_network_limits(class_name))
    return {resource: limits[resource] for resource in shown}


def check_class_name(class_name):
    if not 1 <= len(class_name) <= 255:
        raise BadRequest("Invalid input for field 'quota_class_name': must be 1 to 255 characters long.")


class QuotaClassSetView(ComputeView):
    """os-quota-class-sets/{class}: the `default` class's limits are every
    project's defaults (those it has not set for itself), which boots,
    resizes, keypairs, server groups and metadata are checked against."""

    policy = {"get": "admin", "put": "admin"}

    def get(self, request, class_name):
        check_class_name(class_name)
        return Response({"quota_class_set": {"id": class_name, **quota_class_body(request, class_name)}})

    def put(self, request, class_name):
        check_class_name(class_name)
        data = self.body("quota_class_set")
        _, settable = class_resources(request)
        unknown = sorted(set(data) - set(settable))
        if unknown:
            raise BadRequest(f"Invalid input for field 'quota_class_set': additional properties are not allowed "
                             f"({', '.join(unknown)} unexpected).")
        values = {key: require_int(value, key, minimum=-1) for key, value in data.items()}
        with transaction.atomic():
            quotas.set_class_limits(class_name, values)
        return Response({"quota_class_set": quota_class_body(request, class_name)})
