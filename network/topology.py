"""Neutron's auto-allocated topology: on a project's first ask, a network,
an IPv4 subnet (from the default pool, conf.AUTO_ALLOCATE_CIDR) and a
router from it to the default external network, made once per project
however many ask at once. Nova's `networks: auto` boots on it."""
import ipaddress

from django.db import transaction

from network import conf, errors, ipam, ports, quotas
from network.models import Network, Port, Router, Subnet

NETWORK_NAME = "auto_allocated_network"
SUBNET_NAME = "auto_allocated_subnet_v4"
ROUTER_NAME = "auto_allocated_router"


def default_external_network():
    """The external network routers of auto-allocated topologies lead to:
    the oldest external network with a subnet."""
    return Network.objects.filter(external=True, subnets__isnull=False).order_by("created_at", "id").first()


def allocation_failure(reason):
    # Neutron's AutoAllocationFailure is a Conflict.
    return errors.conflict("AutoAllocationFailure", f"Deployment error: {reason}.")


def check_requirements():
    """Raises Neutron's AutoAllocationFailure when the deployment cannot
    give a topology (no default external network, no default pool)."""
    if default_external_network() is None:
        raise allocation_failure("No default router:external network")
    if not conf.AUTO_ALLOCATE_CIDR:
        raise allocation_failure("No default subnetpools defined")


def existing(project_id):
    return Network.objects.filter(project_id=project_id, name=NETWORK_NAME).order_by("created_at").first()


def can_allocate(project_id):
    """Whether a topology exists for the project or could be made (the
    dry run Nova asks before it accepts `networks: auto`)."""
    if existing(project_id) is not None:
        return True
    try:
        check_requirements()
    except errors.ApiError:
        return False
    return True


def get_or_create(project_id):
    """The project's auto-allocated network, made with its subnet and
    router the first time. Concurrent callers wait on the project's quota
    lock and find the first one's network."""
    network = existing(project_id)
    if network is not None:
        return network
    check_requirements()
    with transaction.atomic():
        quotas.lock_project(project_id)
        network = existing(project_id)
        if network is not None:
            return network
        external = default_external_network()
        quotas.reserve(project_id, "network")
        network = ipam.create_network(project_id=project_id, name=NETWORK_NAME, mtu=conf.VXLAN_MTU)
        cidr = ipaddress.ip_network(conf.AUTO_ALLOCATE_CIDR)
        gateway = cidr.network_address + 1
        quotas.reserve(project_id, "subnet")
        subnet = Subnet.objects.create(
            network=network, project_id=project_id, name=SUBNET_NAME, cidr=str(cidr), gateway_ip=str(gateway),
            allocation_pools=[{"start": str(gateway + 1), "end": str(cidr.broadcast_address - 1)}])
        quotas.reserve(project_id, "router")
        router = Router.objects.create(project_id=project_id, name=ROUTER_NAME)
        gateway_port = ports.create_port(external, "", count_quota=False, device_owner=ports.ROUTER_GATEWAY,
                                         device_id=str(router.pk), port_security_enabled=False, security_groups=[])
        router.gateway_network, router.gateway_port = external, gateway_port
        router.save()
        ports.create_port(network, project_id, count_quota=False,
                          fixed_ips=[{"subnet_id": str(subnet.pk), "ip_address": str(gateway)}],
                          device_owner=ports.ROUTER_INTERFACE, device_id=str(router.pk),
                          port_security_enabled=False, security_groups=[])
    return network


def delete(project_id):
    """Removes the project's topology (router, subnet, network); a 409
    NetworkInUse while ports of servers are still on it."""
    with transaction.atomic():
        quotas.lock_project(project_id)
        network = existing(project_id)
        if network is None:
            return False
        interfaces = Port.objects.filter(network=network, device_owner=ports.ROUTER_INTERFACE)
        if Port.objects.filter(network=network).exclude(pk__in=interfaces).exclude(
                device_owner=ports.DHCP).exists():
            raise errors.conflict("NetworkInUse", f"Unable to complete operation on network {network.pk}. There "
                                                  f"are one or more ports still in use on the network.")
        router_ids = set(interfaces.values_list("device_id", flat=True))
        for port in list(Port.objects.filter(network=network)):
            ports.delete_port(port)
        for router in Router.objects.filter(pk__in=router_ids, project_id=project_id, name=ROUTER_NAME):
            gateway_port = router.gateway_port
            router.delete()
            if gateway_port is not None:
                ports.delete_port(gateway_port)
        Subnet.objects.filter(network=network).delete()
        network.delete()
    return True
