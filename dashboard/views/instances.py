"""Instances: the list with its live stream, an instance's page, console
and actions, and the launch form."""
import base64
import functools
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.views.decorators.http import require_POST

from compute.models import BOOT_STEPS
from dashboard.auth import current_credentials, panel
from dashboard.client import ApiFailure
from dashboard.views.common import COMPUTE, MAX_PAGE_SIZE, NETWORK, image_names, page_size

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
    """What a row of the instances list shows of a server body (its page's
    URL made here: a {% url %} per row is most of a long list's render)."""
    addresses = [address["addr"] for entries in (server.get("addresses") or {}).values() for address in entries]
    flavor = server.get("flavor") or {}
    image = server.get("image") or {}
    image_id = image.get("id") if isinstance(image, dict) else ""
    return {
        "id": server["id"], "url": instance_url(server["id"]), "name": server.get("name", ""),
        "status": server.get("status", ""),
        "task_state": server.get("OS-EXT-STS:task_state") or "", "step": pipeline_step(server),
        "power_state": POWER_STATES.get(server.get("OS-EXT-STS:power_state"), ""),
        "addresses": ", ".join(addresses), "flavor": flavor.get("original_name", flavor.get("id", "")),
        "image": (images or {}).get(image_id, image_id or "(volume)"), "created": server.get("created", ""),
        "key_name": server.get("key_name") or "", "fault": (server.get("fault") or {}).get("message", ""),
    }


@functools.cache
def instance_url_parts(script_prefix):
    """(before, after) the server id in its page's URL, under the script
    prefix the request came with."""
    marker = "0" * 8
    return tuple(reverse("dashboard:instance", args=[marker]).rsplit(marker, 1))


def instance_url(server_id):
    before, after = instance_url_parts(get_script_prefix())
    return f"{before}{quote(str(server_id), safe='')}{after}"


POWER_STATES = {0: "no state", 1: "running", 3: "paused", 4: "shut down", 6: "crashed", 7: "suspended"}


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


def attached_volumes(request, server_id):
    """The server's volumes with their device, name and size."""
    root = f"/volume/v3/{request.credentials.project_id}"
    found = []
    for attachment in request.api.get(f"{COMPUTE}/servers/{server_id}/os-volume_attachments")["volumeAttachments"]:
        volume = request.api.get(f"{root}/volumes/{attachment['volumeId']}")["volume"]
        found.append({"id": volume["id"], "name": volume["name"] or volume["id"], "size": volume["size"],
                      "device": attachment["device"], "status": volume["status"]})
    return found


def server_ports(request, server_id, network_names):
    """The server's ports with their addresses and floating IPs, and the
    project's floating IPs free to associate."""
    floating_ips = request.api.get(f"{NETWORK}/floatingips",
                                   project_id=request.credentials.project_id)["floatingips"]
    ports = []
    for port in request.api.get(f"{NETWORK}/ports", device_id=server_id)["ports"]:
        ports.append({
            "id": port["id"], "network": network_names.get(port["network_id"], port["network_id"]),
            "mac": port["mac_address"], "status": port["status"],
            "addresses": [ip["ip_address"] for ip in port.get("fixed_ips", [])],
            "floating_ips": [floating for floating in floating_ips if floating.get("port_id") == port["id"]],
        })
    return ports, [floating for floating in floating_ips if not floating.get("port_id")]


# What each status allows (the states the compute API accepts each
# action in); while a task runs only delete is offered.
STATE_ACTIONS = {
    "ACTIVE": {"stop", "reboot", "pause", "suspend", "resize", "rebuild", "snapshot", "shelve", "rescue", "volumes",
               "interfaces", "floating_ips"},
    "SHUTOFF": {"start", "resize", "rebuild", "snapshot", "shelve", "rescue", "volumes", "interfaces",
                "floating_ips"},
    "PAUSED": {"unpause", "snapshot", "shelve", "volumes", "interfaces", "floating_ips"},
    "SUSPENDED": {"resume", "snapshot", "shelve"},
    "SHELVED": {"unshelve"},
    "SHELVED_OFFLOADED": {"unshelve"},
    "RESCUE": {"unrescue"},
    "VERIFY_RESIZE": {"confirm_resize", "revert_resize"},
    "ERROR": {"rebuild"},
}


def offered_actions(server, is_admin):
    if server.get("OS-EXT-STS:task_state"):
        return {"delete"}
    if server.get("locked") and not is_admin:
        return {"unlock"}  # the owner's locked server refuses every other action
    return STATE_ACTIONS.get(server.get("status"), set()) | {"delete", "unlock" if server.get("locked") else "lock"}


@panel
def instance(request, server_id):
    server = request.api.get(f"{COMPUTE}/servers/{server_id}")["server"]
    images = request.api.get("/image/v2/images", limit=MAX_PAGE_SIZE)["images"]
    row = server_row(server, {image["id"]: image["name"] or image["id"] for image in images})
    console, console_error = console_tail(request, server_id)
    networks = request.api.get(f"{NETWORK}/networks")["networks"]
    ports, free_floating_ips = server_ports(request, server_id,
                                            {network["id"]: network["name"] or network["id"] for network in networks})
    context = {
        "server": server, "row": row, "actions": action_events(request, server_id), "console": console,
        "console_error": console_error, "section": "instances", "live_since": now_iso(),
        "offered": offered_actions(server, request.credentials.is_admin),
        "volumes": attached_volumes(request, server_id), "ports": ports, "free_floating_ips": free_floating_ips,
        "networks": [network for network in networks if not network.get("router:external")],
        "images": [image for image in images if image.get("status") == "active"],
        "flavors": sorted(request.api.get(f"{COMPUTE}/flavors/detail")["flavors"],
                          key=lambda flavor: (flavor["ram"], flavor["vcpus"], flavor["name"])),
        "available_volumes": request.api.get(f"/volume/v3/{request.credentials.project_id}/volumes/detail",
                                             status="available", limit=MAX_PAGE_SIZE)["volumes"],
    }
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


def server_action(body):
    """An action of POST /servers/{id}/action; `body` may be made from the form."""
    return lambda request, server_id: request.api.post(
        f"{COMPUTE}/servers/{server_id}/action", body(request.POST) if callable(body) else body)


def floating_ip_to(port_of):
    return lambda request, server_id: request.api.put(
        f"{NETWORK}/floatingips/{request.POST.get('floating_ip_id', '')}",
        {"floatingip": {"port_id": port_of(request.POST)}})


# action -> (what the page says when the API took it, the API call).
ACTIONS = {
    "start": ("Start requested.", server_action({"os-start": None})),
    "stop": ("Stop requested.", server_action({"os-stop": None})),
    "reboot": ("Reboot requested.", server_action({"reboot": {"type": "SOFT"}})),
    "pause": ("Pause requested.", server_action({"pause": None})),
    "unpause": ("Unpause requested.", server_action({"unpause": None})),
    "suspend": ("Suspend requested.", server_action({"suspend": None})),
    "resume": ("Resume requested.", server_action({"resume": None})),
    "shelve": ("Shelving: the disk is kept as an image and the server leaves its host.",
               server_action({"shelve": None})),
    "unshelve": ("Unshelve requested.", server_action({"unshelve": None})),
    "rescue": ("Rescuing: the server boots from its image, with its own disk attached second.",
               server_action({"rescue": None})),
    "unrescue": ("Unrescue requested.", server_action({"unrescue": None})),
    "lock": ("Locked.", server_action({"lock": None})),
    "unlock": ("Unlocked.", server_action({"unlock": None})),
    "resize": ("Resizing; confirm or revert when it is done.",
               server_action(lambda post: {"resize": {"flavorRef": post.get("flavor", "")}})),
    "confirm_resize": ("Resize confirmed.", server_action({"confirmResize": None})),
    "revert_resize": ("Reverting the resize.", server_action({"revertResize": None})),
    "rebuild": ("Rebuilding.", server_action(lambda post: {"rebuild": {"imageRef": post.get("image", "")}})),
    "snapshot": ("Snapshot requested: the image is in Images, active once the disk is stored.",
                 server_action(lambda post: {"createImage": {"name": post.get("name", "")}})),
    "attach_volume": ("Attached the volume.", lambda request, server_id: request.api.post(
        f"{COMPUTE}/servers/{server_id}/os-volume_attachments",
        {"volumeAttachment": {"volumeId": request.POST.get("volume_id", "")}})),
    "detach_volume": ("Detached the volume.", lambda request, server_id: request.api.delete(
        f"{COMPUTE}/servers/{server_id}/os-volume_attachments/{request.POST.get('volume_id', '')}")),
    "attach_interface": ("Attached an interface.", lambda request, server_id: request.api.post(
        f"{COMPUTE}/servers/{server_id}/os-interface",
        {"interfaceAttachment": {"net_id": request.POST.get("network_id", "")}})),
    "detach_interface": ("Detached the interface.", lambda request, server_id: request.api.delete(
        f"{COMPUTE}/servers/{server_id}/os-interface/{request.POST.get('port_id', '')}")),
    "associate_floating_ip": ("Associated the floating IP.", floating_ip_to(lambda post: post.get("port_id", ""))),
    "disassociate_floating_ip": ("Disassociated the floating IP.", floating_ip_to(lambda post: None)),
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
            # Another project's server is the 404 page whatever the form
            # holds (an API checks a body before it looks the server up, and
            # a floating IP is the network API's, which knows no server).
            request.api.get(f"{COMPUTE}/servers/{server_id}")
            done, call = ACTIONS[action]
            call(request, server_id)
            messages.success(request, done)
    except ApiFailure as failure:
        if failure.status in (401, 403, 404):
            raise
        messages.error(request, failure.message)
    return redirect("dashboard:instance", server_id=server_id)


def iso(moment):
    """A UTC time as the API's changes-since takes it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso():
    return iso(datetime.now(timezone.utc))


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
            since = iso(started)
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
    server = {"name": post.get("name", "").strip(), "flavorRef": post.get("flavor", "")}
    if post.get("boot_from_volume"):
        # The root disk a new volume made from the image, gone with the server.
        size = post.get("volume_size", "").strip()
        server["block_device_mapping_v2"] = [{
            "boot_index": 0, "uuid": post.get("image", ""), "source_type": "image", "destination_type": "volume",
            "volume_size": int(size) if size.isdigit() else size, "delete_on_termination": True}]
    else:
        server["imageRef"] = post.get("image", "")
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
