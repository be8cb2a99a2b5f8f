"""The project's overview: its quota usage as bars."""
from django.shortcuts import render

from dashboard.auth import panel
from dashboard.views.common import COMPUTE, bar


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
