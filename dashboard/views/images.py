"""Images (list, upload with progress, create from a URL where the cloud
allows it, edit, share, delete) and key pairs.

An upload is two requests: the form makes the image record, then the
browser PUTs the file to the dashboard, which hands the request's body to
Glance's PUT /file as a stream, a chunk at a time (the file is never held
whole; the browser's upload events drive the progress bar). Without
script, the form posts the file with the record (Django spools a large
file to disk) and it is forwarded the same way. Creating from a URL is
Glance's web-download import: offered only when /v2/info/import lists it,
and the URL is the API's to allow or refuse."""
from django.contrib import messages
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from dashboard.auth import panel
from dashboard.client import ApiFailure
from dashboard.views.common import COMPUTE, neutron_form, paged

IMAGES = "/image/v2/images"
PATCH = "application/openstack-images-v2.1-json-patch"


def image_schema(request):
    """Glance's own description of an image: its core attributes (what is
    not one is a property) and the formats and visibilities it takes."""
    return request.api.get("/image/v2/schemas/image")


def choices(schema, name):
    return [value for value in schema["properties"][name].get("enum", []) if value is not None]


def web_download_enabled(request):
    return "web-download" in request.api.get("/image/v2/info/import")["import-methods"]["value"]


def upload_context(request, schema, error="", status=200, url_error=""):
    listing, pages = paged(request, IMAGES, "images")
    return render(request, "dashboard/images.html", {
        "images": listing, "section": "images", "error": error, "form": request.POST, **pages,
        "web_download": web_download_enabled(request), "url_error": url_error,
        "disk_formats": choices(schema, "disk_format"), "container_formats": choices(schema, "container_format"),
        "visibilities": choices(schema, "visibility"),
    }, status=status)


@panel
def images(request):
    return upload_context(request, image_schema(request))


def send_file(request, image_id, stream, length):
    """Glance's PUT /file with `stream` as its body, read as Glance reads it."""
    request.api.call("PUT", f"{IMAGES}/{image_id}/file", stream=stream, length=length,
                     content_type="application/octet-stream")


@require_POST
@panel
def image_upload(request):
    """Makes the image record; the file comes with the form (no script) or
    in the browser's PUT to image_file (the progress bar's way)."""
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    post = request.POST
    record = {"name": post.get("name", "").strip(), "disk_format": post.get("disk_format") or None,
              "container_format": post.get("container_format") or None,
              "visibility": post.get("visibility") or "private"}
    try:
        created = request.api.post(IMAGES, record)
        if "file" in request.FILES:
            upload = request.FILES["file"]
            send_file(request, created["id"], upload, upload.size)
    except ApiFailure as failure:
        if failure.status == 401:
            raise
        if wants_json:
            return JsonResponse({"error": failure.message}, status=failure.status)
        return upload_context(request, image_schema(request), failure.message, failure.status)
    page_url = reverse("dashboard:image", args=[created["id"]])
    if wants_json:
        return JsonResponse({"id": created["id"], "file_url": reverse("dashboard:image_file", args=[created["id"]]),
                             "image_url": page_url}, status=201)
    messages.success(request, f"Uploaded image {record['name']}.")
    return redirect(page_url)


@require_POST
@panel
def image_from_url(request):
    """Makes the image record and asks Glance to import it from the URL
    (web-download); the image's page then follows the import. A refused
    URL leaves no record behind."""
    post = request.POST
    schema = image_schema(request)
    if not web_download_enabled(request):
        return upload_context(request, schema, url_error="This cloud does not create images from URLs.",
                              status=400)
    record = {"name": post.get("name", "").strip(), "disk_format": post.get("disk_format") or None,
              "container_format": post.get("container_format") or None,
              "visibility": post.get("visibility") or "private"}
    try:
        created = request.api.post(IMAGES, record)
    except ApiFailure as failure:
        if failure.status == 401:
            raise
        return upload_context(request, schema, url_error=failure.message, status=failure.status)
    try:
        request.api.post(f"{IMAGES}/{created['id']}/import",
                         {"method": {"name": "web-download", "uri": post.get("uri", "").strip()}})
    except ApiFailure as failure:
        request.api.delete(f"{IMAGES}/{created['id']}")
        if failure.status == 401:
            raise
        return upload_context(request, schema, url_error=failure.message, status=failure.status)
    messages.success(request, f"Importing image {record['name']} from {post.get('uri', '').strip()}.")
    return redirect("dashboard:image", image_id=created["id"])


@panel
def image_file(request, image_id):
    """PUT: the browser's file, forwarded to Glance as it arrives."""
    if request.method != "PUT":
        return HttpResponseNotAllowed(["PUT"])
    if not request.META.get("CONTENT_LENGTH", "").isdigit():
        # Browsers send a file's length; the stream is passed on with it.
        return JsonResponse({"error": "The upload needs a Content-Length header."}, status=411)
    try:
        send_file(request, image_id, request, int(request.META["CONTENT_LENGTH"]))
        image = request.api.get(f"{IMAGES}/{image_id}")
    except ApiFailure as failure:
        if failure.status == 401:
            raise
        return JsonResponse({"error": failure.message}, status=failure.status)
    return JsonResponse({"status": image["status"], "checksum": image["checksum"], "size": image["size"]})


def parse_properties(text):
    """`key=value` a line; a line without `=` is kept as the key with an
    empty value, so Glance names what it refuses."""
    found = {}
    for line in text.splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def image_changes(image, post, core):
    """The JSON patch from the edit form to what the image is now."""
    changes = []
    for name in ("name", "visibility"):
        if post.get(name, "") != (image.get(name) or ""):
            changes.append({"op": "replace", "path": f"/{name}", "value": post.get(name, "")})
    for name in ("min_disk", "min_ram"):
        raw = post.get(name, "0").strip() or "0"
        value = int(raw) if raw.isdigit() else raw
        if value != image.get(name):
            changes.append({"op": "replace", "path": f"/{name}", "value": value})
    current = {key: value for key, value in image.items() if key not in core}
    wanted = parse_properties(post.get("properties", ""))
    changes += [{"op": "remove", "path": f"/{key}"} for key in current if key not in wanted]
    changes += [{"op": "add", "path": f"/{key}", "value": value} for key, value in wanted.items()
                if current.get(key) != value]
    return changes


@panel
def image(request, image_id):
    """An image's facts; its owner edits, shares and deletes it here."""
    url = f"{IMAGES}/{image_id}"
    schema = image_schema(request)
    core = set(schema["properties"])
    error = ""
    if request.method == "POST":
        op, post = request.POST.get("op", ""), request.POST
        if op == "delete":
            error = neutron_form(request, [("delete", lambda: request.api.delete(url))])
            if not error:
                messages.success(request, "Deleted the image.")
                return redirect("dashboard:images")
        else:
            current = request.api.get(url)
            steps = {
                "edit": [("image", lambda: request.api.patch(url, image_changes(current, post, core),
                                                             content_type=PATCH))],
                "share": [("member", lambda: request.api.post(f"{url}/members",
                                                              {"member": post.get("project", "").strip()}))],
                "unshare": [("member", lambda: request.api.delete(f"{url}/members/{post.get('project', '')}"))],
            }.get(op)
            error = neutron_form(request, steps) if steps else "This form is not one of this page's."
            if not error:
                messages.success(request, {"edit": "Saved the image.", "share": "Shared the image.",
                                           "unshare": "Stopped sharing the image."}[op])
                return redirect("dashboard:image", image_id=image_id)
    body = request.api.get(url)
    properties = {key: value for key, value in body.items() if key not in core}
    # The latest import: its status and progress (the tasks come newest last).
    tasks = request.api.get(f"{url}/tasks")["tasks"]
    members = []
    if body["visibility"] == "shared":
        try:
            members = request.api.get(f"{url}/members")["members"]
        except ApiFailure as failure:  # a member of the image sees it, not who else does
            if failure.status not in (403, 404):
                raise
    form = request.POST if error else {**body, "properties": "\n".join(f"{key}={value}" for key, value in
                                                                       sorted(properties.items()))}
    return render(request, "dashboard/image.html", {
        "image": body, "properties": sorted(properties.items()), "members": members, "error": error,
        "import_task": tasks[-1] if tasks else None,
        "form": form, "visibilities": choices(schema, "visibility"), "section": "images",
    }, status=400 if error else 200)


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
