"""Admin panels: the API refuses other tokens, and that is the 403 page."""
from django.shortcuts import render
from django.urls import reverse

from dashboard.auth import panel
from dashboard.views.common import COMPUTE, bar


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
