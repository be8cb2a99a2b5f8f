"""GET and DELETE /servers/{id}/os-server-password: what the guest posted
to the metadata service as its password (encrypted with the keypair's
public key, so only the key's owner reads it), and clearing it so the
guest may post a new one."""
from rest_framework.response import Response

from compute.api.base import ComputeView
from compute.models import Instance


class ServerPasswordView(ComputeView):
    policy = {"get": "reader", "delete": "member"}

    def get(self, request, server_id):
        from compute.api.servers import find_instance  # servers imports the API modules

        return Response({"password": find_instance(request, server_id).guest_password})

    def delete(self, request, server_id):
        from compute.api.servers import find_instance

        Instance.objects.filter(pk=find_instance(request, server_id).pk).update(guest_password="")
        return Response(status=204)
