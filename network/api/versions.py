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
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard "
                                                               "attributes"),
    ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number "
                                                             "of neutron resources."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron "
                                                       "resources that have Neutron standard attributes."),
    ("standard-attr-tag", "Tag support for resources with standard attribute",
     "Enables to set tag on resources with standard attribute."),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
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
    RESOURCES = ("networks", "subnets", "ports", "extensions")

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
