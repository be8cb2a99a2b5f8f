"""OS-EP-FILTER: which endpoints a project's catalog shows. A project with
no endpoint given to it, alone or through an endpoint group, sees every
endpoint (Keystone's [endpoint_filter] return_all_endpoints_if_no_filter);
one with any sees only those."""
from django.db.models import Q

from cloud.errors import BadRequest
from identity.models import Endpoint, EndpointGroup, ProjectEndpoint


def checked_filters(filters):
    """An endpoint group's filters as Keystone takes them: an object of
    interface, service_id and region_id strings, at least one."""
    if not isinstance(filters, dict) or not filters:
        raise BadRequest("Invalid input for field 'filters': expected an object naming at least one of "
                         f"{', '.join(EndpointGroup.FILTERS)}.")
    for name, value in filters.items():
        if name not in EndpointGroup.FILTERS:
            raise BadRequest(f"Invalid input for field 'filters': {name!r} is not a valid filter; valid ones "
                             f"are {', '.join(EndpointGroup.FILTERS)}.")
        if not isinstance(value, str) or not value:
            raise BadRequest(f"Invalid input for field 'filters.{name}': expected a non-empty string.")
    interface = filters.get("interface")
    if interface is not None and interface not in dict(Endpoint.INTERFACES):
        raise BadRequest(f"Invalid input for field 'filters.interface': one of "
                         f"{', '.join(dict(Endpoint.INTERFACES))}.")
    return dict(filters)


def group_endpoints(group):
    """The endpoints an endpoint group names."""
    return Endpoint.objects.filter(**group.filters)


def project_endpoints(project_id):
    """The endpoints given to a project, alone or by its groups (none when
    it has no association: the unfiltered case is the caller's)."""
    condition = Q(id__in=ProjectEndpoint.objects.filter(project_id=project_id).values("endpoint_id"))
    for filters in EndpointGroup.objects.filter(projects__id=project_id).values_list("filters", flat=True):
        condition |= Q(**filters)
    return Endpoint.objects.filter(condition)


def catalog_endpoint_ids(project_id):
    """The ids of the endpoints a token scoped to project_id may see, or
    None when every endpoint (the project has no association)."""
    if not project_id:
        return None
    if not (ProjectEndpoint.objects.filter(project_id=project_id).exists()
            or EndpointGroup.objects.filter(projects__id=project_id).exists()):
        return None
    return set(project_endpoints(project_id).values_list("id", flat=True))
