"""Volumes: create (empty, from an image, a snapshot or another volume),
list/detail with Cinder's filters, show, update, delete (with `cascade`),
metadata, and the actions of POST /volumes/{id}/action."""
from django.db import transaction
from django.db.models import Count, Sum
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from cloud.errors import BadRequest, Forbidden, NotFound
from cloud.policy import DENIED
from images import from_volume
from volumes import attachments, dispatch, lifecycle, quotas
from volumes.api.base import (
    CinderViewSet, MetadataField, as_bool, body_of, cinder_time, invalid_input, metadata_value, validated,
)
from volumes.models import Attachment, Snapshot, Volume, claim_capacity

POLICY = {"list": "reader", "list_detail": "reader", "retrieve": "reader", "create": "member",
          "update": "member", "partial_update": "member", "destroy": "member", "volume_action": "member",
          "metadata": "member", "metadata_item": "member", "summary_of_volumes": "reader"}
# What a volume may be deleted from (Cinder's words list them).
DELETABLE = (Volume.Status.AVAILABLE, Volume.Status.ERROR, Volume.Status.ERROR_EXTENDING)
ADMIN_ACTIONS = ("os-reset_status", "os-force_delete", "os-force_detach")


class VolumeCreateSerializer(serializers.Serializer):
    size = serializers.IntegerField(required=False, allow_null=True)
    name = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    description = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    display_name = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    display_description = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    volume_type = serializers.CharField(max_length=255, required=False, allow_null=True)
    availability_zone = serializers.CharField(max_length=255, required=False, allow_null=True)
    metadata = MetadataField(required=False, allow_null=True)
    snapshot_id = serializers.CharField(max_length=64, required=False, allow_null=True)
    source_volid = serializers.CharField(max_length=64, required=False, allow_null=True)
    imageRef = serializers.CharField(max_length=64, required=False, allow_null=True)
    image_id = serializers.CharField(max_length=64, required=False, allow_null=True)
    multiattach = serializers.BooleanField(required=False)


class VolumeUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    description = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    display_name = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    display_description = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    metadata = MetadataField(required=False, allow_null=True)


class VolumeViewSet(CinderViewSet):
    queryset = Volume.objects.select_related("volume_type", "backend")
    kind, member_name, collection_name = "Volume", "volume", "volumes"
    policy = POLICY
    filters = {"name": "name", "status": "status", "availability_zone": "availability_zone",
               "bootable": ("bootable", as_bool), "size": ("size", lambda v, f: int(v) if v.isdigit() else None),
               "volume_type": "volume_type__name", "user_id": "user_id"}
    sort_keys = {"size": "size", "availability_zone": "availability_zone", "bootable": "bootable",
                 "volume_type": "volume_type__name", "project_id": "project_id"}

    def prefetch(self, rows):
        ids = [row.pk for row in rows]
        by_volume = {}
        for attachment in Attachment.objects.filter(volume_id__in=ids).exclude(status=Attachment.Status.DETACHED):
            by_volume.setdefault(attachment.volume_id, []).append(attachment)
        for row in rows:
            row.live_attachments = by_volume.get(row.pk, [])
        return rows

    def render(self, volume, extended=True):
        """Cinder's volume view; `extended` adds what its extensions add to
        show and detail only (not to the create and update answers)."""
        if not hasattr(volume, "live_attachments"):
            self.prefetch([volume])
        body = {
            "id": str(volume.id), "name": volume.name, "description": volume.description,
            "status": volume.status, "size": volume.size, "availability_zone": volume.availability_zone,
            "created_at": cinder_time(volume.created_at), "updated_at": cinder_time(volume.updated_at),
            "attachments": [attachments.summary(attachment) for attachment in volume.live_attachments
                            if attachment.status == Attachment.Status.ATTACHED],
            "bootable": "true" if volume.bootable else "false", "encrypted": False,
            "multiattach": volume.multiattach, "metadata": volume.metadata,
            "links": self.link("volumes", volume.id), "user_id": volume.user_id,
            "replication_status": None, "consistencygroup_id": None, "group_id": None,
            "snapshot_id": str(volume.snapshot_id) if volume.snapshot_id else None,
            "source_volid": str(volume.source_volume_id) if volume.source_volume_id else None,
            "volume_type": volume.volume_type.name,
        }
        if volume.readonly is not None:
            body["metadata"] = {**volume.metadata, "readonly": str(volume.readonly)}
        # Moving to another back end (a retype with migration) until it lands.
        migration_status = "migrating" if volume.migration_backend_id else None
        if self.caller.is_admin:
            # Cinder's volume view itself, not an extension, shows admins the migration status.
            body["provider_id"] = None
            body["migration_status"] = migration_status
        if not extended:
            return body
        body["os-vol-tenant-attr:tenant_id"] = volume.project_id
        if volume.volume_image_metadata:
            body["volume_image_metadata"] = volume.volume_image_metadata
        # Cinder's policy shows where a volume lives and how it migrates to
        # admins only (volume_host_attribute, volume_mig_status_attribute);
        # the owning project sees its tenant attribute.
        if self.caller.is_admin:
            body["os-vol-host-attr:host"] = volume.backend.pool_name if volume.backend_id else None
            body["os-vol-mig-status-attr:migstat"] = migration_status
            body["os-vol-mig-status-attr:name_id"] = None
        return body

    def show(self, volume, status_code=status.HTTP_200_OK, extended=True):
        return Response({"volume": self.render(volume, extended)}, status=status_code)

    @action(detail=False, methods=["get"], url_path="summary")
    def summary_of_volumes(self, request, *args, **kwargs):
        """GET /volumes/summary (3.12; its metadata from 3.36): the count
        and total size of the volumes the caller lists."""
        self.needs_version((3, 12), "Volume summary")
        volumes = self.filter_queryset(self.get_queryset())
        totals = volumes.aggregate(total_count=Count("id"), total_size=Sum("size"))
        body = {"total_count": totals["total_count"], "total_size": totals["total_size"] or 0}
        if request.api_version >= (3, 36):
            metadata = {}
            for row in volumes.values_list("metadata", flat=True):
                for key, value in (row or {}).items():
                    metadata.setdefault(key, set()).add(value)
            body["metadata"] = {key: sorted(values) for key, values in sorted(metadata.items())}
        return Response({"volume-summary": body})

    # --- create

    def create(self, request, *args, **kwargs):
        values = validated(VolumeCreateSerializer, body_of(request, "volume"))
        volume = lifecycle.create_volume(
            self.caller, size=values.get("size"), name=values.get("name", values.get("display_name")),
            description=values.get("description", values.get("display_description")),
            volume_type=values.get("volume_type"), availability_zone=values.get("availability_zone"),
            metadata=values.get("metadata"), snapshot_id=values.get("snapshot_id"),
            source_volid=values.get("source_volid"), image_ref=values.get("imageRef") or values.get("image_id"),
            multiattach=values.get("multiattach", False))
        volume.live_attachments = []  # a new volume: no attachment to look up
        return self.show(volume, status.HTTP_202_ACCEPTED, extended=False)

    # --- update and delete

    def update(self, request, *args, **kwargs):
        volume = self.writable(self.get_object())
        values = validated(VolumeUpdateSerializer, body_of(request, "volume"), partial=True)
        fields = {}
        for wire, column in (("name", "name"), ("display_name", "name"), ("description", "description"),
                             ("display_description", "description"), ("metadata", "metadata")):
            if wire in values:
                fields[column] = values[wire]
        Volume.objects.filter(pk=volume.pk).update(**fields)
        return self.show(self.get_object(), extended=False)

    partial_update = update

    def destroy(self, request, *args, **kwargs):
        cascade = as_bool(request.query_params.get("cascade", "false"), "cascade")
        with transaction.atomic():
            volume = self.writable(self.get_object(locked=True))
            snapshots = list(Snapshot.objects.select_for_update().filter(volume=volume))
            attached = volume.attachments.exclude(status=Attachment.Status.DETACHED).exists()
            if volume.status not in DELETABLE or attached or (snapshots and not cascade):
                raise invalid_input_volume(
                    "Volume status must be available or error or error_restoring or error_extending or "
                    "error_managing and must not be migrating, attached, belong to a group, have snapshots, "
                    "awaiting a transfer, or be disassociated from snapshots after volume transfer.")
            if cascade and any(s.status not in (Snapshot.Status.AVAILABLE, Snapshot.Status.ERROR) for s in snapshots):
                raise invalid_input_volume("Snapshot of the volume is not in a state that can be deleted.")
            lifecycle.delete_volume(volume, snapshots)
        return Response(status=status.HTTP_202_ACCEPTED)

    # --- metadata: /volumes/{id}/metadata[/{key}]

    @action(detail=True, methods=["get", "post", "put"], url_path="metadata")
    def metadata(self, request, *args, **kwargs):
        volume = self.get_object()
        if request.method == "GET":
            return Response({"metadata": volume.metadata})
        self.writable(volume)
        data = request.data.get("metadata") if isinstance(request.data, dict) else None
        given = metadata_value(data)
        with transaction.atomic():
            volume = self.get_object(locked=True)
            metadata = given if request.method == "PUT" else {**volume.metadata, **given}
            Volume.objects.filter(pk=volume.pk).update(metadata=metadata)
        return Response({"metadata": metadata})

    @action(detail=True, methods=["get", "put", "delete"], url_path=r"metadata/(?P<key>[^/]+)")
    def metadata_item(self, request, key=None, *args, **kwargs):
        volume = self.get_object()
        if request.method == "GET":
            if key not in volume.metadata:
                raise not_found_metadata(volume.pk, key)
            return Response({"meta": {key: volume.metadata[key]}})
        self.writable(volume)
        with transaction.atomic():
            volume = self.get_object(locked=True)
            metadata = dict(volume.metadata)
            if request.method == "DELETE":
                if key not in metadata:
                    raise not_found_metadata(volume.pk, key)
                del metadata[key]
                Volume.objects.filter(pk=volume.pk).update(metadata=metadata)
                return Response(status=status.HTTP_200_OK)
            meta = metadata_value(request.data.get("meta") if isinstance(request.data, dict) else None, "meta")
            if list(meta) != [key]:
                raise BadRequest("Request body and URI mismatch")
            metadata.update(meta)
            Volume.objects.filter(pk=volume.pk).update(metadata=metadata)
        return Response({"meta": meta})

    # --- POST /volumes/{id}/action

    @action(detail=True, methods=["post"], url_path="action")
    def volume_action(self, request, *args, **kwargs):
        if not isinstance(request.data, dict) or len(request.data) != 1:
            raise BadRequest("Invalid input: the body must name exactly one action.")
        name, body = next(iter(request.data.items()))
        handler = ACTIONS.get(name)
        if handler is None:
            raise BadRequest(f"There is no such action: {name}")
        # Another project's volume is not found before an admin action is refused, as Cinder's.
        volume = self.writable(self.get_object())
        if name in ADMIN_ACTIONS and not self.caller.is_admin:
            raise Forbidden(DENIED)
        return handler(self, volume, body if body is not None else {})

    def extend(self, volume, body):
        if not isinstance(body, dict) or "new_size" not in body:
            raise invalid_input("os-extend needs new_size.")
        try:
            new_size = int(body["new_size"])
        except (TypeError, ValueError):
            raise invalid_input(f"New size for extend must be an integer, not {body['new_size']!r}.") from None
        # From 3.42 an attached volume grows too: its back end first, then
        # the server's node tells the running guest (libvirt blockResize).
        extendable = (Volume.Status.AVAILABLE, Volume.Status.IN_USE) if self.request.api_version >= (3, 42) else (
            Volume.Status.AVAILABLE,)
        with transaction.atomic():
            volume = self.get_object(locked=True)
            if volume.status not in extendable:
                raise invalid_input_volume(f"Volume status must be '{' or '.join(extendable)}' to extend, "
                                           f"currently {volume.status}.")
            if new_size <= volume.size:
                raise invalid_input(f"New size for extend must be greater than current size. "
                                    f"(current: {volume.size}, extended: {new_size}).")
            growth = new_size - volume.size
            quotas.reserve(volume.project_id, volume.volume_type, gigabytes=growth)
            if not claim_capacity(volume.backend_id, growth):
                raise invalid_input_volume(f"Insufficient free space on back end {volume.backend.host} to extend "
                                           f"volume {volume.pk} by {growth} GB.")
            volume.set_status(Volume.Status.EXTENDING, expected=volume.status, extend_size=new_size)
            dispatch.to_backend(dispatch.EXTEND, volume.backend.host, volume.pk)
        return Response(status=status.HTTP_202_ACCEPTED)

    def retype(self, volume, body):
        if not isinstance(body, dict) or not body.get("new_type"):
            raise invalid_input("os-retype needs new_type.")
        with transaction.atomic():
            volume = self.get_object(locked=True)
            lifecycle.retype(self.caller, volume, body["new_type"], body.get("migration_policy") or "never")
        return Response(status=status.HTTP_202_ACCEPTED)

    def set_bootable(self, volume, body):
        value = body.get("bootable") if isinstance(body, dict) else None
        if value is None:
            raise invalid_input("os-set_bootable needs bootable.")
        bootable = as_bool(value, "bootable")
        Volume.objects.filter(pk=volume.pk).update(bootable=bootable)
        return Response(status=status.HTTP_200_OK)

    def update_readonly(self, volume, body):
        value = body.get("readonly") if isinstance(body, dict) else None
        if value is None:
            raise invalid_input("os-update_readonly_flag needs readonly.")
        readonly = as_bool(value, "readonly")
        Volume.objects.filter(pk=volume.pk).update(readonly=readonly)
        return Response(status=status.HTTP_202_ACCEPTED)

    def reset_status(self, volume, body):
        if not isinstance(body, dict) or not ({"status", "attach_status", "migration_status"} & set(body)):
            raise invalid_input("Must specify 'status', 'attach_status' or 'migration_status' for update.")
        fields = {}
        if "status" in body:
            if body["status"] not in Volume.Status.values:
                raise invalid_input(f"Must specify a valid status ({body['status']!r} is not one).")
            fields["status"] = body["status"]
        if "attach_status" in body:
            if body["attach_status"] not in ("attached", "detached"):
                raise invalid_input(f"Must specify a valid attach status ({body['attach_status']!r} is not one).")
            fields["attach_status"] = body["attach_status"]
        Volume.objects.filter(pk=volume.pk).update(**fields)
        return Response(status=status.HTTP_202_ACCEPTED)

    def force_delete(self, volume, body):
        with transaction.atomic():
            volume = self.get_object(locked=True)
            if volume.snapshots.exists():
                raise invalid_input_volume("Volume still has dependent snapshots.")
            volume.attachments.all().delete()
            lifecycle.delete_volume(volume)
        return Response(status=status.HTTP_202_ACCEPTED)

    def reserve(self, volume, body):
        attachments.reserve_legacy(volume.pk)
        return Response(status=status.HTTP_202_ACCEPTED)

    def unreserve(self, volume, body):
        attachments.unreserve_legacy(volume.pk)
        return Response(status=status.HTTP_202_ACCEPTED)

    def attach(self, volume, body):
        if not isinstance(body, dict) or not body.get("instance_uuid") and not body.get("host_name"):
            raise invalid_input("os-attach needs instance_uuid or host_name.")
        attachments.attach_legacy(volume.pk, body.get("instance_uuid"), body.get("mountpoint"),
                                  body.get("host_name"), body.get("mode", "rw"))
        return Response(status=status.HTTP_202_ACCEPTED)

    def begin_detaching(self, volume, body):
        attachments.begin_detaching(volume.pk)
        return Response(status=status.HTTP_202_ACCEPTED)

    def roll_detaching(self, volume, body):
        attachments.roll_detaching(volume.pk)
        return Response(status=status.HTTP_202_ACCEPTED)

    def detach(self, volume, body):
        attachment_id = body.get("attachment_id") if isinstance(body, dict) else None
        attachments.detach_legacy(volume.pk, attachment_id)
        return Response(status=status.HTTP_202_ACCEPTED)

    def force_detach(self, volume, body):
        if not isinstance(body, dict):
            raise invalid_input("os-force_detach takes an object (attachment_id, connector).")
        attachments.force_detach(volume.pk, body.get("attachment_id"), body.get("connector"))
        return Response(status=status.HTTP_202_ACCEPTED)

    def initialize_connection(self, volume, body):
        connector = body.get("connector") if isinstance(body, dict) else None
        if not isinstance(connector, dict):
            raise invalid_input("os-initialize_connection needs a connector object.")
        return Response({"connection_info": attachments.connection_info_of(volume.pk)})

    def terminate_connection(self, volume, body):
        return Response(status=status.HTTP_202_ACCEPTED)

    # --- the image metadata a volume carries (volume_image_metadata)

    def set_image_metadata(self, volume, body):
        given = metadata_value(body.get("metadata") if isinstance(body, dict) else None)
        with transaction.atomic():
            volume = self.get_object(locked=True)
            if volume.status == Volume.Status.MAINTENANCE:
                raise invalid_input_volume(f"Volume {volume.pk} is in maintenance.")
            metadata = {**(volume.volume_image_metadata or {}), **given}
            Volume.objects.filter(pk=volume.pk).update(volume_image_metadata=metadata)
        return Response({"metadata": metadata})

    def unset_image_metadata(self, volume, body):
        key = body.get("key") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise invalid_input("os-unset_image_metadata needs key.")
        with transaction.atomic():
            volume = self.get_object(locked=True)
            metadata = dict(volume.volume_image_metadata or {})
            if key not in metadata:
                raise NotFound(f"Glance metadata for volume {volume.pk} with key {key} could not be found.")
            del metadata[key]
            Volume.objects.filter(pk=volume.pk).update(volume_image_metadata=metadata)
        return Response(status=status.HTTP_200_OK)

    def show_image_metadata(self, volume, body):
        return Response({"metadata": volume.volume_image_metadata or {}})

    def upload_image(self, volume, body):
        """os-volume_upload_image: a new image of the caller's project from
        the volume's data, made by its back end's worker."""
        if not isinstance(body, dict) or not isinstance(body.get("image_name"), str) or not body["image_name"]:
            raise invalid_input("os-volume_upload_image needs image_name.")
        disk_format = body.get("disk_format") or "raw"
        if disk_format not in UPLOAD_DISK_FORMATS:
            raise invalid_input(f"Invalid disk-format '{disk_format}' is specified. Allowed disk-formats are "
                                f"{', '.join(UPLOAD_DISK_FORMATS)}.")
        container_format = body.get("container_format") or "bare"
        if container_format != "bare":
            raise invalid_input(f"Invalid container-format '{container_format}' is specified. Allowed "
                                f"container-formats are bare.")
        force = as_bool(body.get("force", False), "force")
        visibility = body.get("visibility") or "private"
        if visibility not in ("private", "shared", "community", "public"):
            raise invalid_input(f"Invalid visibility '{visibility}' is specified.")
        if visibility == "public" and not self.caller.is_admin:
            raise Forbidden(DENIED)
        protected = as_bool(body.get("protected", False), "protected")
        with transaction.atomic():
            volume = self.get_object(locked=True)
            allowed = (Volume.Status.AVAILABLE, Volume.Status.IN_USE) if force else (Volume.Status.AVAILABLE,)
            if volume.status not in allowed:
                raise invalid_input_volume(f"Volume {volume.pk} status must be available{' or in-use' * force}"
                                           f" to upload to an image, but the current status is {volume.status}"
                                           f"{'' if force else ' (in-use needs force)'}.")
            image_id = from_volume.new_image(volume.project_id, body["image_name"], disk_format, container_format,
                                             visibility, protected)
            volume.set_status(Volume.Status.UPLOADING, expected=volume.status)
            dispatch.to_backend(dispatch.UPLOAD_IMAGE, volume.backend.host, volume.pk, image_id, disk_format)
        return Response({"os-volume_upload_image": {
            "id": str(volume.pk), "updated_at": cinder_time(volume.updated_at), "status": volume.status,
            "display_description": volume.description, "size": volume.size,
            "volume_type": {"id": str(volume.volume_type_id), "name": volume.volume_type.name},
            "image_id": image_id, "container_format": container_format, "disk_format": disk_format,
            "image_name": body["image_name"], "visibility": visibility, "protected": protected}},
            status=status.HTTP_202_ACCEPTED)


ACTIONS = {
    "os-extend": VolumeViewSet.extend, "os-set_bootable": VolumeViewSet.set_bootable,
    "os-update_readonly_flag": VolumeViewSet.update_readonly, "os-reset_status": VolumeViewSet.reset_status,
    "os-force_delete": VolumeViewSet.force_delete, "os-reserve": VolumeViewSet.reserve,
    "os-unreserve": VolumeViewSet.unreserve, "os-attach": VolumeViewSet.attach,
    "os-begin_detaching": VolumeViewSet.begin_detaching, "os-roll_detaching": VolumeViewSet.roll_detaching,
    "os-detach": VolumeViewSet.detach, "os-force_detach": VolumeViewSet.force_detach,
    "os-initialize_connection": VolumeViewSet.initialize_connection,
    "os-terminate_connection": VolumeViewSet.terminate_connection,
    "os-volume_upload_image": VolumeViewSet.upload_image, "os-retype": VolumeViewSet.retype,
    "os-set_image_metadata": VolumeViewSet.set_image_metadata,
    "os-unset_image_metadata": VolumeViewSet.unset_image_metadata,
    "os-show_image_metadata": VolumeViewSet.show_image_metadata,
}
# What qemu-img writes an uploaded volume's image as.
UPLOAD_DISK_FORMATS = ("raw", "qcow2")


def invalid_input_volume(reason):
    return BadRequest(f"Invalid volume: {reason}")


def not_found_metadata(volume_id, key):
    return NotFound(f"Volume {volume_id} has no metadata with key {key}.")

