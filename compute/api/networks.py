"""Nova's network proxies below microversion 2.36, answered from the
network app's rows: os-networks and os-tenant-networks list and show the
networks the project sees in Neutron, with the two fields that still mean
something (id, and the name as `label`); creating or deleting through them
is gone (410), as in Nova since nova-network went."""
from rest_framework.response import Response

from cloud.errors import ApiError, NotFound
from compute.api.base import ProxyView, is_uuid
from network import ports as network_ports

GONE = "This API only worked with nova-network, which is gone: use the Networking API."
NETWORK_FIELDS = ("id", "cidr", "netmask", "gateway", "broadcast", "dns1", "dns2", "cidr_v6", "gateway_v6",
                  "label", "netmask_v6")
# Shown to admins too; nova-network's, so always null with Neutron.
ADMIN_FIELDS = ("created_at", "updated_at", "deleted_at", "deleted", "injected", "bridge", "vlan",
                "vpn_public_address", "vpn_public_port", "vpn_private_address", "dhcp_start", "project_id", "host",
                "bridge_interface", "multi_host", "priority", "rxtx_base", "mtu", "dhcp_server", "enable_dhcp",
                "share_address")


def network_body(request, network):
    fields = NETWORK_FIELDS + (ADMIN_FIELDS if request.auth.is_admin else ())
    return {field: str(network.id) if field == "id" else network.name if field == "label" else None
            for field in fields}


def tenant_network_body(request, network):
    # Nova has always answered the string "None" for the cidr here.
    return {"id": str(network.id), "cidr": "None", "label": network.name}


class NetworkProxy(ProxyView):
    render = staticmethod(network_body)

    def networks(self):
        return network_ports.visible_networks(self.request.auth.project_id, self.request.auth.is_admin)


class NetworkListView(NetworkProxy):
    policy = {"get": "reader", "post": "reader"}

    def get(self, request):
        networks = self.networks().order_by("created_at", "id")
        return Response({"networks": [self.render(request, network) for network in networks]})

    def post(self, request):
        raise ApiError(GONE, status=410)


class NetworkView(NetworkProxy):
    policy = {"get": "reader", "delete": "reader"}

    def get(self, request, network_id):
        network = self.networks().filter(pk=network_id).first() if is_uuid(network_id) else None
        if network is None:
            raise NotFound("Network not found")
        return Response({"network": self.render(request, network)})

    def delete(self, request, network_id):
        raise ApiError(GONE, status=410)


class TenantNetworkListView(NetworkListView):
    render = staticmethod(tenant_network_body)


class TenantNetworkView(NetworkView):
    render = staticmethod(tenant_network_body)
