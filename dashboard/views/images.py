"""Images and key pairs."""
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.auth import panel
from dashboard.client import ApiFailure
from dashboard.views.common import COMPUTE, MAX_PAGE_SIZE


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
