"""The service catalog a token carries: every enabled service with its
enabled endpoints, `$(project_id)s` filled in for the token's project."""
from identity.models import Service


def substitute(url, project_id):
    if project_id:
        return url.replace("$(project_id)s", project_id).replace("$(tenant_id)s", project_id)
    return url


def build_catalog(project_id=None):
    catalog = []
    for service in Service.objects.filter(enabled=True).prefetch_related("endpoints").order_by("type"):
        endpoints = []
        for endpoint in service.endpoints.all():
            if not endpoint.enabled:
                continue
            if not project_id and ("$(project_id)s" in endpoint.url or "$(tenant_id)s" in endpoint.url):
                continue
            endpoints.append({
                "id": endpoint.id, "interface": endpoint.interface, "region": endpoint.region_id,
                "region_id": endpoint.region_id, "url": substitute(endpoint.url, project_id),
            })
        catalog.append({"id": service.id, "type": service.type, "name": service.name, "endpoints": endpoints})
    return catalog
