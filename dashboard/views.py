"""The dashboard's pages. Each reads and acts through the REST API
(`request.api`, see dashboard.client) with the session's token."""
import base64
import json
import threading
import time
from datetime import datetime, timedelta, timezone

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST

from compute.models import BOOT_STEPS
from dashboard.auth import current_credentials, panel
from dashboard.client import ApiFailure

COMPUTE = "/compute/v2.1"
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# A building server's task_state, as the boot pipeline's step it stands for
# ("step 3 of 5: network"); two steps share block_device_mapping.
STEPS = {}
for number, step in enumerate(BOOT_STEPS, 1):
    label = f"step {number} of {len(BOOT_STEPS)}: {step.name.replace('_', ' ')}"
    STEPS[step.task_state] = f"{STEPS[step.task_state]} / {step.name.replace('_', ' ')}" \
        if step.task_state in STEPS else label


def pipeline_step(server):
    if server.get("status") == "BUILD":
        return STEPS.get(server.get("OS-EXT-STS:task_state"), "queued")
    return ""


def server_row(server, images=None):
    """What a row of the instances list shows of a server body."""
    addresses = [address["addr"] for entries in (server.get("addresses") or {}).values() for address in entries]
    flavor = server.get("flavor") or {}
    image = server.get("image") or {}
    image_id = image.get("id") if isinstance(image, dict) else ""
    return {
        "id": server["id"], "name": server.get("name", ""), "status": server.get("status", ""),
        "task_state": server.get("OS-EXT-STS:task_state") or "", "step": pipeline_step(server),
        "power_state": POWER_STATES.get(server.get("OS-EXT-STS:power_state"), ""),
        "addresses": ", ".join(addresses), "flavor": flavor.get("original_name", flavor.get("id", "")),
        "image": (images or {}).get(image_id, image_id or "(volume)"), "created": server.get("created", ""),
        "key_name": server.get("key_name") or "", "fault": (server.get("fault") or {}).get("message", ""),
    }


POWER_STATES = {0: "no state", 1: "running", 3: "paused", 4: "shut down", 6: "crashed", 7: "suspended"}


def image_names(request):
    return {image["id"]: image["name"] or image["id"]
            for image in request.api.get("/image/v2/images", limit=MAX_PAGE_SIZE)["images"]}


def bar(label, used, limit, unit=""):
    """A quota bar: `limit` -1 is unlimited."""
    percent = 0 if limit in (-1, 0, None) else min(100, round(100 * used / limit))
    return {"label": label, "used": used, "limit": "unlimited" if limit == -1 else limit, "unit": unit,
            "percent": percent, "level": "high" if percent >= 90 else "mid" if percent >= 70 else "low"}


@panel
def overview(request):
    project = request.credentials.project_id
    compute = request.api.get(f"{COMPUTE}/limits")["limits"]["absolute"]
    volume = request.api.get(f"/volume/v3/{project}/limits")["limits"]["absolute"]
    network = request.api.get(f"/network/v2.0/quotas/{project}/details")["quota"]
    bars = [
        bar("Instances", compute["totalInstancesUsed"], compute["maxTotalInstances"]),
        bar("vCPUs", compute["totalCoresUsed"], compute["maxTotalCores"]),
        bar("RAM", compute["totalRAMUsed"], compute["maxTotalRAMSize"], "MB"),
        bar("Volumes", volume["totalVolumesUsed"], volume["maxTotalVolumes"]),
        bar("Volume storage", volume["totalGigabytesUsed"], volume["maxTotalVolumeGigabytes"], "GB"),
        bar("Floating IPs", network["floatingip"]["used"], network["floatingip"]["limit"]),
        bar("Security groups", network["security_group"]["used"], network["security_group"]["limit"]),
    ]
    return render(request, "dashboard/overview.html", {"bars": bars, "section": "overview"})


def page_size(request):
    try:
        return max(1, min(MAX_PAGE_SIZE, int(request.GET.get("limit", PAGE_SIZE))))
    except ValueError:
        return PAGE_SIZE


@panel
def instances(request):
    limit = page_size(request)
    params = {"limit": limit}
    if request.GET.get("marker"):
        params["marker"] = request.GET["marker"]
    body = request.api.get(f"{COMPUTE}/servers/detail", **params)
    images = image_names(request)
    rows = [server_row(server, images) for server in body["servers"]]
    next_page = None
    if body.get("servers_links") and rows:
        next_page = f"?limit={limit}&marker={rows[-1]['id']}"
    return render(request, "dashboard/instances.html", {
        "rows": rows, "next_page": next_page, "first_page": "marker" not in params, "limit": limit,
        "section": "instances", "live_since": now_iso(),
    })


def action_events(request, server_id):
    """The server's actions, newest first, each with its events (the API
    gives them per action)."""
    actions = request.api.get(f"{COMPUTE}/servers/{server_id}/os-instance-actions", limit=10)["instanceActions"]
    detailed = []
    for action in actions[:10]:
        detail = request.api.get(f"{COMPUTE}/servers/{server_id}/os-instance-actions/{action['request_id']}")
        detailed.append(detail["instanceAction"])
    return detailed


def console_tail(request, server_id):
    try:
        return request.api.post(f"{COMPUTE}/servers/{server_id}/action",
                                {"os-getConsoleOutput": {"length": 100}})["output"], ""
    except ApiFailure as failure:
        if failure.status in (401, 403, 404):
            raise
        return "", failure.message


@panel
def instance(request, server_id):
    server = request.api.get(f"{COMPUTE}/servers/{server_id}")["server"]
    row = server_row(server, image_names(request))
    console, console_error = console_tail(request, server_id)
    context = {"server": server, "row": row, "actions": action_events(request, server_id), "console": console,
               "console_error": console_error, "section": "instances", "live_since": now_iso()}
    if request.GET.get("partial"):  # the live region, re-read when the server changes
        return render(request, "dashboard/_instance_live.html", context)
    return render(request, "dashboard/instance.html", context)


@panel
def instance_console(request, server_id):
    """noVNC in the page: a one-time URL of the console proxy (the API's
    remote-consoles), embedded in a frame."""
    server = request.api.get(f"{COMPUTE}/servers/{server_id}")["server"]
    url, error = "", ""
    try:
        url = request.api.post(f"{COMPUTE}/servers/{server_id}/remote-consoles",
                               {"remote_console": {"protocol": "vnc", "type": "novnc"}})["remote_console"]["url"]
    except ApiFailure as failure:
        if failure.status in (401, 403, 404):
            raise
        error = failure.message
    return render(request, "dashboard/instance_console.html", {
        "row": server_row(server), "url": url, "error": error, "section": "instances"})


ACTIONS = {
    "start": {"os-start": None},
    "stop": {"os-stop": None},
    "reboot": {"reboot": {"type": "SOFT"}},
}


@require_POST
@panel
def instance_action(request, server_id):
    action = request.POST.get("action", "")
    try:
        if action == "delete":
            request.api.delete(f"{COMPUTE}/servers/{server_id}")
            messages.success(request, "Deleting the server.")
            return redirect("dashboard:instances")
        if action not in ACTIONS:
            messages.error(request, f"Unknown action {action!r}.")
        else:
            request.api.post(f"{COMPUTE}/servers/{server_id}/action", ACTIONS[action])
            messages.success(request, f"{action.capitalize()} requested.")
    except ApiFailure as failure:
        if failure.status in (401, 403, 404):
            raise
        messages.error(request, failure.message)
    return redirect("dashboard:instance", server_id=server_id)


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


LIVE_RETRY_MS = 3000
_live_streams = []


def live_streams():
    """The process's semaphore of open live streams (made at first use, from
    the setting)."""
    if not _live_streams:
        _live_streams.append(threading.BoundedSemaphore(settings.DASHBOARD_LIVE_STREAMS))
    return _live_streams[0]


@panel
def live(request):
    """Server-Sent Events: every change of the project's servers (the API's
    changes-since), as the row to put in place. The stream ends after a
    while and the browser's EventSource reconnects with the time it got to,
    so no worker is held for ever."""
    since = request.headers.get("Last-Event-ID") or request.GET.get("since") or now_iso()
    images = image_names(request)
    api = request.api

    def stream():
        # A stream holds one of the API process's few threads: past
        # DASHBOARD_LIVE_STREAMS open ones, a browser gets one look and
        # comes back later (polling) rather than starving the API.
        held = live_streams().acquire(blocking=False)
        yield "retry: 1000\n\n" if held else f"retry: {LIVE_RETRY_MS}\n\n"
        deadline = time.monotonic() + (settings.DASHBOARD_LIVE_SECONDS if held else 0)
        try:
            yield from polls(deadline)
        finally:
            if held:
                live_streams().release()

    def polls(deadline):
        nonlocal since
        while True:
            if current_credentials(request) is None:
                yield sse("logout", {})
                return
            # Read from a second back: a row written in the same second as
            # the previous poll is sent twice rather than missed.
            started = datetime.now(timezone.utc) - timedelta(seconds=1)
            try:
                changed = api.get(f"{COMPUTE}/servers/detail", **{"changes-since": since})["servers"]
            except ApiFailure:
                yield sse("logout", {})
                return
            for server in changed:
                row = server_row(server, images)
                html = "" if server.get("status") == "DELETED" else render_to_string(
                    "dashboard/_instance_row.html", {"row": row})
                yield sse("server", {**row, "html": html})
            since = started.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            yield f"id: {since}\n: poll\n\n"
            if time.monotonic() >= deadline:
                return
            time.sleep(settings.DASHBOARD_LIVE_INTERVAL)

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events on as they come
    return response


# ---------------------------------------------------------------- launch

def launch_choices(request):
    project = request.credentials.project_id
    return {
        "images": [image for image in request.api.get("/image/v2/images", limit=MAX_PAGE_SIZE)["images"]
                   if image.get("status") == "active"],
        "flavors": sorted(request.api.get(f"{COMPUTE}/flavors/detail")["flavors"],
                          key=lambda flavor: (flavor["ram"], flavor["vcpus"], flavor["name"])),
        "networks": request.api.get("/network/v2.0/networks")["networks"],
        "keypairs": [entry["keypair"] for entry in request.api.get(f"{COMPUTE}/os-keypairs")["keypairs"]],
        "security_groups": request.api.get("/network/v2.0/security-groups", project_id=project)["security_groups"],
    }


def launch_body(post):
    server = {"name": post.get("name", "").strip(), "imageRef": post.get("image", ""),
              "flavorRef": post.get("flavor", "")}
    networks = post.getlist("network")
    server["networks"] = [{"uuid": network} for network in networks] if networks else "none"
    if post.get("key_name"):
        server["key_name"] = post["key_name"]
    groups = post.getlist("security_group")
    if groups:
        server["security_groups"] = [{"name": name} for name in groups]
    if post.get("user_data", "").strip():
        server["user_data"] = base64.b64encode(post["user_data"].encode()).decode()
    count = post.get("count", "1").strip() or "1"
    server["min_count"] = server["max_count"] = int(count) if count.isdigit() else count
    return {"server": server}


@panel
def launch(request):
    context = {"section": "instances", "form": request.POST, "count": request.POST.get("count", "1")}
    if request.method == "POST":
        try:
            request.api.post(f"{COMPUTE}/servers", launch_body(request.POST))
        except ApiFailure as failure:
            if failure.status in (401, 403):
                raise
            context["error"] = failure.message
        else:
            messages.success(request, f"Launching {request.POST.get('name', '').strip()}.")
            return redirect("dashboard:instances")
    context.update(launch_choices(request))
    context["selected_networks"] = request.POST.getlist("network")
    context["selected_groups"] = request.POST.getlist("security_group") or ["default"]
    return render(request, "dashboard/launch.html", context, status=400 if context.get("error") else 200)


# ---------------------------------------------------------------- images, key pairs

@panel
def images(request):
    listing = request.api.get("/image/v2/images", limit=MAX_PAGE_SIZE)["images"]
    return render(request, "dashboard/images.html", {"images": listing, "section": "images"})


@panel
def keypairs(request):
    error = ""
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        keypair = {"name": name}
        if request.POST.get("public_key", "").strip():
            keypair["public_key"] = request.POST["public_key"].strip()
        try:
            created = request.api.post(f"{COMPUTE}/os-keypairs", {"keypair": keypair})["keypair"]
        except ApiFailure as failure:
            if failure.status in (401, 403):
                raise
            error = failure.message
        else:
            if "private_key" in created:
                # The only time the private key exists outside the user's
                # machine: it is sent once, never stored.
                response = HttpResponse(created["private_key"], content_type="application/x-pem-file")
                response["Content-Disposition"] = f'attachment; filename="{name}.pem"'
                return response
            messages.success(request, f"Imported key pair {name}.")
            return redirect("dashboard:keypairs")
    listing = [entry["keypair"] for entry in request.api.get(f"{COMPUTE}/os-keypairs")["keypairs"]]
    return render(request, "dashboard/keypairs.html", {"keypairs": listing, "error": error, "section": "keypairs",
                                                       "form": request.POST}, status=400 if error else 200)


@require_POST
@panel
def keypair_delete(request, name):
    request.api.delete(f"{COMPUTE}/os-keypairs/{name}")
    messages.success(request, f"Deleted key pair {name}.")
    return redirect("dashboard:keypairs")


# ---------------------------------------------------------------- networks, routers

NETWORK = "/network/v2.0"


def neutron_form(request, steps):
    """Runs the API calls of a form in order; the first refusal is shown in
    place (what the earlier calls made stays, and the message says so)."""
    done = []
    try:
        for label, call in steps:
            call()
            done.append(label)
    except ApiFailure as failure:
        if failure.status in (401, 403):
            raise
        made = f" ({', '.join(done)} made)" if done else ""
        return f"{failure.message}{made}"
    return ""


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


# ---------------------------------------------------------------- admin

@panel
def hypervisors(request):
    """Admin only: the API refuses other tokens, and that is the 403 page."""
    listing = request.api.get(f"{COMPUTE}/os-hypervisors/detail")["hypervisors"]
    rows = [{"name": hypervisor["hypervisor_hostname"], "state": hypervisor.get("state"),
             "status": hypervisor.get("status"),
             "bars": [bar("vCPUs", hypervisor["vcpus_used"], hypervisor["vcpus"]),
                      bar("RAM", hypervisor["memory_mb_used"], hypervisor["memory_mb"], "MB"),
                      bar("Disk", hypervisor["local_gb_used"], hypervisor["local_gb"], "GB")]}
            for hypervisor in listing]
    return render(request, "dashboard/hypervisors.html", {"rows": rows, "section": "hypervisors",
                                                          "admin_url": reverse("admin:index")})
