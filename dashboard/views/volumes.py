"""Volumes and snapshots (Block Storage v3), and attaching volumes to
servers (Compute's os-volume_attachments)."""
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.auth import panel
from dashboard.client import ApiFailure
from dashboard.views.common import COMPUTE, MAX_PAGE_SIZE, paged


def volume_root(request):
    return f"/volume/v3/{request.credentials.project_id}"



def server_names(request):
    return {server["id"]: server["name"] or server["id"]
            for server in request.api.get(f"{COMPUTE}/servers", limit=MAX_PAGE_SIZE)["servers"]}


def attached_to(volume, servers):
    """"server-name on /dev/vdb" for each of the volume's attachments."""
    return [{"server_id": attachment["server_id"], "device": attachment.get("device") or "",
             "server": servers.get(attachment["server_id"], attachment["server_id"])}
            for attachment in volume.get("attachments", [])]


def refused(failure):
    """The API's refusal of a form, to show in place; a refused token or
    an unknown resource is the dashboard's page instead."""
    if failure.status in (401, 403, 404):
        raise failure
    return failure.message


def create_body(post):
    volume = {"name": post.get("name", "").strip()}
    size = post.get("size", "").strip()
    if size:
        volume["size"] = int(size) if size.isdigit() else size
    source = post.get("source", "")
    if source == "image" and post.get("image"):
        volume["imageRef"] = post["image"]
    elif source == "snapshot" and post.get("snapshot"):
        volume["snapshot_id"] = post["snapshot"]
    if post.get("volume_type"):
        volume["volume_type"] = post["volume_type"]
    return {"volume": volume}


@panel
def volumes(request):
    root = volume_root(request)
    error = ""
    if request.method == "POST":
        try:
            created = request.api.post(f"{root}/volumes", create_body(request.POST))["volume"]
        except ApiFailure as failure:
            error = refused(failure)
        else:
            messages.success(request, f"Creating volume {created['name'] or created['id']}.")
            return redirect("dashboard:volume", volume_id=created["id"])
    rows, pages = paged(request, f"{root}/volumes/detail", "volumes")
    servers = server_names(request)
    for volume in rows:
        volume["attached_to"] = attached_to(volume, servers)
    form = request.POST if request.method == "POST" else {
        "source": "snapshot" if request.GET.get("snapshot") else "", "snapshot": request.GET.get("snapshot", "")}
    return render(request, "dashboard/volumes.html", {
        "volumes": rows, **pages,
        "error": error, "form": form, "section": "volumes",
        "images": [image for image in request.api.get("/image/v2/images", limit=MAX_PAGE_SIZE)["images"]
                   if image.get("status") == "active"],
        "snapshots": [snapshot for snapshot in request.api.get(f"{root}/snapshots", limit=MAX_PAGE_SIZE)["snapshots"]
                      if snapshot["status"] == "available"],
        "types": request.api.get(f"{root}/types")["volume_types"],
    }, status=400 if error else 200)


# Servers a volume may be attached to (Nova's VOLUME_VM_STATES as statuses).
ATTACHABLE = ("ACTIVE", "PAUSED", "SHUTOFF")


@panel
def volume(request, volume_id):
    root = volume_root(request)
    shown = request.api.get(f"{root}/volumes/{volume_id}")["volume"]
    servers = request.api.get(f"{COMPUTE}/servers/detail", limit=MAX_PAGE_SIZE)["servers"]
    names = {server["id"]: server["name"] or server["id"] for server in servers}
    shown["attached_to"] = attached_to(shown, names)
    attached_ids = {attachment["server_id"] for attachment in shown["attached_to"]}
    return render(request, "dashboard/volume.html", {
        "volume": shown, "section": "volumes",
        "servers": [server for server in servers if server["status"] in ATTACHABLE and server["id"] not in attached_ids],
        "snapshots": request.api.get(f"{root}/snapshots/detail", volume_id=volume_id)["snapshots"],
    })


@require_POST
@panel
def volume_action(request, volume_id):
    """extend, attach, detach, snapshot, delete: the API's answer said on
    the volume's page."""
    root = volume_root(request)
    action = request.POST.get("action", "")
    name = request.POST.get("name", "").strip()
    calls = {
        # 3.42: an attached volume may grow too (the node tells the guest).
        "extend": lambda: request.api.post(f"{root}/volumes/{volume_id}/action", {"os-extend": {
            "new_size": request.POST.get("new_size", "").strip()}}, headers={"OpenStack-API-Version": "volume 3.42"}),
        "attach": lambda: request.api.post(
            f"{COMPUTE}/servers/{request.POST.get('server_id', '')}/os-volume_attachments",
            {"volumeAttachment": {"volumeId": volume_id}}),
        "detach": lambda: request.api.delete(
            f"{COMPUTE}/servers/{request.POST.get('server_id', '')}/os-volume_attachments/{volume_id}"),
        "snapshot": lambda: request.api.post(f"{root}/snapshots", {"snapshot": {
            "volume_id": volume_id, "name": name, "force": request.POST.get("force") == "on"}}),
        "delete": lambda: request.api.delete(f"{root}/volumes/{volume_id}"),
    }
    done = {"extend": "Extending the volume.", "attach": "Attached the volume.", "detach": "Detached the volume.",
            "snapshot": f"Creating snapshot {name}.", "delete": "Deleting the volume."}
    if action not in calls:
        messages.error(request, f"Unknown action {action!r}.")
        return redirect("dashboard:volume", volume_id=volume_id)
    try:
        calls[action]()
    except ApiFailure as failure:
        messages.error(request, refused(failure))
        return redirect("dashboard:volume", volume_id=volume_id)
    messages.success(request, done[action])
    if action == "delete":
        return redirect("dashboard:volumes")
    if action == "snapshot":
        return redirect("dashboard:snapshots")
    return redirect("dashboard:volume", volume_id=volume_id)


@panel
def snapshots(request):
    root = volume_root(request)
    rows, pages = paged(request, f"{root}/snapshots/detail", "snapshots")
    names = {volume["id"]: volume["name"] or volume["id"]
             for volume in request.api.get(f"{root}/volumes", limit=MAX_PAGE_SIZE)["volumes"]}
    for snapshot in rows:
        snapshot["volume_name"] = names.get(snapshot["volume_id"], snapshot["volume_id"])
    return render(request, "dashboard/snapshots.html", {
        "snapshots": rows, **pages,
        "section": "snapshots"})


@require_POST
@panel
def snapshot_delete(request, snapshot_id):
    try:
        request.api.delete(f"{volume_root(request)}/snapshots/{snapshot_id}")
    except ApiFailure as failure:
        messages.error(request, refused(failure))
    else:
        messages.success(request, "Deleting the snapshot.")
    return redirect("dashboard:snapshots")
