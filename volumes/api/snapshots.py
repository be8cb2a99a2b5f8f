"""Snapshots: create (`force` for an in-use volume), list/detail with
filters, show, update, delete, metadata."""
from django.db import transaction
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from cloud.errors import BadRequest, Forbidden, NotFound
from cloud.policy import DENIED
from volumes import dispatch, lifecycle
from volumes.api.base import (
    CinderViewSet, MetadataField, body_of, cinder_time, invalid_input, is_uuid, metadata_value,
    validated,
)
from volumes.models import Snapshot
from volumes.tasks import forget_snapshot

POLICY = {"list": "reader", "list_detail": "reader", "retrieve": "reader", "create": "member", "update": "member",
          "partial_update": "member", "destroy": "member", "metadata": "member", "metadata_item": "member",
          "snapshot_action": "member"}
ADMIN_ACTIONS = ("os-reset_status", "os-force_delete")
# Cinder's update_snapshot_status: from which status to which.
STATUS_UPDATES = {Snapshot.Status.CREATING: (Snapshot.Status.CREATING, Snapshot.Status.AVAILABLE, Snapshot.Status.ERROR),
                  Snapshot.Status.DELETING: (Snapshot.Status.DELETING, Snapshot.Status.ERROR_DELETING)}


class SnapshotCreateSerializer(serializers.Serializer):
    volume_id = serializers.CharField(max_length=64, required=False, allow_null=True)
    force = serializers.BooleanField(required=False, default=False)
    name = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    description = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    display_name = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    display_description = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    metadata = MetadataField(required=False, allow_null=True)


class SnapshotViewSet(CinderViewSet):
    queryset = Snapshot.objects.select_related("volume__volume_type")
    kind, member_name, collection_name = "Snapshot", "snapshot", "snapshots"
    policy = POLICY
    filters = {"name": "name", "status": "status",
               "volume_id": ("volume_id", lambda value, field: value if is_uuid(value) else None)}
    sort_keys = {"size": "size"}

    def render(self, snapshot, extended=True):
        """Cinder's snapshot view; `extended` adds the extended snapshot
        attributes, which Cinder shows on show and detail only."""
        body = {"id": str(snapshot.id), "name": snapshot.name, "description": snapshot.description,
                "status": snapshot.status, "size": snapshot.size, "volume_id": str(snapshot.volume_id),
                "created_at": cinder_time(snapshot.created_at), "updated_at": cinder_time(snapshot.updated_at),
                "metadata": snapshot.metadata}
        if extended:
            body["os-extended-snapshot-attributes:project_id"] = snapshot.project_id
            body["os-extended-snapshot-attributes:progress"] = snapshot.progress
        if self.request.api_version >= (3, 14):
            body["group_snapshot_id"] = None
        if self.request.api_version >= (3, 41):
            body["user_id"] = snapshot.user_id
        return body

    def summary(self, snapshot):
        return self.render(snapshot, extended=False)

    def show(self, snapshot, status_code=status.HTTP_200_OK, extended=True):
        return Response({"snapshot": self.render(snapshot, extended)}, status=status_code)

    def create(self, request, *args, **kwargs):
        values = validated(SnapshotCreateSerializer, body_of(request, "snapshot"))
        snapshot = lifecycle.create_snapshot(
            self.caller, values.get("volume_id"), force=values["force"],
            name=values.get("name", values.get("display_name")),
            description=values.get("description", values.get("display_description")),
            metadata=values.get("metadata"))
        return self.show(snapshot, status.HTTP_202_ACCEPTED, extended=False)

    def update(self, request, *args, **kwargs):
        snapshot = self.writable(self.get_object())
        body = body_of(request, "snapshot")
        fields = {}
        for wire, column in (("name", "name"), ("display_name", "name"), ("description", "description"),
                             ("display_description", "description")):
            if wire in body:
                if body[wire] is not None and (not isinstance(body[wire], str) or len(body[wire]) > 255):
                    raise invalid_input(f"{wire} must be a string of at most 255 characters.")
                fields[column] = body[wire]
        Snapshot.objects.filter(pk=snapshot.pk).update(**fields)
        return self.show(self.get_object(), extended=False)

    partial_update = update

    def destroy(self, request, *args, **kwargs):
        with transaction.atomic():
            snapshot = self.writable(self.get_object(locked=True))
            if snapshot.status not in (Snapshot.Status.AVAILABLE, Snapshot.Status.ERROR):
                raise BadRequest(f"Invalid snapshot: Volume Snapshot status must be available or error, but current "
                                 f"status is: {snapshot.status}.")
            if snapshot.backend_id is None:
                forget_snapshot(snapshot)
            else:
                snapshot.set_status(Snapshot.Status.DELETING)
                dispatch.to_backend(dispatch.DELETE_SNAPSHOT, snapshot.backend.host, snapshot.pk)
        return Response(status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["get", "post", "put"], url_path="metadata")
    def metadata(self, request, *args, **kwargs):
        snapshot = self.get_object()
        if request.method == "GET":
            return Response({"metadata": snapshot.metadata})
        self.writable(snapshot)
        given = metadata_value(request.data.get("metadata") if isinstance(request.data, dict) else None)
        with transaction.atomic():
            snapshot = self.get_object(locked=True)
            metadata = given if request.method == "PUT" else {**snapshot.metadata, **given}
            Snapshot.objects.filter(pk=snapshot.pk).update(metadata=metadata)
        return Response({"metadata": metadata})

    @action(detail=True, methods=["get", "put", "delete"], url_path=r"metadata/(?P<key>[^/]+)")
    def metadata_item(self, request, key=None, *args, **kwargs):
        snapshot = self.get_object()
        if request.method != "PUT" and key not in snapshot.metadata:
            raise NotFound(f"Snapshot {snapshot.pk} has no metadata with key {key}.")
        if request.method == "GET":
            return Response({"meta": {key: snapshot.metadata[key]}})
        self.writable(snapshot)
        with transaction.atomic():
            snapshot = self.get_object(locked=True)
            metadata = dict(snapshot.metadata)
            if request.method == "DELETE":
                metadata.pop(key, None)
                Snapshot.objects.filter(pk=snapshot.pk).update(metadata=metadata)
                return Response(status=status.HTTP_200_OK)
            meta = metadata_value(request.data.get("meta") if isinstance(request.data, dict) else None, "meta")
            if list(meta) != [key]:
                raise BadRequest("Request body and URI mismatch")
            metadata.update(meta)
            Snapshot.objects.filter(pk=snapshot.pk).update(metadata=metadata)
        return Response({"meta": meta})

    # --- POST /snapshots/{id}/action: Cinder's admin actions on snapshots

    @action(detail=True, methods=["post"], url_path="action")
    def snapshot_action(self, request, *args, **kwargs):
        if not isinstance(request.data, dict) or len(request.data) != 1:
            raise BadRequest("Invalid input: the body must name exactly one action.")
        name, body = next(iter(request.data.items()))
        handler = SNAPSHOT_ACTIONS.get(name)
        if handler is None:
            raise BadRequest(f"There is no such action: {name}")
        snapshot = self.writable(self.get_object())
        # Cinder lets the owner update a snapshot's status (Nova's assisted
        # snapshots do); resetting it and forcing a delete are the admin's.
        if name in ADMIN_ACTIONS and not self.caller.is_admin:
            raise Forbidden(DENIED)
        return handler(self, snapshot, body if isinstance(body, dict) else {})

    def reset_status(self, snapshot, body):
        wanted = body.get("status")
        if wanted not in Snapshot.Status.values:
            raise invalid_input(f"Must specify a valid status ({wanted!r} is not one).")
        Snapshot.objects.filter(pk=snapshot.pk).update(status=wanted)
        return Response(status=status.HTTP_202_ACCEPTED)

    def update_status(self, snapshot, body):
        wanted = body.get("status")
        if not isinstance(wanted, str):
            raise invalid_input("os-update_snapshot_status needs status.")
        progress = body.get("progress")
        if progress is not None and (not isinstance(progress, str) or len(progress) > 8):
            raise invalid_input(f"progress must be a string such as '80%', not {progress!r}.")
        with transaction.atomic():
            snapshot = self.get_object(locked=True)
            if snapshot.status not in STATUS_UPDATES:
                raise BadRequest(f"Snapshot status {snapshot.status} not allowed for update_snapshot_status")
            if wanted not in STATUS_UPDATES[snapshot.status]:
                raise BadRequest(f"Provided snapshot status {wanted} not allowed for snapshot with status "
                                 f"{snapshot.status}.")
            fields = {"progress": progress} if progress else {}
            snapshot.set_status(wanted, **fields)
        return Response(status=status.HTTP_202_ACCEPTED)

    def force_delete(self, snapshot, body):
        """Whatever the status: a create still running finds the row gone
        from `creating` and drops what it made."""
        with transaction.atomic():
            snapshot = self.get_object(locked=True)
            if snapshot.backend_id is None:
                forget_snapshot(snapshot)
            else:
                snapshot.set_status(Snapshot.Status.DELETING)
                dispatch.to_backend(dispatch.DELETE_SNAPSHOT, snapshot.backend.host, snapshot.pk)
        return Response(status=status.HTTP_202_ACCEPTED)


SNAPSHOT_ACTIONS = {"os-reset_status": SnapshotViewSet.reset_status, "os-force_delete": SnapshotViewSet.force_delete,
                    "os-update_snapshot_status": SnapshotViewSet.update_status}
