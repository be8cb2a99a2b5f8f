"""GET and DELETE /servers/{id}/os-server-password: what the guest posted
to the metadata service as its password (encrypted with the keypair's
public key, so only the key's owner reads it), and clearing it so the
guest may post a new one. And the changePassword action (Nova's
os-admin-password): the new admin password the guest reads from the
metadata service."""
from django.db import transaction
from django.utils import timezone
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict
from compute.api.base import ComputeView, request_ids
from compute.models import Instance, VmState, cannot_message, finish_action, start_action


class ServerPasswordView(ComputeView):
    policy = {"get": "reader", "delete": "member"}

    def get(self, request, server_id):
        from compute.api.servers import find_instance  # servers imports the API modules

        return Response({"password": find_instance(request, server_id).guest_password})

    def delete(self, request, server_id):
        from compute.api.servers import find_instance

        Instance.objects.filter(pk=find_instance(request, server_id).pk).update(guest_password="")
        return Response(status=204)


def change_password(request, instance, argument):
    """{"changePassword": {"adminPass": "..."}}: 202. As in Nova, only an
    ACTIVE server with no task running takes it (else 409); the guest reads
    it as `admin_pass` in meta_data.json from the metadata service."""
    if not isinstance(argument, dict) or "adminPass" not in argument:
        raise BadRequest("Invalid input for field 'changePassword/adminPass': 'adminPass' is a required property.")
    unknown = sorted(set(argument) - {"adminPass"})
    if unknown:
        raise BadRequest(f"Invalid input for field 'changePassword': additional properties are not allowed "
                         f"({', '.join(unknown)} unexpected).")
    password = argument["adminPass"]
    if not isinstance(password, str):
        raise BadRequest(f"Invalid input for field 'changePassword/adminPass': {password!r} is not a string.")
    with transaction.atomic():
        changed = Instance.objects.filter(pk=instance.pk, deleted=False, vm_state=VmState.ACTIVE,
                                          task_state__isnull=True).update(admin_password=password,
                                                                          updated_at=timezone.now())
        if not changed:
            instance.refresh_from_db(fields=["vm_state", "task_state"])
            raise Conflict(cannot_message(instance, "changePassword"))
        action = start_action(instance, "changePassword", *request_ids(request))
        finish_action(instance, action)
    return Response(status=202)
