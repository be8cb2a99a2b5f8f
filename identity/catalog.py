"""The service catalog a token carries: every enabled service with its
enabled endpoints, `$(project_id)s` filled in for the token's project;
only the project's endpoints when it has any (identity.endpoint_filter)."""
from identity.endpoint_filter import catalog_endpoint_ids
from identity.models import Service


def substitute(url, project_id):
    if project_id:
        return url.replace("$(project_id)s", project_id).replace("$(tenant_id)s", project_id)
    return url


def build_catalog(project_id=None):
    allowed = catalog_endpoint_ids(project_id)
    catalog = []
    for service in Service.objects.filter(enabled=True).prefetch_related("endpoints").order_by("type"):
        endpoints = []
        for endpoint in service.endpoints.all():
            if not endpoint.enabled or (allowed is not None and endpoint.id not in allowed):
                continue
            if not project_id and ("$(project_id)s" in endpoint.url or "$(tenant_id)s" in endpoint.url):
                continue
            endpoints.append({
                "id": endpoint.id, "interface": endpoint.interface, "region": endpoint.region_id,
                "region_id": endpoint.region_id, "url": substitute(endpoint.url, project_id),
            })
        if allowed is not None and not endpoints:
            continue  # a filtered catalog leaves out the services it has no endpoint of
        catalog.append({"id": service.id, "type": service.type, "name": service.name, "endpoints": endpoints})
    return catalog
