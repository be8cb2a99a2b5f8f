"""Networking version discovery and the extensions list, as Neutron
answers them."""
from rest_framework.response import Response

from cloud.versions import link
from cloud.views import ApiView
from network import errors

UPDATED = "2013-04-04T00:00:00Z"

# Exactly the extensions this API implements: clients decide features from it.
EXTENSIONS = [
    ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("port-security", "Port Security", "Provides port security"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("security-group", "security-group", "The security groups extension."),
    ("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not"),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks "
                                    "and access to external networks via a NAT gateway."),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode",
     "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway"),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    ("quotas", "Quota management support", "Expose functions for quotas management per tenant"),
    ("quota_details", "Quota details management support", "Expose functions for quotas usage statistics "
                                                           "per project"),
    ("network-ip-availability", "Network IP Availability", "Provides IP availability data for each network "
                                                           "and subnet."),
    ("availability_zone", "Availability Zone", "The availability zone extension."),
    ("network_availability_zone", "Network Availability Zone", "Availability zone support for network."),
    ("router_availability_zone", "Router Availability Zone", "Availability zone support for router."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard "
                                                               "attributes"),
    ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number "
                                                             "of neutron resources."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron "
                                                       "resources that have Neutron standard attributes."),
    ("standard-attr-tag", "Tag support for resources with standard attribute",
     "Enables to set tag on resources with standard attribute."),
    # The older name of network tags, which clients and Tempest still look for.
    ("tag", "Tag support", "Enables to set tag on resources."),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("subnet-external-network", "Subnet belongs to an external network", "Informs if the subnet belongs to an "
                                                                        "external network"),
    ("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    ("ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering when "
                                                                 "listing ports"),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("service-type", "Neutron Service Type Management", "API for retrieving service providers for Neutron "
                                                        "advanced services"),
    ("agent", "agent", "The agent management extension."),
    ("auto-allocated-topology", "Auto Allocated Topology Services", "Auto Allocated Topology Services."),
]


def extension_document(alias, name, description):
    return {"alias": alias, "name": name, "description": description, "updated": UPDATED, "links": []}


def version_document(request):
    return {"id": "v2.0", "status": "CURRENT", "links": [link(request, "/network/v2.0/")]}


class NetworkRootView(ApiView):
    policy = {"get": "public"}

    def get(self, request):
        return Response({"versions": [version_document(request)]})


class NetworkV20View(ApiView):
    """/v2.0/: the resources this version has, as Neutron lists them."""

    policy = {"get": "public"}
    RESOURCES = ("networks", "subnets", "ports", "security-groups", "security-group-rules", "routers",
                 "floatingips", "quotas", "availability_zones", "network-ip-availabilities", "extensions")

    def get(self, request):
        return Response({"resources": [
            {"name": name.rstrip("s").replace("-", "_"), "collection": name,
             "links": [link(request, f"/network/v2.0/{name}")]} for name in self.RESOURCES]})


class ExtensionListView(ApiView):
    policy = {"get": "reader"}

    def get(self, request):
        return Response({"extensions": [extension_document(*extension) for extension in EXTENSIONS]})


class ExtensionView(ApiView):
    policy = {"get": "reader"}

    def get(self, request, alias):
        for extension in EXTENSIONS:
            if extension[0] == alias:
                return Response({"extension": extension_document(*extension)})
        raise errors.not_found("Extension", alias)
