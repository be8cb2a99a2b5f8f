"""Instances: the list with its live stream, an instance's page, console
and actions, and the launch form."""
import base64
import json
import threading
import time
from datetime import datetime, timedelta, timezone

from django.conf import settings
from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from compute.models import BOOT_STEPS
from dashboard.auth import current_credentials, panel
from dashboard.client import ApiFailure
from dashboard.views.common import COMPUTE, MAX_PAGE_SIZE, image_names, page_size

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
