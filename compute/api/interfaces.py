"""A server's network side: its addresses (/ips), its interfaces
(os-interface: list, show, attach and detach, hot-plugged on its node),
and the actions addFixedIp / removeFixedIp / addSecurityGroup /
removeSecurityGroup. Ports are made and changed through network.ports,
attached and released through compute.networking."""
import ipaddress

from django.db import transaction
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict, NotFound
from compute import conf, networking
from compute.api.base import ComputeView, is_uuid
from compute.api.consoles import waiting_for_node
from compute.api.server_views import addresses_of
from compute.models import VmState
from network import ports as network_ports
from workers import pipelines

# The states an interface may be attached or detached in (Nova's).
INTERFACE_VM_STATES = (VmState.ACTIVE, VmState.PAUSED, VmState.STOPPED)


def find_instance(request, server_id):
    from compute.api.servers import find_instance as find

    return find(request, server_id)


class IpsView(ComputeView):
    """GET /servers/{id}/ips: {"addresses": {network: [{version, addr}]}}."""

    policy = {"get": "reader"}

    def get(self, request, server_id):
        instance = find_instance(request, server_id)
        return Response({"addresses": plain_addresses(addresses_of([instance])[instance.pk])})


class IpsNetworkView(ComputeView):
    """GET /servers/{id}/ips/{network label}."""

    policy = {"get": "reader"}

    def get(self, request, server_id, label):
        instance = find_instance(request, server_id)
        addresses = plain_addresses(addresses_of([instance])[instance.pk])
        if label not in addresses:
            raise NotFound("Instance is not a member of specified network")
        return Response({label: addresses[label]})


def plain_addresses(body):
    return {network: [{"version": address["version"], "addr": address["addr"]} for address in addresses]
            for network, addresses in body.items()}


def attachment_body(port):
    return {"port_state": port.status, "port_id": str(port.pk), "net_id": str(port.network_id),
            "mac_addr": port.mac_address,
            "fixed_ips": [{"subnet_id": str(ip.subnet_id), "ip_address": ip.ip_address} for ip in port.fixed_ips.all()]}


def check_interface_state(instance, action):
    if instance.vm_state not in INTERFACE_VM_STATES or instance.task_state is not None:
        raise Conflict(f"Cannot '{action}' instance {instance.id} while it is in vm_state {instance.vm_state}"
                       f"{'' if instance.task_state is None else ', task_state ' + instance.task_state}.")
    if not instance.host or instance.node is None:
        raise Conflict(f"Cannot '{action}' instance {instance.id}: it is not on any host.")


class InterfaceListView(ComputeView):
    policy = {"get": "reader", "post": "member"}

    def get(self, request, server_id):
        instance = find_instance(request, server_id)
        return Response({"interfaceAttachments": [attachment_body(port)
                                                  for port in network_ports.ports_of_device(instance.pk)]})

    def post(self, request, server_id):
        body = self.body("interfaceAttachment")
        instance = find_instance(request, server_id)
        port = attach_interface(request, instance, body.get("port_id"), body.get("net_id"), body.get("fixed_ips"))
        return Response({"interfaceAttachment": attachment_body(port)})


class InterfaceView(ComputeView):
    policy = {"get": "reader", "delete": "member"}

    def get(self, request, server_id, port_id):
        instance = find_instance(request, server_id)
        return Response({"interfaceAttachment": attachment_body(attached_port(instance, port_id))})

    def delete(self, request, server_id, port_id):
        instance = find_instance(request, server_id)
        detach_interface(instance, attached_port(instance, port_id))
        return Response(status=202)


def attached_port(instance, port_id):
    port = next((port for port in network_ports.ports_of_device(instance.pk) if str(port.pk) == str(port_id)), None)
    if port is None:
        raise NotFound(f"Port {port_id} is not attached")
    return port


def fixed_ip_of(fixed_ips):
    """The one address a Nova attach may name ([{"ip_address"}]), or None."""
    if fixed_ips is None:
        return None
    if not isinstance(fixed_ips, list) or len(fixed_ips) != 1 or not isinstance(fixed_ips[0], dict) or \
            set(fixed_ips[0]) != {"ip_address"}:
        raise BadRequest("Invalid input for field 'interfaceAttachment.fixed_ips': must be [{\"ip_address\": "
                         "...}] with one address.")
    try:
        return str(ipaddress.ip_address(fixed_ips[0]["ip_address"]))
    except ValueError:
        raise BadRequest(f"Invalid input for field 'interfaceAttachment.fixed_ips': invalid fixed IP address "
                         f"({fixed_ips[0]['ip_address']!r}).") from None


def attach_interface(request, instance, port_id, network_id, fixed_ips=None):
    """A port (the user's, or a new one on the network) attached to the
    instance and hot-plugged on its node; nothing is left attached if the
    node refuses."""
    if port_id and network_id:
        raise BadRequest("Must not input both network_id and port_id")
    fixed_ip = fixed_ip_of(fixed_ips)
    check_interface_state(instance, "attach_interface")
    credentials = request.auth
    with transaction.atomic():
        if port_id:
            port = network_ports.port_for_server(port_id, credentials.project_id, credentials.is_admin) \
                if is_uuid(str(port_id)) else None
            if port is None:
                raise NotFound(f"Port {port_id} could not be found.")
            if port.device_id:
                raise Conflict(f"Port {port_id} is still in use.")
            network_ports.attach_port(port, instance.pk, networking.device_owner(instance), instance.host)
            created = False
        else:
            if not network_id:
                raise BadRequest("Invalid input for field 'interfaceAttachment': 'port_id' or 'net_id' is required.")
            network = network_ports.network_for_server(network_id, credentials.project_id, credentials.is_admin) \
                if is_uuid(str(network_id)) else None
            if network is None:
                raise NotFound(f"Network {network_id} could not be found.")
            if fixed_ip is not None and network_ports.check_fixed_ip(network, fixed_ip) is not None:
                raise BadRequest(f"Fixed IP address {fixed_ip} is not available on network {network.pk}.")
            groups = network_ports.security_groups_named(instance.project_id, ["default"])
            port = network_ports.create_port(
                network, instance.project_id, fixed_ips=[{"ip_address": fixed_ip}] if fixed_ip else None,
                security_groups=groups, device_id=str(instance.pk), device_owner=networking.device_owner(instance),
                binding_host_id=instance.host)
            created = True
        networking.hold_port(instance.pk, port.pk, created)
    try:
        with waiting_for_node(instance, "Attaching an interface"):
            pipelines.attach_interface(instance.pk, instance.host, port.pk, conf.NODE_CALL_TIMEOUT)
    except Conflict:
        networking.release_port(instance.pk, port.pk)
        raise
    return network_ports.ports_of_device(instance.pk).get(pk=port.pk)


def detach_interface(instance, port):
    check_interface_state(instance, "detach_interface")
    with waiting_for_node(instance, "Detaching an interface"):
        pipelines.detach_interface(instance.pk, instance.host, port.pk, conf.NODE_CALL_TIMEOUT)
    networking.release_port(instance.pk, port.pk)


# -- server actions --------------------------------------------------------

def add_fixed_ip(request, instance, argument):
    """addFixedIp {"networkId"}: a new interface on that network."""
    network_id = argument.get("networkId") if isinstance(argument, dict) else None
    if not network_id:
        raise BadRequest("Invalid input for field 'addFixedIp.networkId': a network id is required.")
    attach_interface(request, instance, None, str(network_id))
    return Response(status=202)


def remove_fixed_ip(request, instance, argument):
    """removeFixedIp {"address"}: the interface holding the address goes."""
    address = argument.get("address") if isinstance(argument, dict) else None
    if not isinstance(address, str) or not address:
        raise BadRequest("Invalid input for field 'removeFixedIp.address': an address is required.")
    for port in network_ports.ports_of_device(instance.pk):
        if any(ip.ip_address == address for ip in port.fixed_ips.all()):
            detach_interface(instance, port)
            return Response(status=202)
    raise BadRequest(f"Instance {instance.id} has no fixed IP address {address}.")


def security_group_named(instance, argument, action):
    name = argument.get("name") if isinstance(argument, dict) else None
    if not isinstance(name, str) or not name:
        raise BadRequest(f"Invalid input for field '{action}.name': a security group name is required.")
    if network_ports.missing_security_group(instance.project_id, [name]) is not None:
        raise NotFound(f"Security group {name} not found for project {instance.project_id}.")
    return network_ports.security_groups_named(instance.project_id, [name])[0]


def add_security_group(request, instance, argument):
    group = security_group_named(instance, argument, "addSecurityGroup")
    network_ports.add_security_group_to_device(instance.pk, group)
    return Response(status=202)


def remove_security_group(request, instance, argument):
    group = security_group_named(instance, argument, "removeSecurityGroup")
    if not network_ports.remove_security_group_from_device(instance.pk, group):
        raise BadRequest(f"Security group {group.name} not associated with the instance {instance.id}.")
    return Response(status=202)


ACTIONS = {"addFixedIp": add_fixed_ip, "removeFixedIp": remove_fixed_ip,
           "addSecurityGroup": add_security_group, "removeSecurityGroup": remove_security_group}
