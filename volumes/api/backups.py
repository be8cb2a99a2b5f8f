"""Backups: create (`incremental`, `force` for an in-use volume, from a
snapshot), list/detail with filters, show, update (3.9), delete, restore,
the admin actions, and export/import of a backup's record."""
import base64
import binascii
import json
from datetime import datetime, timezone

from django.db import transaction
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from cloud.errors import BadRequest, Forbidden
from cloud.policy import DENIED
from objects import client as object_store
from volumes import backups
from volumes.api.base import (
    CinderViewSet, MetadataField, body_of, cinder_time, invalid_input, is_uuid, validated,
)
from volumes.models import Backup

POLICY = {"list": "reader", "list_detail": "reader", "retrieve": "reader", "create": "member", "update": "member",
          "partial_update": "member", "destroy": "member", "restore": "member", "backup_action": "member"}
ADMIN_ACTIONS = ("os-reset_status", "os-force_delete")
# The name clients check an exported record's service by: Cinder's driver
# for backups kept in a Swift object store, as these are.
BACKUP_SERVICE = "cinder.backup.drivers.swift.SwiftBackupDriver"


class BackupCreateSerializer(serializers.Serializer):
    volume_id = serializers.CharField(max_length=64)
    container = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    name = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    description = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    incremental = serializers.BooleanField(required=False, default=False)
    force = serializers.BooleanField(required=False, default=False)
    snapshot_id = serializers.CharField(max_length=64, required=False, allow_null=True)
    metadata = MetadataField(required=False, allow_null=True)
    availability_zone = serializers.CharField(max_length=255, required=False, allow_null=True)

    def validate_container(self, value):
        # An object store container name, as Swift takes it.
        if value and "/" in value:
            raise serializers.ValidationError("A container name may not contain '/'.")
        return value


class BackupViewSet(CinderViewSet):
    queryset = backups.with_dependents(Backup.objects.all())
    kind, member_name, collection_name = "Backup", "backup", "backups"
    policy = POLICY
    filters = {"name": "name", "status": "status",
               "volume_id": ("volume_id", lambda value, field: value if is_uuid(value) else None)}
    sort_keys = {"size": "size"}

    def render(self, backup):
        body = {"id": str(backup.id), "name": backup.name, "description": backup.description,
                "status": backup.status, "object_count": backup.object_count, "container": backup.container,
                "availability_zone": backup.availability_zone, "created_at": cinder_time(backup.created_at),
                "updated_at": cinder_time(backup.updated_at), "has_dependent_backups": backup.has_dependents,
                "volume_id": str(backup.volume_id), "fail_reason": backup.fail_reason, "size": backup.size,
                "is_incremental": backup.is_incremental, "data_timestamp": cinder_time(backup.data_timestamp),
                "snapshot_id": str(backup.snapshot_id) if backup.snapshot_id else None,
                "links": self.link("backups", backup.id)}
        if self.request.api_version >= (3, 18) and self.caller.is_admin:
            body["os-backup-project-attr:project_id"] = backup.project_id
        if self.request.api_version >= (3, 43):
            body["metadata"] = backup.metadata
        return body

    def brief(self, backup, status_code=status.HTTP_200_OK):
        """What create and update answer: the id, name and links (and the metadata from 3.43)."""
        body = {"id": str(backup.id), "name": backup.name, "links": self.link("backups", backup.id)}
        if self.request.api_version >= (3, 43):
            body["metadata"] = backup.metadata
        return Response({"backup": body}, status=status_code)

    def create(self, request, *args, **kwargs):
        values = validated(BackupCreateSerializer, body_of(request, "backup"))
        metadata = values.get("metadata")
        if metadata and self.request.api_version < (3, 43):
            raise invalid_input("metadata on a backup needs microversion 3.43 or later.")
        backup = backups.create(self.caller, values["volume_id"], name=values.get("name"),
                                description=values.get("description"), container=values.get("container"),
                                incremental=values["incremental"], force=values["force"],
                                snapshot_id=values.get("snapshot_id"), metadata=metadata)
        return self.brief(backup, status.HTTP_202_ACCEPTED)

    def update(self, request, *args, **kwargs):
        self.needs_version((3, 9), "Updating a backup")
        backup = self.writable(self.get_object())
        body = body_of(request, "backup")
        fields = {}
        for wire in ("name", "description"):
            if wire in body:
                if body[wire] is not None and (not isinstance(body[wire], str) or len(body[wire]) > 255):
                    raise invalid_input(f"{wire} must be a string of at most 255 characters.")
                fields[wire] = body[wire]
        if "metadata" in body:
            if self.request.api_version < (3, 43):
                raise invalid_input("metadata on a backup needs microversion 3.43 or later.")
            fields["metadata"] = MetadataField().to_internal_value(body["metadata"])
        unknown = set(body) - {"name", "description", "metadata"}
        if unknown:
            raise invalid_input(f"Additional properties are not allowed ({', '.join(sorted(unknown))}).")
        Backup.objects.filter(pk=backup.pk).update(**fields)
        return self.brief(self.get_object())

    partial_update = update

    def destroy(self, request, *args, **kwargs):
        backups.delete(self.writable(self.get_object()))
        return Response(status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"], url_path="restore")
    def restore(self, request, *args, **kwargs):
        backup = self.writable(self.get_object())
        body = request.data.get("restore") if isinstance(request.data, dict) else None
        if not isinstance(body, dict):
            raise BadRequest("Invalid input for field 'restore': the request body must be {\"restore\": {...}}.")
        volume_id, name = body.get("volume_id"), body.get("name")
        if volume_id is not None and not isinstance(volume_id, str):
            raise invalid_input("volume_id must be a string.")
        if name is not None and (not isinstance(name, str) or len(name) > 255):
            raise invalid_input("name must be a string of at most 255 characters.")
        if volume_id and name:
            raise invalid_input("name cannot be given with volume_id: the volume keeps its own name.")
        volume = backups.restore(self.caller, backup, volume_id=volume_id, name=name)
        return Response({"restore": {"backup_id": str(backup.id), "volume_id": str(volume.id),
                                     "volume_name": volume.name or ""}}, status=status.HTTP_202_ACCEPTED)

    # --- POST /backups/{id}/action: the admin actions

    @action(detail=True, methods=["post"], url_path="action")
    def backup_action(self, request, *args, **kwargs):
        if not isinstance(request.data, dict) or len(request.data) != 1:
            raise BadRequest("Invalid input: the body must name exactly one action.")
        name, body = next(iter(request.data.items()))
        if name not in ADMIN_ACTIONS:
            raise BadRequest(f"There is no such action: {name}")
        backup = self.writable(self.get_object())
        if not self.caller.is_admin:
            raise Forbidden(DENIED)
        if name == "os-force_delete":
            backups.delete(backup, force=True)
            return Response(status=status.HTTP_202_ACCEPTED)
        wanted = body.get("status") if isinstance(body, dict) else None
        if wanted not in (Backup.Status.AVAILABLE, Backup.Status.ERROR):
            raise invalid_input(f"Must specify a valid status: available or error ({wanted!r} is not one).")
        Backup.objects.filter(pk=backup.pk).update(status=wanted)
        return Response(status=status.HTTP_202_ACCEPTED)

    # --- export and import of a backup's record (admins)

    @action(detail=True, methods=["get"], url_path="export_record")
    def export_record(self, request, *args, **kwargs):
        backup = self.get_object()
        if backup.status != Backup.Status.AVAILABLE:
            raise BadRequest(f"Invalid backup: Backup status must be available, but the current status is "
                             f"\"{backup.status}\".")
        record = {"id": str(backup.id), "project_id": backup.project_id, "user_id": backup.user_id,
                  "volume_id": str(backup.volume_id), "name": backup.name, "description": backup.description,
                  "container": backup.container, "object_prefix": backup.object_prefix, "size": backup.size,
                  "object_count": backup.object_count,
                  "availability_zone": backup.availability_zone, "metadata": backup.metadata,
                  "parent_id": str(backup.parent_id) if backup.parent_id else None,
                  "data_timestamp": cinder_time(backup.data_timestamp)}
        url = base64.b64encode(json.dumps(record).encode()).decode()
        return Response({"backup-record": {"backup_service": BACKUP_SERVICE, "backup_url": url}})

    @action(detail=False, methods=["post"], url_path="import_record")
    def import_record(self, request, *args, **kwargs):
        body = request.data.get("backup-record") if isinstance(request.data, dict) else None
        if not isinstance(body, dict) or not isinstance(body.get("backup_url"), str) or \
                not isinstance(body.get("backup_service"), str):
            raise BadRequest("Invalid input for field 'backup-record': it needs backup_service and backup_url.")
        if body["backup_service"] != BACKUP_SERVICE:
            raise BadRequest(f"Unsupported backup service {body['backup_service']!r}: this cloud's is "
                             f"{BACKUP_SERVICE}.")
        try:
            record = json.loads(base64.b64decode(body["backup_url"], validate=True))
            fields = {"id": record["id"], "project_id": str(record["project_id"]),
                      "user_id": str(record["user_id"]), "volume_id": record["volume_id"],
                      "name": record.get("name"), "description": record.get("description"),
                      "container": str(record["container"]), "object_prefix": str(record["object_prefix"]),
                      "size": int(record["size"]),
                      "object_count": int(record.get("object_count") or 0),
                      "availability_zone": record.get("availability_zone"),
                      "metadata": record.get("metadata") or {}}
            if record.get("data_timestamp"):
                fields["data_timestamp"] = datetime.strptime(record["data_timestamp"], "%Y-%m-%dT%H:%M:%S.%f") \
                    .replace(tzinfo=timezone.utc)
            parent_id = record.get("parent_id")
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise BadRequest("Invalid input for field 'backup_url': it is not a record this cloud exported.") \
                from None
        if not all(is_uuid(value) for value in (fields["id"], fields["volume_id"])) or \
                (parent_id and not is_uuid(parent_id)):
            raise BadRequest("Invalid input for field 'backup_url': it is not a record this cloud exported.")
        with transaction.atomic():
            if Backup.objects.filter(pk=fields["id"]).exists():
                raise BadRequest(f"Invalid backup: Backup {fields['id']} already exists.")
            if parent_id and not Backup.objects.filter(pk=parent_id).exists():
                raise BadRequest(f"Invalid backup: its parent backup {parent_id} is not in this cloud.")
            backup = Backup(parent_id=parent_id, status=Backup.Status.CREATING, **fields)
            try:
                object_store.open_object(backup.project_id, backup.container,
                                         backup.object_prefix + backups.MANIFEST).close()
            except object_store.ObjectStoreError:
                raise BadRequest(f"Invalid backup: the data of backup {backup.pk} is not in the object store.") \
                    from None
            backup.status = Backup.Status.AVAILABLE
            backup.save(force_insert=True)
        return Response({"backup": {"id": str(backup.id), "name": backup.name,
                                    "links": self.link("backups", backup.id)}}, status=status.HTTP_201_CREATED)
