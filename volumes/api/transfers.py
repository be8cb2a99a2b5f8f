"""Volume transfers (`os-volume-transfer`): create (the answer carries
the auth key, never shown again), list and detail, show, delete, and
accept by another project."""
from django.db import transaction
from rest_framework import status
from rest_framework.response import Response

from volumes import transfers
from volumes.api.base import CinderView, as_bool, body_of, cinder_time, invalid_input, is_uuid, not_found
from volumes.models import Transfer, Volume

COLLECTION = "os-volume-transfer"


class TransfersMixin:
    def visible_transfers(self, request, listing=False):
        """The transfers of the caller's project's volumes; every project's
        for an admin (listing them asks for all_tenants, as in Cinder)."""
        rows = Transfer.objects.all()
        everyone = request.auth.is_admin and (
            not listing or as_bool(request.query_params.get("all_tenants", "0"), "all_tenants"))
        return rows if everyone else rows.filter(volume__project_id=request.auth.project_id)

    def find(self, request, transfer_id):
        transfer = self.visible_transfers(request).filter(pk=transfer_id).first() if is_uuid(transfer_id) else None
        if transfer is None:
            raise not_found("Transfer", transfer_id)
        return transfer

    def render(self, transfer, detail=True):
        body = {"id": str(transfer.id), "name": transfer.name, "volume_id": str(transfer.volume_id),
                "links": self.link(COLLECTION, transfer.id)}
        if detail:
            body["created_at"] = cinder_time(transfer.created_at)
        return body


class TransferListView(TransfersMixin, CinderView):
    policy = {"get": "reader", "post": "member"}
    detail = False

    def get(self, request, project_id):
        rows = self.visible_transfers(request, listing=True).order_by("-created_at", "id")
        return Response({"transfers": [self.render(transfer, detail=self.detail) for transfer in rows]})

    def post(self, request, project_id):
        body = body_of(request, "transfer")
        volume_id, name = body.get("volume_id"), body.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 255):
            raise invalid_input("Transfer name must be a string of at most 255 characters.")
        if not isinstance(volume_id, str) or not is_uuid(volume_id):
            raise invalid_input(f"Invalid volume_id {volume_id!r}: a volume id is a UUID.")
        with transaction.atomic():
            volume = Volume.objects.select_for_update().filter(pk=volume_id, project_id=request.auth.project_id)
            volume = volume.first()
            if volume is None:
                raise not_found("Volume", volume_id)
            transfer, auth_key = transfers.create(volume, name)
        return Response({"transfer": {**self.render(transfer), "auth_key": auth_key}},
                        status=status.HTTP_202_ACCEPTED)


class TransferDetailListView(TransferListView):
    policy = {"get": "reader"}
    detail = True


class TransferView(TransfersMixin, CinderView):
    policy = {"get": "reader", "delete": "member"}

    def get(self, request, project_id, transfer_id):
        return Response({"transfer": self.render(self.find(request, transfer_id))})

    def delete(self, request, project_id, transfer_id):
        transfers.cancel(self.find(request, transfer_id))
        return Response(status=status.HTTP_202_ACCEPTED)


class TransferAcceptView(TransfersMixin, CinderView):
    """Any project may accept: the auth key, not the project, is what
    entitles it (the transfer's id alone is no access to the volume)."""

    policy = {"post": "member"}

    def post(self, request, project_id, transfer_id):
        auth_key = body_of(request, "accept").get("auth_key")
        if not isinstance(auth_key, str) or not auth_key:
            raise invalid_input("accept needs auth_key.")
        if not is_uuid(transfer_id):
            raise not_found("Transfer", transfer_id)
        transfer = transfers.accept(transfer_id, auth_key, request.auth.project_id, request.auth.user_id)
        return Response({"transfer": self.render(transfer, detail=False)}, status=status.HTTP_202_ACCEPTED)
