"""Networks, subnets, routers and floating IPs."""
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.auth import panel
from dashboard.client import ApiFailure
from dashboard.views.common import (COMPUTE, MAX_PAGE_SIZE, NETWORK, deleted, neutron_form, paged, said_next,
                                    split_list)


def network_names(networks):
    return {network["id"]: network["name"] or network["id"] for network in networks}


def port_addresses(port):
    return ", ".join(ip["ip_address"] for ip in port.get("fixed_ips", []))


# ---------------------------------------------------------------- networks

@panel
def networks(request):
    error = ""
    if request.method == "POST":
        name, cidr = request.POST.get("name", "").strip(), request.POST.get("cidr", "").strip()
        made = {}

        def create_network():
            made["network"] = request.api.post(f"{NETWORK}/networks", {"network": {"name": name}})["network"]

        def create_subnet():
            request.api.post(f"{NETWORK}/subnets", {"subnet": {
                "network_id": made["network"]["id"], "name": f"{name}-subnet", "cidr": cidr, "ip_version": 4}})

        steps = [("network", create_network)] + ([("subnet", create_subnet)] if cidr else [])
        error = neutron_form(request, steps)
        if not error:
            messages.success(request, f"Created network {name}.")
            return redirect("dashboard:network", network_id=made["network"]["id"])
    rows, pages = paged(request, f"{NETWORK}/networks", "networks")
    subnets = {}
    if rows:
        for subnet in request.api.get(f"{NETWORK}/subnets", network_id=[row["id"] for row in rows])["subnets"]:
            subnets.setdefault(subnet["network_id"], []).append(subnet)
    listing = [{**network, "subnet_rows": subnets.get(network["id"], []),
                "external": network.get("router:external")} for network in rows]
    return render(request, "dashboard/networks.html", {
        "networks": listing, **pages, "error": error,
        "form": request.POST, "section": "networks"}, status=400 if error else 200)


def subnet_body(network_id, post):
    """A subnet create body from the form: blank fields are the API's
    defaults; a pool is "first-last"; DNS servers a free list."""
    subnet = {"network_id": network_id, "name": post.get("name", "").strip(), "ip_version": 4,
              "cidr": post.get("cidr", "").strip(), "enable_dhcp": post.get("enable_dhcp") == "on"}
    if post.get("no_gateway") == "on":
        subnet["gateway_ip"] = None
    elif post.get("gateway_ip", "").strip():
        subnet["gateway_ip"] = post["gateway_ip"].strip()
    pools = []
    for line in post.get("allocation_pools", "").splitlines():
        if line.strip():
            start, _, end = line.strip().partition("-")
            pools.append({"start": start.strip(), "end": end.strip()})
    if pools:
        subnet["allocation_pools"] = pools
    servers = split_list(post.get("dns_nameservers", ""))
    if servers:
        subnet["dns_nameservers"] = servers
    return {"subnet": subnet}


@panel
def network(request, network_id):
    """A network with its subnets and a page of its ports; the subnet form."""
    network = request.api.get(f"{NETWORK}/networks/{network_id}")["network"]
    error = ""
    if request.method == "POST":
        error = neutron_form(request, [("subnet", lambda: request.api.post(
            f"{NETWORK}/subnets", subnet_body(network_id, request.POST)))])
        if not error:
            messages.success(request, f"Created subnet {request.POST.get('name', '').strip()}.")
            return redirect("dashboard:network", network_id=network_id)
    subnets = request.api.get(f"{NETWORK}/subnets", network_id=network_id)["subnets"]
    ports, pages = paged(request, f"{NETWORK}/ports", "ports", network_id=network_id)
    subnet_names = {subnet["id"]: subnet["name"] or subnet["cidr"] for subnet in subnets}
    port_rows = [{**port, "addresses": ", ".join(
        f"{ip['ip_address']} ({subnet_names.get(ip['subnet_id'], ip['subnet_id'])})"
        for ip in port.get("fixed_ips", []))} for port in ports]
    return render(request, "dashboard/network.html", {
        "network": network, "subnets": subnets, "ports": port_rows, **pages, "error": error,
        "form": request.POST if request.method == "POST" else {"enable_dhcp": "on"},
        "section": "networks"}, status=400 if error else 200)


@require_POST
@panel
def network_delete(request, network_id):
    network = request.api.get(f"{NETWORK}/networks/{network_id}")["network"]
    if deleted(request, f"{NETWORK}/networks/{network_id}", f"Deleted network {network['name'] or network_id}."):
        return redirect("dashboard:networks")
    return redirect("dashboard:network", network_id=network_id)


@require_POST
@panel
def subnet_delete(request, subnet_id):
    subnet = request.api.get(f"{NETWORK}/subnets/{subnet_id}")["subnet"]
    deleted(request, f"{NETWORK}/subnets/{subnet_id}", f"Deleted subnet {subnet['name'] or subnet['cidr']}.")
    return redirect("dashboard:network", network_id=subnet["network_id"])


# ---------------------------------------------------------------- routers

def add_interface(request, router_id, subnet_id):
    return neutron_form(request, [("interface", lambda: request.api.put(
        f"{NETWORK}/routers/{router_id}/add_router_interface", {"subnet_id": subnet_id}))])


@panel
def routers(request):
    error = ""
    if request.method == "POST":
        if request.POST.get("router_id"):
            error = add_interface(request, request.POST["router_id"], request.POST.get("subnet_id", ""))
            done = "Added the interface."
        else:
            router = {"name": request.POST.get("name", "").strip()}
            if request.POST.get("external_network"):
                router["external_gateway_info"] = {"network_id": request.POST["external_network"]}
            error = neutron_form(request, [("router", lambda: request.api.post(f"{NETWORK}/routers",
                                                                               {"router": router}))])
            done = f"Created router {router['name']}."
        if not error:
            messages.success(request, done)
            return redirect("dashboard:routers")
    rows, pages = paged(request, f"{NETWORK}/routers", "routers")
    networks = request.api.get(f"{NETWORK}/networks")["networks"]
    names = network_names(networks)
    subnets = request.api.get(f"{NETWORK}/subnets")["subnets"]
    interfaces = {}
    if rows:
        for port in request.api.get(f"{NETWORK}/ports", device_owner="network:router_interface",
                                    device_id=[row["id"] for row in rows])["ports"]:
            interfaces.setdefault(port["device_id"], []).append(
                f"{names.get(port['network_id'], port['network_id'])} {port_addresses(port)}")
    listing = [{**router, "gateway": names.get((router.get("external_gateway_info") or {}).get("network_id"), ""),
                "interfaces": interfaces.get(router["id"], [])} for router in rows]
    return render(request, "dashboard/routers.html", {
        "routers": listing, **pages,
        "subnets": subnets, "names": names, "error": error, "form": request.POST,
        "external_networks": [network for network in networks if network.get("router:external")],
        "section": "routers"}, status=400 if error else 200)


ROUTER_DONE = {"add_interface": "Added the interface.", "remove_interface": "Removed the interface.",
               "set_gateway": "Set the external gateway.", "clear_gateway": "Cleared the external gateway."}


@panel
def router(request, router_id):
    """A router: its gateway and interfaces, and the forms that change them."""
    router = request.api.get(f"{NETWORK}/routers/{router_id}")["router"]
    error = ""
    if request.method == "POST":
        action, path = request.POST.get("action", ""), f"{NETWORK}/routers/{router_id}"
        if action == "add_interface":
            error = add_interface(request, router_id, request.POST.get("subnet_id", ""))
        elif action == "remove_interface":
            error = neutron_form(request, [("", lambda: request.api.put(
                f"{path}/remove_router_interface", {"subnet_id": request.POST.get("subnet_id", "")}))])
        elif action == "set_gateway":
            error = neutron_form(request, [("", lambda: request.api.put(path, {"router": {
                "external_gateway_info": {"network_id": request.POST.get("network_id", "")}}}))])
        elif action == "clear_gateway":
            error = neutron_form(request, [("", lambda: request.api.put(
                path, {"router": {"external_gateway_info": None}}))])
        else:
            error = f"Unknown action {action!r}."
        if not error:
            messages.success(request, ROUTER_DONE[action])
            return redirect("dashboard:router", router_id=router_id)
    networks = request.api.get(f"{NETWORK}/networks")["networks"]
    names = network_names(networks)
    subnets = request.api.get(f"{NETWORK}/subnets")["subnets"]
    subnet_labels = {subnet["id"]: f"{subnet['name'] or subnet['id']} {subnet['cidr']}" for subnet in subnets}
    interfaces = [{"port": port, "network": names.get(port["network_id"], port["network_id"]),
                   "subnets": [{"id": ip["subnet_id"], "label": subnet_labels.get(ip["subnet_id"], ip["subnet_id"]),
                                "ip_address": ip["ip_address"]} for ip in port.get("fixed_ips", [])]}
                  for port in request.api.get(f"{NETWORK}/ports", device_id=router_id,
                                              device_owner="network:router_interface")["ports"]]
    gateway = router.get("external_gateway_info") or {}
    attached = {subnet["id"] for interface in interfaces for subnet in interface["subnets"]}
    external = [network for network in networks if network.get("router:external")]
    external_ids = {network["id"] for network in external}
    return render(request, "dashboard/router.html", {
        "router": router, "interfaces": interfaces, "error": error,
        "gateway": {**gateway, "network": names.get(gateway.get("network_id"), gateway.get("network_id", "")),
                    "addresses": ", ".join(ip["ip_address"] for ip in gateway.get("external_fixed_ips", []))},
        # What an interface may be added on: the subnets not yet attached, off the external networks.
        "subnets": [subnet for subnet in subnets if subnet["id"] not in attached
                    and subnet["network_id"] not in external_ids],
        "external_networks": external,
        "section": "routers"}, status=400 if error else 200)


@require_POST
@panel
def router_delete(request, router_id):
    router = request.api.get(f"{NETWORK}/routers/{router_id}")["router"]
    if deleted(request, f"{NETWORK}/routers/{router_id}", f"Deleted router {router['name'] or router_id}."):
        return redirect("dashboard:routers")
    return redirect("dashboard:router", router_id=router_id)


# ---------------------------------------------------------------- floating IPs

def server_ports(request):
    """The project's servers' ports, as choices "server (address)"; two
    calls however many servers."""
    project = request.credentials.project_id
    servers = {server["id"]: server["name"] or server["id"] for server in
               request.api.get(f"{COMPUTE}/servers", limit=MAX_PAGE_SIZE)["servers"]}
    return [{"id": port["id"], "server_id": port["device_id"],
             "label": f"{servers.get(port['device_id'], port['device_id'])} ({port_addresses(port)})"}
            for port in request.api.get(f"{NETWORK}/ports", project_id=project, limit=MAX_PAGE_SIZE)["ports"]
            if port.get("device_owner", "").startswith("compute:") and port.get("fixed_ips")]


@panel
def floating_ips(request):
    error = ""
    if request.method == "POST":
        network_id = request.POST.get("floating_network_id", "")
        error = neutron_form(request, [("", lambda: request.api.post(f"{NETWORK}/floatingips", {
            "floatingip": {"floating_network_id": network_id}}))])
        if not error:
            messages.success(request, "Allocated a floating IP.")
            return redirect("dashboard:floating_ips")
    rows, pages = paged(request, f"{NETWORK}/floatingips", "floatingips", project_id=request.credentials.project_id)
    networks = request.api.get(f"{NETWORK}/networks", **{"router:external": "true"})["networks"]
    names = network_names(networks)
    choices = server_ports(request)
    labels = {port["id"]: port["label"] for port in choices}
    listing = [{**row, "network": names.get(row["floating_network_id"], row["floating_network_id"]),
                "server_port": labels.get(row["port_id"], row["port_id"] or "")} for row in rows]
    return render(request, "dashboard/floating_ips.html", {
        "floating_ips": listing, **pages,
        "external_networks": networks, "ports": choices, "error": error, "section": "floating_ips"},
        status=400 if error else 200)


@require_POST
@panel
def floating_ip_action(request, floating_ip_id):
    """Associate with a server's port, disassociate, release."""
    action, path = request.POST.get("action", ""), f"{NETWORK}/floatingips/{floating_ip_id}"
    request.api.get(path)  # another project's is a 404 page; refusals below are said in place
    try:
        if action == "associate":
            request.api.put(path, {"floatingip": {"port_id": request.POST.get("port_id", "")}})
            messages.success(request, "Associated the floating IP.")
        elif action == "disassociate":
            request.api.put(path, {"floatingip": {"port_id": None}})
            messages.success(request, "Disassociated the floating IP.")
        elif action == "release":
            deleted(request, path, "Released the floating IP.")
        else:
            messages.error(request, f"Unknown action {action!r}.")
    except ApiFailure as failure:
        said_next(request, failure)
    return redirect("dashboard:floating_ips")
