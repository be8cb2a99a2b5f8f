"""QoS specs (admin only, as Cinder's policy has them): create, list,
show, set and delete keys, delete (refused while associated unless
forced), and their associations with volume types."""
from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict
from volumes.api.base import CinderView, as_bool, body_of, invalid_input, is_uuid, metadata_value, not_found
from volumes.models import QosSpecs, VolumeType

COLLECTION = "qos-specs"
POLICY = {"get": "admin", "post": "admin", "put": "admin", "delete": "admin"}


def find(qos_id):
    found = QosSpecs.objects.filter(pk=qos_id).first() if is_uuid(qos_id) else None
    if found is None:
        raise not_found("QoS spec", qos_id)
    return found


def render(qos):
    return {"id": str(qos.id), "name": qos.name, "consumer": qos.consumer, "specs": qos.specs}


def specs_of(body, field="qos_specs"):
    specs = metadata_value({key: value for key, value in body.items() if key not in ("name", "consumer")}, field)
    if "consumer" in body and body["consumer"] not in QosSpecs.Consumer.values:
        raise invalid_input(f"consumer must be one of {', '.join(QosSpecs.Consumer.values)}, "
                            f"not {body['consumer']!r}.")
    return specs


class QosListView(CinderView):
    policy = POLICY

    def get(self, request, project_id):
        return Response({"qos_specs": [render(qos) for qos in QosSpecs.objects.order_by("created_at", "id")]})

    def post(self, request, project_id):
        body = body_of(request, "qos_specs")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise invalid_input("name: a QoS spec needs a name of 1 to 255 characters.")
        specs = specs_of(body)
        try:
            with transaction.atomic():
                qos = QosSpecs.objects.create(name=name, consumer=body.get("consumer", QosSpecs.Consumer.BACK_END),
                                              specs=specs)
        except IntegrityError:
            raise Conflict(f"QoS Specs {name} already exists.") from None
        return Response({"qos_specs": render(qos), "links": self.link(COLLECTION, qos.id)})


class QosView(CinderView):
    policy = POLICY

    def get(self, request, project_id, qos_id):
        qos = find(qos_id)
        return Response({"qos_specs": render(qos), "links": self.link(COLLECTION, qos.id)})

    def put(self, request, project_id, qos_id):
        """Sets keys (and the consumer); answers with what was given."""
        body = body_of(request, "qos_specs")
        given = specs_of(body)
        with transaction.atomic():
            qos = QosSpecs.objects.select_for_update().filter(pk=find(qos_id).pk).get()
            qos.specs = {**qos.specs, **given}
            if "consumer" in body:
                qos.consumer = body["consumer"]
            qos.save(update_fields=["specs", "consumer"])
        return Response({"qos_specs": {**given, **({"consumer": body["consumer"]} if "consumer" in body else {})}})

    def delete(self, request, project_id, qos_id):
        force = as_bool(request.query_params.get("force", "false"), "force")
        with transaction.atomic():
            qos = find(qos_id)
            associated = VolumeType.objects.select_for_update().filter(qos_specs=qos)
            if associated.exists():
                if not force:
                    raise BadRequest(f"QoS Specs {qos.pk} is still associated with entities.")
                associated.update(qos_specs=None)
            qos.delete()
        return Response(status=status.HTTP_202_ACCEPTED)


class QosDeleteKeysView(CinderView):
    policy = POLICY

    def put(self, request, project_id, qos_id):
        keys = request.data.get("keys") if isinstance(request.data, dict) else None
        if not isinstance(keys, list) or not keys or not all(isinstance(key, str) for key in keys):
            raise invalid_input("keys: a list of the spec keys to delete.")
        with transaction.atomic():
            qos = QosSpecs.objects.select_for_update().filter(pk=find(qos_id).pk).get()
            missing = [key for key in keys if key not in qos.specs]
            if missing:
                raise not_found(f"QoS spec {qos.pk} key", missing[0])
            qos.specs = {key: value for key, value in qos.specs.items() if key not in keys}
            qos.save(update_fields=["specs"])
        return Response(status=status.HTTP_202_ACCEPTED)


class QosAssociationsView(CinderView):
    policy = POLICY

    def get(self, request, project_id, qos_id):
        qos = find(qos_id)
        return Response({"qos_associations": [
            {"association_type": "volume_type", "name": volume_type.name, "id": str(volume_type.id)}
            for volume_type in VolumeType.objects.filter(qos_specs=qos).order_by("name")]})


def volume_type_of(request):
    type_id = request.query_params.get("vol_type_id")
    if not type_id:
        raise invalid_input("vol_type_id: Volume Type id must not be None.")
    found = VolumeType.objects.select_for_update().filter(pk=type_id).first() if is_uuid(type_id) else None
    if found is None:
        raise not_found("Volume type", type_id)
    return found


class QosAssociateView(CinderView):
    """GET .../associate?vol_type_id= (Cinder's verb for this change)."""

    policy = POLICY

    def get(self, request, project_id, qos_id):
        with transaction.atomic():
            qos = find(qos_id)
            volume_type = volume_type_of(request)
            if volume_type.qos_specs_id and volume_type.qos_specs_id != qos.pk:
                raise invalid_input(f"Type {volume_type.pk} is already associated with another qos specs: "
                                    f"{volume_type.qos_specs_id}")
            VolumeType.objects.filter(pk=volume_type.pk).update(qos_specs=qos)
        return Response(status=status.HTTP_202_ACCEPTED)


class QosDisassociateView(CinderView):
    policy = POLICY

    def get(self, request, project_id, qos_id):
        with transaction.atomic():
            qos = find(qos_id)
            volume_type = volume_type_of(request)
            VolumeType.objects.filter(pk=volume_type.pk, qos_specs=qos).update(qos_specs=None)
        return Response(status=status.HTTP_202_ACCEPTED)


class QosDisassociateAllView(CinderView):
    policy = POLICY

    def get(self, request, project_id, qos_id):
        VolumeType.objects.filter(qos_specs=find(qos_id)).update(qos_specs=None)
        return Response(status=status.HTTP_202_ACCEPTED)
