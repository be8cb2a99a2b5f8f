"""Nova's floating-IP proxy below microversion 2.36: os-floating-ips (list,
show, allocate from a pool, release), os-floating-ip-pools (the external
networks), and below 2.44 the server actions addFloatingIp and
removeFloatingIp; answered by the Networking API as Nova answers them from
Neutron."""
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict, NotFound
from compute.api.base import PROXIED_STATUSES, ServiceProxy, is_uuid, neutron
from network import ports as network_ports

# Neutron's "no address left in the pool" is Nova's 404 here, its
# over-quota a 403.
STATUSES = {**PROXIED_STATUSES, "IpAddressGenerationFailure": 404}


def render_all(request, floating_ips):
    """Nova's view of Neutron floating IPs: the pool is the external
    network's name, the instance the associated port's server (two calls)."""
    network_ids = sorted({ip["floating_network_id"] for ip in floating_ips})
    port_ids = sorted({ip["port_id"] for ip in floating_ips if ip["port_id"]})
    pools = {network["id"]: network["name"] for network in neutron(
        request, "GET", "/networks", params={"id": network_ids, "fields": ["id", "name"]})["networks"]} \
        if network_ids else {}
    devices = {port["id"]: port["device_id"] or None for port in neutron(
        request, "GET", "/ports", params={"id": port_ids, "fields": ["id", "device_id"]})["ports"]} \
        if port_ids else {}
    return [{"id": ip["id"], "ip": ip["floating_ip_address"], "fixed_ip": ip["fixed_ip_address"],
             "pool": pools.get(ip["floating_network_id"]), "instance_id": devices.get(ip["port_id"])}
            for ip in floating_ips]


class FloatingIpProxy(ServiceProxy):
    policy = {"get": "reader", "post": "reader", "delete": "reader"}
    statuses = STATUSES

    def floating_ip(self, floating_ip_id):
        if not is_uuid(floating_ip_id):
            raise NotFound(f"Floating IP {floating_ip_id} could not be found.")
        return self.neutron("GET", f"/floatingips/{floating_ip_id}")["floatingip"]


class FloatingIpListView(FloatingIpProxy):
    def get(self, request):
        found = self.neutron("GET", "/floatingips", params={"project_id": request.auth.project_id})
        return Response({"floating_ips": render_all(request, found["floatingips"])})

    def post(self, request):
        pool = request.data.get("pool") if isinstance(request.data, dict) else None
        if pool is not None and not isinstance(pool, str):
            raise BadRequest("Invalid input for field 'pool': the name or id of a floating IP pool is needed.")
        networks = self.neutron("GET", "/networks", params={"router:external": "true", "fields": ["id", "name"],
                                                            "sort_key": "name", "sort_dir": "asc"})["networks"]
        chosen = next((network for network in networks if pool in (None, network["id"], network["name"])), None)
        if chosen is None:
            raise NotFound(f"Floating IP pool not found: {pool}." if pool else "No floating IP pool is defined.")
        made = self.neutron("POST", "/floatingips", {"floatingip": {
            "floating_network_id": chosen["id"], "project_id": request.auth.project_id}})["floatingip"]
        return Response({"floating_ip": render_all(request, [made])[0]})


class FloatingIpView(FloatingIpProxy):
    def get(self, request, floating_ip_id):
        return Response({"floating_ip": render_all(request, [self.floating_ip(floating_ip_id)])[0]})

    def delete(self, request, floating_ip_id):
        self.floating_ip(floating_ip_id)
        self.neutron("DELETE", f"/floatingips/{floating_ip_id}")
        return Response(status=202)


class FloatingIpPoolListView(ServiceProxy):
    policy = {"get": "reader"}

    def get(self, request):
        networks = self.neutron("GET", "/networks", params={"router:external": "true", "fields": ["name"],
                                                            "sort_key": "name", "sort_dir": "asc"})["networks"]
        return Response({"floating_ip_pools": [{"name": network["name"]} for network in networks]})


def floating_ip_at(request, argument, action):
    address = argument.get("address") if isinstance(argument, dict) else None
    if not isinstance(address, str) or not address:
        raise BadRequest(f"Invalid input for field '{action}.address': an address is required.")
    found = neutron(request, "GET", "/floatingips", params={"floating_ip_address": address}, statuses=STATUSES)
    if not found["floatingips"]:
        raise NotFound(f"Floating IP not found for address {address}.")
    return found["floatingips"][0]


def add_floating_ip(request, instance, argument):
    """addFloatingIp {"address", "fixed_address"}: the floating IP goes to
    the server's port holding `fixed_address` (its first IPv4 port without it)."""
    floating_ip = floating_ip_at(request, argument, "addFloatingIp")
    fixed_address = argument.get("fixed_address")
    if fixed_address is not None and not isinstance(fixed_address, str):
        raise BadRequest("Invalid input for field 'addFloatingIp.fixed_address': an address is needed.")
    for port in network_ports.ports_of_device(instance.pk):
        for fixed_ip in port.fixed_ips.all():
            if fixed_address in (None, fixed_ip.ip_address) and ":" not in fixed_ip.ip_address:
                neutron(request, "PUT", f"/floatingips/{floating_ip['id']}", {"floatingip": {
                    "port_id": str(port.pk), "fixed_ip_address": fixed_ip.ip_address}}, statuses=STATUSES)
                return Response(status=202)
    if fixed_address is not None:
        raise BadRequest(f"Instance {instance.id} has no fixed IP address {fixed_address}.")
    raise BadRequest(f"Instance {instance.id} has no IPv4 address to associate a floating IP with.")


def remove_floating_ip(request, instance, argument):
    floating_ip = floating_ip_at(request, argument, "removeFloatingIp")
    port_ids = {str(port.pk) for port in network_ports.ports_of_device(instance.pk)}
    if floating_ip["port_id"] not in port_ids:
        raise Conflict(f"Floating IP {floating_ip['floating_ip_address']} is not associated with instance "
                       f"{instance.id}.")
    neutron(request, "PUT", f"/floatingips/{floating_ip['id']}", {"floatingip": {"port_id": None}},
            statuses=STATUSES)
    return Response(status=202)


ACTIONS = {"addFloatingIp": add_floating_ip, "removeFloatingIp": remove_floating_ip}
