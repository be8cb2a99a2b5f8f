"""Volume types: extra specs (volume_backend_name picks the back end),
public or private with per-project access."""
from django.db import IntegrityError, transaction
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict, Forbidden, NotFound
from cloud.policy import DENIED
from volumes import conf
from volumes.api.base import CinderViewSet, as_bool, body_of, is_uuid, metadata_value, validated
from volumes.lifecycle import type_visible_to
from volumes.models import VolumeType, VolumeTypeAccess

POLICY = {"list": "reader", "list_detail": "reader", "retrieve": "reader", "extra_specs": "reader",
          "extra_spec": "reader"}  # the rest: admin


class TypeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    extra_specs = serializers.DictField(required=False)
    is_public = serializers.BooleanField(required=False)
    os_volume_type_access_is_public = serializers.BooleanField(required=False)


class VolumeTypeViewSet(CinderViewSet):
    queryset = VolumeType.objects.all()
    kind, member_name, collection_name = "Volume type", "volume_type", "volume_types"
    policy = POLICY
    default_sort = (("name", "asc"),)
    filters = {"name": "name"}

    def visible(self, queryset):
        queryset = queryset.filter(type_visible_to(self.caller)).distinct()
        if self.caller.is_admin and "is_public" in self.request.query_params:
            value = self.request.query_params["is_public"]
            if value.lower() != "none":
                queryset = queryset.filter(is_public=as_bool(value, "is_public"))
        return queryset

    def get_object(self, locked=False):
        lookup = self.kwargs["pk"]
        queryset = self.get_queryset()
        found = queryset.filter(pk=lookup).first() if is_uuid(lookup) else None
        if found is None and lookup == "default":
            found = queryset.filter(name=conf.DEFAULT_VOLUME_TYPE).first()
        if found is None:
            raise NotFound(f"Volume type {lookup} could not be found.")
        return found

    def render(self, volume_type):
        return {"id": str(volume_type.id), "name": volume_type.name, "description": volume_type.description,
                "is_public": volume_type.is_public, "os-volume-type-access:is_public": volume_type.is_public,
                "extra_specs": volume_type.extra_specs,
                "qos_specs_id": str(volume_type.qos_specs_id) if volume_type.qos_specs_id else None}

    def list(self, request, *args, **kwargs):
        return self.page(detail=True)

    def create(self, request, *args, **kwargs):
        body = dict(body_of(request, "volume_type"))
        if "os-volume-type-access:is_public" in body:
            body["os_volume_type_access_is_public"] = body.pop("os-volume-type-access:is_public")
        values = validated(TypeSerializer, body)
        extra_specs = metadata_value(values.get("extra_specs", {}), "extra_specs")
        is_public = values.get("is_public", values.get("os_volume_type_access_is_public", True))
        if not values["name"].strip():
            raise BadRequest("Invalid input received: Volume type name can not be empty.")
        try:
            with transaction.atomic():
                volume_type = VolumeType.objects.create(name=values["name"], description=values.get("description"),
                                                        is_public=is_public, extra_specs=extra_specs)
        except IntegrityError:
            raise Conflict(f"Volume Type {values['name']} already exists.") from None
        # Cinder's create answer has no qos_specs_id, its update answer
        # not the access extension's attribute either.
        body = self.render(volume_type)
        del body["qos_specs_id"]
        return Response({"volume_type": body})

    def update(self, request, *args, **kwargs):
        volume_type = self.get_object()
        body = dict(body_of(request, "volume_type"))
        fields = {}
        if "name" in body:
            if not isinstance(body["name"], str) or not body["name"].strip() or len(body["name"]) > 255:
                raise BadRequest("Invalid input received: Volume type name can not be empty.")
            fields["name"] = body["name"]
        if "description" in body:
            if body["description"] is not None and (not isinstance(body["description"], str) or
                                                   len(body["description"]) > 255):
                raise BadRequest("Invalid input received: description must be a string of at most 255 characters.")
            fields["description"] = body["description"]
        if "is_public" in body:
            fields["is_public"] = as_bool(body["is_public"], "is_public")
        if volume_type.name == conf.DEFAULT_VOLUME_TYPE and "name" in fields:
            raise BadRequest("Invalid volume type: The default volume type cannot be renamed.")
        try:
            with transaction.atomic():
                VolumeType.objects.filter(pk=volume_type.pk).update(**fields)
        except IntegrityError:
            raise Conflict(f"Volume Type {fields.get('name')} already exists.") from None
        volume_type.refresh_from_db()
        body = self.render(volume_type)
        del body["qos_specs_id"], body["os-volume-type-access:is_public"]
        return Response({"volume_type": body})

    partial_update = update

    def destroy(self, request, *args, **kwargs):
        volume_type = self.get_object()
        if volume_type.name == conf.DEFAULT_VOLUME_TYPE:
            raise BadRequest("Invalid volume type: The default volume type cannot be deleted.")
        if volume_type.volumes.exists():
            raise BadRequest("Invalid volume type: Target volume type is still in use.")
        volume_type.delete()
        return Response(status=status.HTTP_202_ACCEPTED)

    # --- extra specs: /types/{id}/extra_specs[/{key}]

    @action(detail=True, methods=["get", "post"], url_path="extra_specs")
    def extra_specs(self, request, *args, **kwargs):
        volume_type = self.get_object()
        if request.method == "GET":
            return Response({"extra_specs": volume_type.extra_specs})
        self.admin_only()
        given = metadata_value(request.data.get("extra_specs") if isinstance(request.data, dict) else None,
                               "extra_specs")
        self.check_not_in_use(volume_type, given)
        volume_type.extra_specs = {**volume_type.extra_specs, **given}
        volume_type.save(update_fields=["extra_specs", "updated_at"])
        return Response({"extra_specs": given})

    @action(detail=True, methods=["get", "put", "delete"], url_path=r"extra_specs/(?P<key>[^/]+)")
    def extra_spec(self, request, key=None, *args, **kwargs):
        volume_type = self.get_object()
        if request.method == "GET" and key not in volume_type.extra_specs or \
                request.method == "DELETE" and key not in volume_type.extra_specs:
            raise NotFound(f"Volume Type {volume_type.pk} has no extra specs with key {key}.")
        if request.method == "GET":
            return Response({key: volume_type.extra_specs[key]})
        self.admin_only()
        if request.method == "DELETE":
            self.check_not_in_use(volume_type, {key: None})
            volume_type.extra_specs = {k: v for k, v in volume_type.extra_specs.items() if k != key}
            volume_type.save(update_fields=["extra_specs", "updated_at"])
            return Response(status=status.HTTP_202_ACCEPTED)
        given = metadata_value(request.data, "extra_specs")
        if list(given) != [key]:
            raise BadRequest("Request body and URI mismatch")
        self.check_not_in_use(volume_type, given)
        volume_type.extra_specs = {**volume_type.extra_specs, **given}
        volume_type.save(update_fields=["extra_specs", "updated_at"])
        return Response(given)

    def admin_only(self):
        if not self.caller.is_admin:
            raise Forbidden(DENIED)

    @staticmethod
    def check_not_in_use(volume_type, specs):
        # Volumes already placed by the back end name stay where they are.
        if "volume_backend_name" in specs and volume_type.volumes.exists():
            raise BadRequest("Invalid volume type: Volume Type is currently in use.")

    # --- access: POST /types/{id}/action, GET /types/{id}/os-volume-type-access

    @action(detail=True, methods=["post"], url_path="action")
    def type_action(self, request, *args, **kwargs):
        volume_type = self.get_object()
        data = request.data if isinstance(request.data, dict) else {}
        for name in ("addProjectAccess", "removeProjectAccess"):
            if name in data:
                project = data[name].get("project") if isinstance(data[name], dict) else None
                if not isinstance(project, str) or not project or len(project) > 64:
                    raise BadRequest("Invalid input received: project must be a project id.")
                if volume_type.is_public:
                    raise BadRequest("Invalid volume type: Type access modification is not applicable to public "
                                     "volume type.")
                if name == "addProjectAccess":
                    _, made = VolumeTypeAccess.objects.get_or_create(volume_type=volume_type, project_id=project)
                    if not made:
                        raise Conflict(f"Volume type access for {volume_type.pk} / {project} combination already "
                                       f"exists.")
                elif not VolumeTypeAccess.objects.filter(volume_type=volume_type, project_id=project).delete()[0]:
                    raise NotFound(f"Volume type access not found for {volume_type.pk} / {project} combination.")
                return Response(status=status.HTTP_202_ACCEPTED)
        raise BadRequest("There is no such action: the body must be addProjectAccess or removeProjectAccess.")

    @action(detail=True, methods=["get"], url_path="os-volume-type-access")
    def type_access(self, request, *args, **kwargs):
        volume_type = self.get_object()
        if volume_type.is_public:
            raise NotFound("Access list not available for public volume types.")
        return Response({"volume_type_access": [
            {"volume_type_id": str(volume_type.pk), "project_id": project_id}
            for project_id in volume_type.access.values_list("project_id", flat=True)]})
