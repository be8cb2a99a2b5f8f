"""Routers (external gateway, interfaces, static routes) and floating IPs,
as rows the node agent will plumb. A router's legs are ports it owns:
network:router_gateway on the external network, network:router_interface
on each attached subnet, as in Neutron."""
import ipaddress

from django.db import transaction
from rest_framework.decorators import action
from rest_framework.response import Response

from cloud.errors import BadRequest, describe_validation_error
from network import changes, conf, errors, ports, quotas
from network.api import serializers as bodies
from network.api.base import NeutronViewSet, admin_status, as_address, as_bool, as_uuid, policy_denied
from network.api.views import network_visible_to
from network.models import FloatingIP, IPAllocation, Network, Port, Router, Subnet

ROUTER_POLICY = {**NeutronViewSet.policy, "add_router_interface": "member", "remove_router_interface": "member"}


def external_network(network_id, what, caller):
    """The external network a router gateway or floating IP (`what`) names:
    a network the caller cannot see is Neutron's 404, one that is not
    external a 400."""
    network = Network.objects.filter(network_visible_to(caller), pk=network_id).first()
    if network is None:
        raise errors.not_found("Network", network_id)
    if not network.external:
        raise errors.bad_request("BadRequest", f"Bad {what} request: Network {network_id} is not a valid "
                                               f"external network.")
    return network


def interface_ports(router):
    return Port.objects.filter(device_id=str(router.id), device_owner=ports.ROUTER_INTERFACE)


def attached_subnets(router):
    """The subnets a router has a leg in, by id."""
    return Subnet.objects.filter(allocations__port__in=interface_ports(router)).distinct()


class RouterViewSet(NeutronViewSet):
    queryset = Router.objects.select_related("gateway_port").prefetch_related("gateway_port__fixed_ips")
    serializer_class = bodies.RouterSerializer
    kind, member_name, collection_name = "Router", "router", "routers"
    policy = ROUTER_POLICY
    filters = {"admin_state_up": ("admin_state_up", as_bool), "status": "status",
               "external_gateway_info:network_id": ("gateway_network_id", as_uuid)}

    def render(self, router, tags):
        body = self.common(router, tags)
        gateway = None
        if router.gateway_network_id:
            gateway = {"network_id": str(router.gateway_network_id), "enable_snat": router.enable_snat,
                       "external_fixed_ips": [{"subnet_id": str(ip.subnet_id), "ip_address": ip.ip_address}
                                              for ip in router.gateway_port.fixed_ips.all()]
                       if router.gateway_port else []}
        body.update({"admin_state_up": router.admin_state_up, "status": router.status,
                     "external_gateway_info": gateway, "routes": router.routes, "distributed": False, "ha": False,
                     "availability_zone_hints": router.availability_zone_hints,
                     "availability_zones": [conf.AVAILABILITY_ZONE], "flavor_id": None})
        return body

    def gateway_body(self, values):
        """The external_gateway_info asked for: None (or Neutron's empty
        object) removes the gateway."""
        gateway = values.pop("external_gateway_info", None) or None
        if gateway is not None and "network_id" not in gateway:
            raise BadRequest("Invalid input for field 'external_gateway_info.network_id': This field is required.")
        if gateway and not self.caller.is_admin:
            for attribute in ("enable_snat", "external_fixed_ips"):
                if attribute in gateway:
                    operation = "create" if self.action == "create" else "update"
                    raise policy_denied(f"{operation}_router:external_gateway_info:{attribute}")
        return gateway

    def set_gateway(self, router, gateway):
        """Replaces the router's gateway (None: removes it), inside the
        caller's transaction."""
        if router.gateway_port_id:
            if gateway is None or str(gateway["network_id"]) != str(router.gateway_network_id):
                if FloatingIP.objects.filter(router=router).exists():
                    raise errors.conflict("RouterExternalGatewayInUseByFloatingIp",
                                          f"Gateway cannot be updated for router {router.id}, since a gateway to "
                                          f"external network {router.gateway_network_id} is required by one or "
                                          f"more floating IPs.")
                old = router.gateway_port
                router.gateway_port, router.gateway_network = None, None
                router.save()
                ports.delete_port(old)
            elif gateway is not None:
                if "enable_snat" in gateway:
                    router.enable_snat = gateway["enable_snat"]
                    router.save()
                return
        if gateway is None:
            return
        network = external_network(gateway["network_id"], "router", self.caller)
        fixed_ips = [{key: str(value) for key, value in dict(entry).items()}
                     for entry in gateway.get("external_fixed_ips", [])] or None
        port = ports.create_port(network, "", fixed_ips=fixed_ips, count_quota=False,
                                 device_owner=ports.ROUTER_GATEWAY, device_id=str(router.id),
                                 port_security_enabled=False, security_groups=[])
        router.gateway_network, router.gateway_port = network, port
        router.enable_snat = gateway.get("enable_snat", True)
        router.save()

    def check_routes(self, router, routes):
        connected = [ipaddress.ip_network(subnet.cidr) for subnet in attached_subnets(router)]
        if router.gateway_port_id:
            connected += [ipaddress.ip_network(allocation.subnet.cidr)
                          for allocation in router.gateway_port.fixed_ips.select_related("subnet")]
        for route in routes:
            nexthop = ipaddress.ip_address(route["nexthop"])
            if not any(nexthop in cidr for cidr in connected):
                raise errors.bad_request("InvalidRoutes",
                                         f"Invalid format for routes: {route}, the nexthop is not connected with "
                                         f"router")

    def create(self, request, *args, **kwargs):
        values = self.validated()
        project_id = self.owner_of(values)
        gateway = self.gateway_body(values)
        routes = [dict(route) for route in values.pop("routes", None) or []]
        values = {name: value for name, value in values.items() if name not in ("distributed", "ha")}
        with transaction.atomic():
            quotas.reserve(project_id, "router")
            router = Router.objects.create(project_id=project_id, status=admin_status(
                values.get("admin_state_up", True)), **values)
            self.set_gateway(router, gateway)
            if routes:
                self.check_routes(router, routes)
                router.routes = routes
                router.save()
            changes.router_changed(router.pk)
        return self.show(self.get_queryset().get(pk=router.pk), 201)

    def partial_update(self, request, *args, **kwargs):
        router = self.writable(self.get_object())
        values = self.validated(partial=True)
        values = {name: value for name, value in values.items() if name not in ("distributed", "ha")}
        with transaction.atomic():
            router = Router.objects.select_for_update().get(pk=router.pk)
            if "external_gateway_info" in values:
                self.set_gateway(router, self.gateway_body(values))
            if "routes" in values:
                routes = [dict(route) for route in values.pop("routes") or []]
                self.check_routes(router, routes)
                router.routes = routes
            for name, value in values.items():
                setattr(router, name, value)
            router.status = admin_status(router.admin_state_up)
            router.save()
            changes.router_changed(router.pk)
        return self.show(self.get_queryset().get(pk=router.pk))

    def perform_destroy(self, router):
        if interface_ports(router).exists():
            raise errors.conflict("RouterInUse", f"Router {router.id} still has ports")
        changes.router_changed(router.pk)
        self.set_gateway(router, None)
        router.delete()

    # --- interfaces

    def interface_body(self):
        serializer = bodies.RouterInterfaceSerializer(data=self.request.data if isinstance(self.request.data, dict)
                                                      else None)
        if not serializer.is_valid():
            raise BadRequest(f"Bad router request: {describe_validation_error(serializer.errors)}")
        return serializer.validated_data

    def subnet_for(self, subnet_id):
        subnet = Subnet.objects.select_related("network").filter(pk=subnet_id).first()
        if subnet is None or not (self.caller.is_admin or subnet.project_id == self.caller.project_id
                                  or subnet.network.shared):
            raise errors.not_found("Subnet", subnet_id)
        return subnet

    def interface_info(self, router, port):
        subnet_ids = [str(ip.subnet_id) for ip in port.fixed_ips.all()]
        return {"id": str(router.id), "tenant_id": router.project_id, "project_id": router.project_id,
                "port_id": str(port.id), "network_id": str(port.network_id),
                "subnet_id": subnet_ids[0] if subnet_ids else None, "subnet_ids": subnet_ids}

    def check_new_leg(self, router, subnet):
        """A router has one leg per subnet, and its subnets (of one IP
        version) do not overlap."""
        cidr = ipaddress.ip_network(subnet.cidr)
        for attached in attached_subnets(router):
            if attached.id == subnet.id:
                raise errors.bad_request("BadRequest", f"Bad router request: Router already has a port on "
                                                       f"subnet {subnet.id}.")
            attached_cidr = ipaddress.ip_network(attached.cidr)
            if attached_cidr.version == cidr.version and attached_cidr.overlaps(cidr):
                raise errors.bad_request("BadRequest", f"Bad router request: Cidr {subnet.cidr} of subnet "
                                                       f"{subnet.id} overlaps with cidr {attached.cidr} of subnet "
                                                       f"{attached.id}.")

    @staticmethod
    def ipv6_leg_on(router, network_id):
        """The router's leg on the network that holds an IPv6 address, or None."""
        return interface_ports(router).filter(
            network_id=network_id, fixed_ips__subnet__ip_version=6).order_by("created_at", "id").first()

    @action(detail=True, methods=["put"])
    def add_router_interface(self, request, pk=None):
        router = self.writable(self.get_object())
        body = self.interface_body()
        with transaction.atomic():
            router = Router.objects.select_for_update().get(pk=router.pk)
            if "subnet_id" in body:
                subnet = self.subnet_for(body["subnet_id"])
                if not subnet.gateway_ip:
                    raise errors.bad_request("BadRequest", "Bad router request: Subnet for router interface "
                                                           "must have a gateway IP.")
                self.check_new_leg(router, subnet)
                gateway = {"subnet_id": str(subnet.id), "ip_address": subnet.gateway_ip}
                port = self.ipv6_leg_on(router, subnet.network_id) if subnet.ip_version == 6 else None
                if port is not None:
                    # As Neutron: a further IPv6 subnet of a network joins the
                    # router's IPv6 leg there (one interface, each prefix
                    # advertised on it), and the answer names that subnet.
                    held = [{"subnet_id": str(a.subnet_id), "ip_address": a.ip_address} for a in port.fixed_ips.all()]
                    port = ports.update_port(port, fixed_ips=held + [gateway])
                    changes.router_changed(router.pk)
                    info = self.interface_info(router, port)
                    info["subnet_id"], info["subnet_ids"] = str(subnet.id), [str(subnet.id)]
                    return Response(info)
                port = ports.create_port(subnet.network, router.project_id, count_quota=False,
                                         fixed_ips=[gateway], device_owner=ports.ROUTER_INTERFACE,
                                         device_id=str(router.id), port_security_enabled=False, security_groups=[])
            else:
                port = Port.objects.select_for_update().filter(pk=body["port_id"]).first()
                if port is None or not (self.caller.is_admin or port.project_id == self.caller.project_id):
                    raise errors.not_found("Port", body["port_id"])
                if port.device_id or port.device_owner:
                    raise errors.conflict("PortInUse", f"Unable to complete operation on port {port.id} for "
                                                       f"network {port.network_id}. Port already has an attached "
                                                       f"device {port.device_id}.")
                allocations = list(port.fixed_ips.select_related("subnet"))
                if not allocations:
                    raise errors.bad_request("BadRequest", "Bad router request: Router port must have at least "
                                                           "one fixed IP.")
                # As Neutron: the router takes every fixed IP of the port, at
                # most one of them IPv4.
                if sum(allocation.subnet.ip_version == 4 for allocation in allocations) > 1:
                    raise errors.bad_request("BadRequest", "Bad router request: Cannot have multiple IPv4 subnets "
                                                           "on router port.")
                for allocation in allocations:
                    self.check_new_leg(router, allocation.subnet)
                port.device_owner, port.device_id = ports.ROUTER_INTERFACE, str(router.id)
                port.save()
            changes.router_changed(router.pk)
        return Response(self.interface_info(router, port))

    @action(detail=True, methods=["put"])
    def remove_router_interface(self, request, pk=None):
        router = self.writable(self.get_object())
        body = self.interface_body()
        with transaction.atomic():
            router = Router.objects.select_for_update().get(pk=router.pk)
            legs = interface_ports(router)
            if "port_id" in body:
                port = legs.filter(pk=body["port_id"]).first()
                if port is None:
                    raise errors.not_found_as("RouterInterfaceNotFound",
                                              f"Router {router.id} does not have an interface with id "
                                              f"{body['port_id']}")
            else:
                port = legs.filter(fixed_ips__subnet_id=body["subnet_id"]).first()
                if port is None:
                    raise errors.not_found_as("RouterInterfaceNotFoundForSubnet",
                                              f"Router {router.id} has no interface on subnet {body['subnet_id']}")
            allocations = list(port.fixed_ips.select_related("subnet"))
            subnets = [allocation.subnet for allocation in allocations]
            if "subnet_id" in body:
                # By subnet, from a leg in several: only that subnet's address goes (as in Neutron).
                subnets = [subnet for subnet in subnets if str(subnet.id) == str(body["subnet_id"])]
            in_use = FloatingIP.objects.filter(router=router, port__fixed_ips__subnet__in=subnets).first()
            if in_use is not None:
                raise errors.conflict("RouterInterfaceInUseByFloatingIP",
                                      f"Router interface for subnet {subnets[0].id} on router {router.id} cannot be "
                                      f"deleted, as it is required by one or more floating IPs.")
            info = self.interface_info(router, port)
            changes.router_changed(router.pk)
            if len(subnets) < len(allocations):
                info["subnet_id"], info["subnet_ids"] = str(subnets[0].id), [str(subnets[0].id)]
                ports.update_port(port, fixed_ips=[{"subnet_id": str(a.subnet_id), "ip_address": a.ip_address}
                                                   for a in allocations if a.subnet not in subnets])
            else:
                ports.delete_port(port)
            changes.router_changed(router.pk)
        return Response(info)


class FloatingIPViewSet(NeutronViewSet):
    queryset = FloatingIP.objects.all()
    serializer_class, update_serializer_class = bodies.FloatingIPSerializer, bodies.FloatingIPUpdateSerializer
    kind, member_name, collection_name = "FloatingIP", "floatingip", "floatingips"
    admin_only = ("floating_ip_address",)
    filters = {"floating_network_id": ("floating_network_id", as_uuid), "port_id": ("port_id", as_uuid),
               "router_id": ("router_id", as_uuid), "status": "status",
               "floating_ip_address": ("floating_ip_address", as_address),
               "fixed_ip_address": ("fixed_ip_address", as_address)}
    sort_keys = {"floating_ip_address": "floating_ip_address", "status": "status"}

    def render(self, floating_ip, tags):
        body = self.common(floating_ip, tags)
        del body["name"]
        body.update({
            "floating_network_id": str(floating_ip.floating_network_id),
            "floating_ip_address": floating_ip.floating_ip_address,
            "port_id": str(floating_ip.port_id) if floating_ip.port_id else None,
            "fixed_ip_address": floating_ip.fixed_ip_address,
            "router_id": str(floating_ip.router_id) if floating_ip.router_id else None,
            "status": floating_ip.status, "port_forwardings": [],
        })
        return body

    def association(self, floating_ip_network, port_id, fixed_ip_address, exclude=None):
        """(port, fixed IP, router) for associating a floating IP of
        `floating_ip_network` with `port_id`."""
        # Locked until commit: a port deleted meanwhile is a 404, not a dangling association.
        port = Port.objects.select_for_update(no_key=True).filter(pk=port_id).first()
        if port is None or not (self.caller.is_admin or port.project_id == self.caller.project_id):
            raise errors.not_found("Port", port_id)
        allocations = list(port.fixed_ips.select_related("subnet"))
        # Floating IPs are IPv4 (as in Neutron): a dual-stack port's IPv4 address.
        allocation = next((a for a in allocations if a.subnet.ip_version == 4
                           and fixed_ip_address in (None, a.ip_address)), None)
        if allocation is None:
            if fixed_ip_address is not None:
                raise errors.bad_request("BadRequest", f"Bad floatingip request: Port {port.id} does not have "
                                                       f"fixed ip {fixed_ip_address}.")
            raise errors.bad_request("BadRequest", f"Bad floatingip request: Port {port.id} does not have any "
                                                   f"IPv4 address.")
        taken = FloatingIP.objects.filter(port=port, fixed_ip_address=allocation.ip_address)
        if exclude is not None:
            taken = taken.exclude(pk=exclude.pk)
        if taken.exists():
            raise errors.conflict("FloatingIPPortAlreadyAssociated",
                                  f"Cannot associate floating IP with port {port.id} using fixed IP "
                                  f"{allocation.ip_address}, as that fixed IP already has a floating IP on "
                                  f"external network {floating_ip_network.id}.")
        # device_id is text: the routers' ids are read first, not compared across types in SQL.
        router_ids = [as_uuid(device_id, "device_id") for device_id in
                      interface_ports_on(allocation.subnet).values_list("device_id", flat=True)]
        router = Router.objects.filter(gateway_network=floating_ip_network, id__in=router_ids).first()
        if router is None:
            raise errors.not_found_as("ExternalGatewayForFloatingIPNotFound",
                                      f"External network {floating_ip_network.id} is not reachable from subnet "
                                      f"{allocation.subnet_id}. Therefore, cannot associate Port {port.id} with a "
                                      f"Floating IP.")
        return port, allocation.ip_address, router

    def create(self, request, *args, **kwargs):
        values = self.validated()
        project_id = self.owner_of(values)
        network = external_network(values["floating_network_id"], "floatingip", self.caller)
        fixed_ips = None
        if values.get("floating_ip_address") or values.get("subnet_id"):
            entry = {}
            if values.get("subnet_id"):
                entry["subnet_id"] = str(values["subnet_id"])
            if values.get("floating_ip_address"):
                entry["ip_address"] = values["floating_ip_address"]
            fixed_ips = [entry]
        with transaction.atomic():
            # The project's quota lock first, as every create takes it.
            quotas.reserve(project_id, "floatingip")
            association = (None, None, None)
            if values.get("port_id"):
                association = self.association(network, values["port_id"], values.get("fixed_ip_address"))
            floating_port = ports.create_port(network, "", fixed_ips=fixed_ips, count_quota=False,
                                              device_owner=ports.FLOATING_IP, port_security_enabled=False,
                                              security_groups=[])
            port, fixed_ip, router = association
            floating_ip = FloatingIP.objects.create(
                project_id=project_id, description=values.get("description", ""), floating_network=network,
                floating_port=floating_port, floating_ip_address=floating_port.fixed_ips.get().ip_address,
                port=port, fixed_ip_address=fixed_ip, router=router, status="DOWN")
            floating_port.device_id = str(floating_ip.id)
            floating_port.save(update_fields=["device_id"])
            if router is not None:
                changes.router_changed(router.pk)
        return self.show(floating_ip, 201)

    def partial_update(self, request, *args, **kwargs):
        floating_ip = self.writable(self.get_object())
        values = self.validated(partial=True)
        with transaction.atomic():
            floating_ip = FloatingIP.objects.select_for_update().get(pk=floating_ip.pk)
            previous_router = floating_ip.router_id
            if "port_id" in values:
                if values["port_id"] is None:
                    floating_ip.port, floating_ip.fixed_ip_address, floating_ip.router = None, None, None
                    floating_ip.status = "DOWN"
                else:
                    port, fixed_ip, router = self.association(floating_ip.floating_network, values["port_id"],
                                                              values.get("fixed_ip_address"), exclude=floating_ip)
                    floating_ip.port, floating_ip.fixed_ip_address, floating_ip.router = port, fixed_ip, router
            if "description" in values:
                floating_ip.description = values["description"]
            floating_ip.save()
            for router_id in {previous_router, floating_ip.router_id} - {None}:
                changes.router_changed(router_id)
        return self.show(floating_ip)

    def perform_destroy(self, floating_ip):
        floating_port = floating_ip.floating_port
        if floating_ip.router_id:
            changes.router_changed(floating_ip.router_id)
        floating_ip.delete()
        ports.delete_port(floating_port)


def interface_ports_on(subnet):
    return Port.objects.filter(device_owner=ports.ROUTER_INTERFACE,
                               id__in=IPAllocation.objects.filter(subnet=subnet).values("port_id"))

