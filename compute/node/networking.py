"""The boot's network step and interface hot-plug, on the node: the
server's ports allocated (made, or the user's own taken) and bound to this
host through network.ports, plugged by the node's network agent (bridge,
VXLAN, DHCP entry, rules; `network.agent.node`), and marked ACTIVE. A
simulated node (libvirt's test driver) runs the same code without kernel
objects: nothing is plugged.

A failed plug raises: the step releases what it took, and the boot fails
or reschedules like after any other step."""
import logging

from django.db import transaction

from compute import networking
from compute.models import Instance, UnexpectedState, VmState
from compute.virt import Interface
from network import ports as network_ports
from network import topology
from network.agent import resources
from network.models import Port

try:
    from network.agent import node as network_agent
except ImportError:  # a host without the network agent still boots servers, unplugged
    network_agent = None

log = logging.getLogger(__name__)


def interfaces_of(instance_id):
    """The domain's NICs: one per port of the instance, in the order its
    ports were made, on the bridge the agent makes for the network."""
    ports = Port.objects.filter(device_id=str(instance_id)).order_by("created_at", "id").values_list(
        "pk", "mac_address", "network_id")
    return [Interface(mac=mac, bridge=resources.bridge_name(str(network_id)), tap=resources.tap_name(str(port_id)))
            for port_id, mac, network_id in ports]


def requested_networks(instance):
    """The request's networks as a list of {"network_id", "port_id",
    "fixed_ip"}; `auto` is the project's auto-allocated network."""
    requested = (instance.request_spec or {}).get("networks") or "none"
    if requested == "none":
        return []
    if requested == "auto":
        return [{"network_id": str(topology.get_or_create(instance.project_id).pk), "port_id": None,
                 "fixed_ip": None}]
    return requested


def allocate(node, instance):
    """The instance's ports, bound to this node: those held already (a
    repeated step), else made or taken as the request says, in one
    transaction with the record of which ones were made."""
    with transaction.atomic():
        instance = Instance.objects.select_for_update().get(pk=instance.pk)
        if instance.deleted or instance.vm_state != VmState.BUILDING:
            # Deleted (its ports released) or ended meanwhile: nothing to make.
            raise UnexpectedState(instance.pk, VmState.BUILDING, instance.vm_state)
        held = networking.held_ports(instance.pk, locked=instance)
        if held:
            ports = list(Port.objects.filter(pk__in=[entry["port_id"] for entry in held])
                         .select_related("network"))
        else:
            groups = None
            names = (instance.request_spec or {}).get("security_groups") or []
            if names:
                groups = network_ports.security_groups_named(instance.project_id, names)
            ports = []
            for entry in requested_networks(instance):
                port, created = take_port(node, instance, entry, groups)
                ports.append(port)
                held.append({"port_id": str(port.pk), "created": created})
            networking.set_held_ports(instance.pk, held, locked=instance)
        for port in ports:
            if port.binding_host_id != node.host or port.device_id != str(instance.pk):
                network_ports.attach_port(port, instance.pk, networking.device_owner(instance), node.host)
    return ports


def take_port(node, instance, entry, groups):
    """One port for the instance: the user's (attached to it) or a new one
    on the network (with the fixed IP asked for); returns (port, whether it
    was made for the instance)."""
    owner = networking.device_owner(instance)
    if entry.get("port_id"):
        port = Port.objects.select_related("network").get(pk=entry["port_id"])
        return network_ports.attach_port(port, instance.pk, owner, node.host), False
    network = network_ports.network_for_server(entry["network_id"], instance.project_id, is_admin=True)
    if network is None:
        raise LookupError(f"Network {entry['network_id']} is gone.")
    fixed_ips = [{"ip_address": entry["fixed_ip"]}] if entry.get("fixed_ip") else None
    port = network_ports.create_port(network, instance.project_id, fixed_ips=fixed_ips, security_groups=groups,
                                     device_id=str(instance.pk), device_owner=owner, binding_host_id=node.host)
    return port, True


def plug(node, port):
    """The port's kernel side on this node; a simulated node has none."""
    if node.simulated:
        return None
    if network_agent is None:
        log.warning("%s: no network agent on this host: port %s is bound but not plugged", node.host, port.pk)
        return None
    return network_agent.plug_port(str(port.pk))


def unplug(node, port_id):
    if node.simulated or network_agent is None:
        return
    network_agent.unplug_port(str(port_id))


def plumb(node, instance):
    """The network step: ports allocated, bound, plugged and ACTIVE. On a
    failure what was plugged is unplugged and the ports are released (made
    ones deleted, the user's given back) before the error goes on."""
    plugged = []
    try:
        ports = allocate(node, instance)
        for port in ports:
            plug(node, port)
            plugged.append(port.pk)
            network_ports.set_status(port.pk, Port.Status.ACTIVE)
    except Exception:
        for port_id in plugged:
            try:
                unplug(node, port_id)
            except Exception:  # noqa: BLE001  (the agent's resync removes what is left)
                log.exception("%s: could not unplug port %s", node.host, port_id)
        networking.release_ports(instance.pk)
        raise
    return ports


def unplug_instance(node, instance_id):
    """Unplugs the instance's ports on this node (a delete or a failed
    build); the rows are left to compute.networking.release_ports."""
    for port in network_ports.ports_of_device(instance_id):
        try:
            unplug(node, port.pk)
        except Exception:  # noqa: BLE001  (the agent's resync removes what is left)
            log.exception("%s: could not unplug port %s", node.host, port.pk)


def hot_plug(node, instance, port_id):
    """Plugs a port the API attached to the instance into its running (or
    stopped) domain: kernel side first, then the NIC; ACTIVE after."""
    port = Port.objects.select_related("network").get(pk=port_id)
    network_ports.attach_port(port, instance.pk, networking.device_owner(instance), node.host)
    plug(node, port)
    node.driver.attach_interface(node.domain_name(instance.pk), Interface(
        mac=port.mac_address, bridge=resources.bridge_name(str(port.network_id)), tap=resources.tap_name(str(port.pk))))
    network_ports.set_status(port.pk, Port.Status.ACTIVE)


def hot_unplug(node, instance, port_id):
    """Takes the port's NIC out of the domain, then its kernel side."""
    port = Port.objects.filter(pk=port_id).first()
    if port is not None:
        node.driver.detach_interface(node.domain_name(instance.pk), port.mac_address)
    unplug(node, port_id)


def move_here(node, instance_id):
    """The instance's ports bound and plugged on this node, where its
    domain is defined again (a resize to it, or a revert back)."""
    for port in network_ports.ports_of_device(instance_id):
        if port.binding_host_id != node.host:
            network_ports.bind_port(port, node.host)
        plug(node, port)
        network_ports.set_status(port.pk, Port.Status.ACTIVE)
