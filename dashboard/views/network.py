"""Networks, subnets and routers."""
from django.contrib import messages
from django.shortcuts import redirect, render

from dashboard.auth import panel
from dashboard.views.common import NETWORK, neutron_form


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
            return redirect("dashboard:networks")
    subnets = {}
    for subnet in request.api.get(f"{NETWORK}/subnets")["subnets"]:
        subnets.setdefault(subnet["network_id"], []).append(subnet)
    listing = [{**network, "subnet_rows": subnets.get(network["id"], []),
                "external": network.get("router:external")}
               for network in request.api.get(f"{NETWORK}/networks")["networks"]]
    return render(request, "dashboard/networks.html", {"networks": listing, "error": error, "form": request.POST,
                                                      "section": "networks"}, status=400 if error else 200)


@panel
def routers(request):
    error = ""
    if request.method == "POST":
        if request.POST.get("router_id"):
            router_id, subnet_id = request.POST["router_id"], request.POST.get("subnet_id", "")
            error = neutron_form(request, [("interface", lambda: request.api.put(
                f"{NETWORK}/routers/{router_id}/add_router_interface", {"subnet_id": subnet_id}))])
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
    networks = request.api.get(f"{NETWORK}/networks")["networks"]
    names = {network["id"]: network["name"] or network["id"] for network in networks}
    subnets = request.api.get(f"{NETWORK}/subnets")["subnets"]
    interfaces = {}
    for port in request.api.get(f"{NETWORK}/ports", device_owner="network:router_interface")["ports"]:
        interfaces.setdefault(port["device_id"], []).append(
            ", ".join(f"{names.get(port['network_id'], port['network_id'])} {ip['ip_address']}"
                      for ip in port.get("fixed_ips", [])))
    listing = [{**router, "gateway": names.get((router.get("external_gateway_info") or {}).get("network_id"), ""),
                "interfaces": interfaces.get(router["id"], [])}
               for router in request.api.get(f"{NETWORK}/routers")["routers"]]
    return render(request, "dashboard/routers.html", {
        "routers": listing, "subnets": subnets, "names": names, "error": error, "form": request.POST,
        "external_networks": [network for network in networks if network.get("router:external")],
        "section": "routers"}, status=400 if error else 200)
