"""The network topology: the project's networks, routers and servers and
how they are linked, as one JSON document (five API calls however big the
project) and a page that draws it and keeps it current."""
from django.http import JsonResponse
from django.shortcuts import render

from dashboard.auth import panel
from dashboard.views.common import COMPUTE, MAX_PAGE_SIZE, NETWORK

# How often the page re-reads the document (milliseconds).
POLL_MS = 3000


def legs(ports):
    return [{"id": port["id"], "network_id": port["network_id"],
             "addresses": [ip["ip_address"] for ip in port.get("fixed_ips", [])]} for port in ports]


def project_topology(request):
    project = request.credentials.project_id
    ports = request.api.get(f"{NETWORK}/ports", project_id=project, limit=MAX_PAGE_SIZE)["ports"]
    routers = request.api.get(f"{NETWORK}/routers", project_id=project, limit=MAX_PAGE_SIZE)["routers"]
    servers = request.api.get(f"{COMPUTE}/servers/detail", limit=MAX_PAGE_SIZE)["servers"]
    by_device = {}
    for port in ports:
        by_device.setdefault(port["device_id"], []).append(port)
    gateways = {router["id"]: (router.get("external_gateway_info") or {}) for router in routers}
    # The project's own networks, the shared and external ones, and any its
    # ports or gateways reach (an admin's list holds every project's).
    reached = {port["network_id"] for port in ports} | {gateway["network_id"] for gateway in gateways.values()
                                                        if gateway.get("network_id")}
    networks = [network for network in
                request.api.get(f"{NETWORK}/networks", limit=MAX_PAGE_SIZE)["networks"]
                if network["project_id"] == project or network["shared"] or network.get("router:external")
                or network["id"] in reached]
    kept = {network["id"] for network in networks}
    subnets = {}
    for subnet in request.api.get(f"{NETWORK}/subnets", limit=MAX_PAGE_SIZE)["subnets"]:
        if subnet["network_id"] in kept:
            subnets.setdefault(subnet["network_id"], []).append(
                {"id": subnet["id"], "name": subnet["name"], "cidr": subnet["cidr"]})
    return {
        "networks": [{"id": network["id"], "name": network["name"], "status": network["status"],
                      "external": bool(network.get("router:external")), "shared": network["shared"],
                      "subnets": subnets.get(network["id"], [])} for network in networks],
        "routers": [{"id": router["id"], "name": router["name"], "status": router["status"],
                     "gateway": {"network_id": gateways[router["id"]]["network_id"], "addresses": [
                         ip["ip_address"] for ip in gateways[router["id"]].get("external_fixed_ips", [])]}
                     if gateways[router["id"]].get("network_id") else None,
                     "ports": legs(port for port in by_device.get(router["id"], [])
                                   if port["device_owner"] == "network:router_interface")}
                    for router in routers],
        "servers": [{"id": server["id"], "name": server["name"], "status": server["status"],
                     "ports": legs(by_device.get(server["id"], []))} for server in servers],
    }


@panel
def topology_data(request):
    response = JsonResponse(project_topology(request))
    response["Cache-Control"] = "no-store"
    return response


@panel
def topology(request):
    return render(request, "dashboard/topology.html", {"section": "topology", "poll_ms": POLL_MS})
