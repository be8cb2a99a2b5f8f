"""Quota sets and quota classes, limits, availability zones, services and
hosts, pools (with their capacities), user messages and attachments."""
from django.db import transaction
from django.db.models import Count, Sum
from rest_framework import status
from rest_framework.response import Response

from cloud.errors import BadRequest, NotFound
from cloud.pagination import paginate, parse_sort
from volumes import attachments, conf, quotas
from volumes.api.base import CinderView, as_bool, body_of, cinder_time, is_uuid
from volumes.models import Attachment, Backend, Message, Snapshot, Volume

MAX_LIMIT = 2**31 - 1
PROJECT_ID_LENGTH = 64


def own_or_admin(request, view):
    return view.kwargs.get("target_project_id") == request.auth.project_id


class QuotaSetView(CinderView):
    policy = {"get": own_or_admin, "put": "admin", "delete": "admin"}

    def get(self, request, project_id, target_project_id):
        limits = quotas.limits_of(target_project_id)
        body = {"id": target_project_id}
        if as_bool(request.query_params.get("usage", "false"), "usage"):
            used = quotas.usage_of(target_project_id)
            body.update({resource: {"limit": limit, "in_use": used.get(resource, 0), "reserved": 0, "allocated": 0}
                         for resource, limit in limits.items()})
        else:
            body.update(limits)
        return Response({"quota_set": body})

    def put(self, request, project_id, target_project_id):
        if len(target_project_id) > PROJECT_ID_LENGTH:
            raise BadRequest(f"Invalid input received: '{target_project_id}' is longer than a project id.")
        body = dict(body_of(request, "quota_set"))
        body.pop("tenant_id", None)
        body.pop("id", None)
        known = quotas.limits_of(target_project_id)
        unknown = sorted(set(body) - set(known))
        if unknown:
            raise BadRequest(f"Bad key(s) in quota set: {', '.join(unknown)}")
        values = {}
        used = quotas.usage_of(target_project_id)
        for resource, value in body.items():
            limit = quota_limit(resource, value)
            if limit >= 0 and used.get(resource, 0) > limit and resource != "per_volume_gigabytes":
                raise BadRequest(f"Invalid input received: Quota limit {limit} for {resource} must be greater than "
                                 f"or equal to already used and reserved {used[resource]}.")
            values[resource] = limit
        with transaction.atomic():
            quotas.set_limits(target_project_id, values)
        return Response({"quota_set": quotas.limits_of(target_project_id)})

    def delete(self, request, project_id, target_project_id):
        quotas.reset_limits(target_project_id)
        return Response(status=status.HTTP_200_OK)


def quota_limit(resource, value):
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = None
    if limit is None or isinstance(value, bool) or not -1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"Invalid input received: Quota limit {value!r} for {resource} must be an integer "
                         f"of -1 or more.")
    return limit


class QuotaDefaultsView(CinderView):
    policy = {"get": own_or_admin}

    def get(self, request, project_id, target_project_id):
        return Response({"quota_set": {"id": target_project_id, **quotas.class_limits()}})


class QuotaClassSetView(CinderView):
    """os-quota-class-sets: the `default` class's limits are every
    project's defaults (those it has not set for itself)."""

    policy = {"get": "admin", "put": "admin"}

    def get(self, request, project_id, class_name):
        return Response({"quota_class_set": {"id": class_name, **quotas.class_limits(class_name)}})

    def put(self, request, project_id, class_name):
        if len(class_name) > 255:
            raise BadRequest("Invalid input received: a quota class name is at most 255 characters.")
        body = dict(body_of(request, "quota_class_set"))
        body.pop("id", None)
        known = quotas.class_limits(class_name)
        unknown = sorted(set(body) - set(known))
        if unknown:
            raise BadRequest(f"Bad key(s) in quota class set: {', '.join(unknown)}")
        values = {resource: quota_limit(resource, value) for resource, value in body.items()}
        with transaction.atomic():
            quotas.set_class_limits(class_name, values)
        return Response({"quota_class_set": quotas.class_limits(class_name)})


class LimitsView(CinderView):
    policy = {"get": "reader"}

    def get(self, request, project_id):
        limits, used = quotas.limits_of(request.auth.project_id), quotas.usage_of(request.auth.project_id)
        return Response({"limits": {"rate": [], "absolute": {
            "maxTotalVolumes": limits["volumes"], "maxTotalSnapshots": limits["snapshots"],
            "maxTotalVolumeGigabytes": limits["gigabytes"], "maxTotalBackups": limits["backups"],
            "maxTotalBackupGigabytes": limits["backup_gigabytes"], "totalVolumesUsed": used["volumes"],
            "totalSnapshotsUsed": used["snapshots"], "totalGigabytesUsed": used["gigabytes"],
            "totalBackupsUsed": used["backups"], "totalBackupGigabytesUsed": used["backup_gigabytes"]}}})


class AvailabilityZoneView(CinderView):
    policy = {"get": "reader"}

    def get(self, request, project_id):
        zones = {conf.AVAILABILITY_ZONE: False}
        for backend in Backend.objects.all():
            zones[backend.availability_zone] = zones.get(backend.availability_zone, False) or (
                backend.is_up and not backend.disabled)
        return Response({"availabilityZoneInfo": [{"zoneName": name, "zoneState": {"available": up}}
                                                  for name, up in sorted(zones.items())]})


VOLUME_BINARY = "cinder-volume"


class ServiceListView(CinderView):
    policy = {"get": "admin"}

    def get(self, request, project_id):
        services = [{"binary": VOLUME_BINARY, "host": backend.host, "zone": backend.availability_zone,
                     "status": "disabled" if backend.disabled else "enabled",
                     "state": "up" if backend.is_up else "down", "updated_at": cinder_time(backend.heartbeat_at),
                     "disabled_reason": backend.disabled_reason, "replication_status": "disabled",
                     "active_backend_id": None, "frozen": False} for backend in Backend.objects.all()]
        if request.api_version >= (3, 7):
            # Cinder shows a service's cluster from 3.7 (none here: no clustered services).
            for service in services:
                service["cluster"] = None
        if request.query_params.get("binary"):
            services = [service for service in services if service["binary"] == request.query_params["binary"]]
        host = request.query_params.get("host")
        if host:
            # As Cinder's filter: a node's name matches its back ends (node@backend).
            services = [service for service in services if service["host"] == host or
                        service["host"].startswith(f"{host}@")]
        return Response({"services": services})


# The replication actions: no back end here replicates, so none can be
# frozen or failed over (Cinder's drivers without replication refuse too).
UNSUPPORTED_SERVICE_ACTIONS = ("freeze", "thaw", "failover_host", "failover")


class ServiceActionView(CinderView):
    """PUT os-services/{enable,disable,disable-log-reason}: whether the
    volume scheduler may place new volumes on a back end (a disabled one
    keeps serving the volumes it holds), with the admin's reason."""

    policy = {"put": "admin"}

    def put(self, request, project_id, action):
        if action in UNSUPPORTED_SERVICE_ACTIONS:
            raise BadRequest(f"Invalid input received: {action} is not supported: no volume back end here "
                             f"replicates.")
        if action not in ("enable", "disable", "disable-log-reason"):
            raise BadRequest(f"Invalid input received: Unknown action {action!r}.")
        body = request.data
        if not isinstance(body, dict) or not isinstance(body.get("host"), str) or not body["host"]:
            raise BadRequest("Invalid input received: host is required.")
        binary = body.get("binary") or body.get("service")
        if not isinstance(binary, str) or not binary:
            raise BadRequest("Invalid input received: binary is required.")
        fields = {"disabled": action != "enable"}
        if action == "enable":
            fields["disabled_reason"] = None
        elif action == "disable-log-reason":
            reason = body.get("disabled_reason")
            if not isinstance(reason, str) or not reason.strip() or len(reason.strip()) > 255:
                raise BadRequest("Invalid input received: disabled_reason must be a string of 1 to 255 characters.")
            fields["disabled_reason"] = reason.strip()
        host = body["host"]
        found = Backend.objects.filter(host=host) if binary == VOLUME_BINARY else Backend.objects.none()
        if not found.update(**fields):
            raise NotFound(f"Service {binary} on host {host} could not be found.")
        return Response({**fields, "host": host, "service": body.get("service", ""), "binary": body.get("binary", ""),
                         "status": "disabled" if fields["disabled"] else "enabled"})


class HostListView(CinderView):
    """os-hosts: the volume services' hosts (each back end's worker)."""

    policy = {"get": "admin"}

    def get(self, request, project_id):
        backends = Backend.objects.order_by("host")
        if request.query_params.get("zone"):
            backends = backends.filter(availability_zone=request.query_params["zone"])
        hosts = [{"host_name": backend.host, "service": "cinder-volume", "zone": backend.availability_zone,
                  "service-status": "available" if backend.is_up else "unavailable",
                  "service-state": "disabled" if backend.disabled else "enabled",
                  "last-update": cinder_time(backend.heartbeat_at)} for backend in backends]
        service = request.query_params.get("service")
        return Response({"hosts": [host for host in hosts if not service or host["service"] == service]})


class HostView(CinderView):
    """One enabled volume host's usage: its totals, then each project's."""

    policy = {"get": "admin"}

    def get(self, request, project_id, host):
        backend = Backend.objects.filter(host=host, disabled=False).first()
        if backend is None:
            raise NotFound("Host not found")
        projects = {}
        for row in Volume.objects.filter(backend=backend).values("project_id").annotate(
                count=Count("id"), size=Sum("size")):
            projects[row["project_id"]] = {"volume_count": row["count"], "total_volume_gb": row["size"] or 0,
                                           "snapshot_count": 0, "total_snapshot_gb": 0}
        for row in Snapshot.objects.filter(backend=backend).values("project_id").annotate(
                count=Count("id"), size=Sum("size")):
            usage = projects.setdefault(row["project_id"], {"volume_count": 0, "total_volume_gb": 0})
            usage.update(snapshot_count=row["count"], total_snapshot_gb=row["size"] or 0)
        total = {key: sum(usage[key] for usage in projects.values()) for key in (
            "volume_count", "total_volume_gb", "snapshot_count", "total_snapshot_gb")}
        rows = [("(total)", total)] + sorted(projects.items())
        return Response({"host": [{"resource": {"host": host, "project": project,
                                                **{key: str(value) for key, value in usage.items()}}}
                                  for project, usage in rows]})


class PoolListView(CinderView):
    policy = {"get": "admin"}

    def get(self, request, project_id):
        detail = as_bool(request.query_params.get("detail", "false"), "detail")
        pools = []
        for backend in Backend.objects.all():
            pool = {"name": backend.pool_name}
            if detail:
                pool["capabilities"] = {
                    "pool_name": backend.backend_name, "volume_backend_name": backend.backend_name,
                    "storage_protocol": backend.driver, "driver_version": "1.0", "vendor_name": "Stratus",
                    "total_capacity_gb": backend.total_capacity_gb, "free_capacity_gb": backend.free_capacity_gb,
                    "allocated_capacity_gb": backend.allocated_capacity_gb,
                    "provisioned_capacity_gb": backend.allocated_capacity_gb,
                    "max_over_subscription_ratio": backend.max_over_subscription_ratio,
                    "thin_provisioning_support": backend.thin_provisioning,
                    "thick_provisioning_support": not backend.thin_provisioning,
                    "reserved_percentage": 0, "multiattach": True, "timestamp": cinder_time(backend.heartbeat_at),
                    "backend_state": "up" if backend.is_up else "down",
                }
            pools.append(pool)
        return Response({"pools": pools})


def render_message(request, message):
    base = f"/volume/v3/{message.project_id}/messages/{message.id}"
    return {"id": str(message.id), "message_level": message.message_level, "event_id": message.event_id,
            "user_message": message.user_message, "resource_type": message.resource_type,
            "resource_uuid": message.resource_uuid, "request_id": message.request_id,
            "created_at": cinder_time(message.created_at), "guaranteed_until": cinder_time(message.expires_at),
            "links": [{"rel": "self", "href": request.build_absolute_uri(base)}]}


class MessagesMixin:
    def messages(self, request):
        self.needs_version((3, 3), "The messages API")
        rows = Message.objects.all() if request.auth.is_admin else Message.objects.filter(
            project_id=request.auth.project_id)
        return rows


class MessageListView(MessagesMixin, CinderView):
    policy = {"get": "reader"}
    FILTERS = ("resource_uuid", "resource_type", "event_id", "message_level", "request_id")

    def get(self, request, project_id):
        rows = self.messages(request)
        for name in self.FILTERS:
            if request.query_params.get(name):
                rows = rows.filter(**{name: request.query_params[name]})
        pairs = parse_sort(request, {"created_at": "created_at", "id": "id", "event_id": "event_id",
                                     "resource_type": "resource_type"}, (("created_at", "desc"),))
        page, next_url = paginate(request, rows, pairs, marker_not_found="Marker {marker} could not be found.")
        body = {"messages": [render_message(request, message) for message in page]}
        if next_url:
            body["messages_links"] = [{"rel": "next", "href": next_url}]
        return Response(body)


class MessageView(MessagesMixin, CinderView):
    policy = {"get": "reader", "delete": "member"}

    def find(self, request, message_id):
        message = self.messages(request).filter(pk=message_id).first() if is_uuid(message_id) else None
        if message is None:
            raise NotFound(f"Message {message_id} could not be found.")
        return message

    def get(self, request, project_id, message_id):
        return Response({"message": render_message(request, self.find(request, message_id))})

    def delete(self, request, project_id, message_id):
        self.find(request, message_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- attachments (3.27+)

def render_attachment(attachment, connection_info=None):
    return {"id": str(attachment.id), "volume_id": str(attachment.volume_id), "instance": attachment.instance_uuid,
            "status": attachment.status, "attach_mode": attachment.attach_mode,
            "attached_at": cinder_time(attachment.attach_time), "detached_at": None,
            "connection_info": connection_info}


class AttachmentsMixin:
    def visible_attachments(self, request):
        self.needs_version((3, 27), "The attachments API")
        rows = Attachment.objects.select_related("volume")
        if not request.auth.is_admin:
            rows = rows.filter(volume__project_id=request.auth.project_id)
        return rows

    def find(self, request, attachment_id):
        found = self.visible_attachments(request).filter(pk=attachment_id).first() if is_uuid(
            attachment_id) else None
        if found is None:
            raise NotFound(f"VolumeAttachment {attachment_id} could not be found.")
        return found


class AttachmentListView(AttachmentsMixin, CinderView):
    policy = {"get": "reader", "post": "member"}

    def get(self, request, project_id, detail=False):
        rows = self.visible_attachments(request)
        for param, lookup in (("volume_id", "volume_id"), ("instance_id", "instance_uuid"), ("status", "status")):
            value = request.query_params.get(param)
            if value:
                if param == "volume_id" and not is_uuid(value):
                    rows = rows.none()
                    continue
                rows = rows.filter(**{lookup: value})
        pairs = parse_sort(request, {"created_at": "created_at", "id": "id"}, (("created_at", "desc"),))
        page, next_url = paginate(request, rows, pairs, marker_not_found="Marker {marker} could not be found.")
        body = {"attachments": [render_attachment(attachment) if detail else
                                {"id": str(attachment.id), "volume_id": str(attachment.volume_id),
                                 "instance": attachment.instance_uuid, "status": attachment.status}
                                for attachment in page]}
        if next_url:
            body["attachments_links"] = [{"rel": "next", "href": next_url}]
        return Response(body)

    def post(self, request, project_id):
        self.needs_version((3, 27), "The attachments API")
        body = body_of(request, "attachment")
        volume_id = body.get("volume_uuid")
        volumes = Volume.objects.all() if request.auth.is_admin else Volume.objects.filter(
            project_id=request.auth.project_id)
        if not isinstance(volume_id, str) or not is_uuid(volume_id) or not volumes.filter(pk=volume_id).exists():
            raise NotFound(f"Volume {volume_id} could not be found.")
        instance_uuid = body.get("instance_uuid")
        if instance_uuid is not None and (not isinstance(instance_uuid, str) or not is_uuid(instance_uuid)):
            raise BadRequest("Invalid input received: instance_uuid must be a UUID.")
        connector = body.get("connector")
        if connector is not None and not isinstance(connector, dict):
            raise BadRequest("Invalid input received: connector must be an object.")
        attachment, info = attachments.reserve(volume_id, instance_uuid, connector, body.get("mode", "rw"))
        return Response({"attachment": render_attachment(attachment, info)})


class AttachmentDetailListView(AttachmentsMixin, CinderView):
    policy = {"get": "reader"}

    def get(self, request, project_id):
        return AttachmentListView.get(self, request, project_id, detail=True)


class AttachmentView(AttachmentsMixin, CinderView):
    policy = {"get": "reader", "put": "member", "delete": "member"}

    def get(self, request, project_id, attachment_id):
        return Response({"attachment": render_attachment(self.find(request, attachment_id))})

    def put(self, request, project_id, attachment_id):
        attachment = self.find(request, attachment_id)
        body = body_of(request, "attachment")
        info = attachments.update(attachment.pk, body.get("connector"))
        attachment.refresh_from_db()
        return Response({"attachment": render_attachment(attachment, info)})

    def delete(self, request, project_id, attachment_id):
        attachment = self.find(request, attachment_id)
        attachments.detach(attachment.pk)
        return Response({"attachments": []})


class AttachmentActionView(AttachmentsMixin, CinderView):
    policy = {"post": "member"}

    def post(self, request, project_id, attachment_id):
        attachment = self.find(request, attachment_id)
        if not isinstance(request.data, dict) or "os-complete" not in request.data:
            raise BadRequest("There is no such action: attachments take os-complete.")
        self.needs_version((3, 44), "Completing an attachment")
        attachments.complete(attachment.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

