"""/v3/OS-EP-FILTER: endpoint groups, and the endpoints (alone or by
group) given to projects, which limit their tokens' catalogs. Admins only,
as Keystone's policy."""
from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.response import Response

from cloud.errors import BadRequest, NotFound
from cloud.views import ApiView
from identity import endpoint_filter
from identity.api.serializers import EndpointSerializer, ProjectSerializer
from identity.models import Endpoint, EndpointGroup, Project, ProjectEndpoint, ProjectEndpointGroup

ADMIN = {"get": "admin", "head": "admin", "post": "admin", "put": "admin", "patch": "admin", "delete": "admin"}
PREFIX = "/identity/v3/OS-EP-FILTER"


def _found(model, kind, pk):
    row = model.objects.filter(pk=pk).first()
    if row is None:
        raise NotFound(f"Could not find {kind}: {pk}.")
    return row


def _links(request):
    return {"self": request.build_absolute_uri(), "previous": None, "next": None}


def group_body(request, group):
    return {"id": group.id, "name": group.name, "description": group.description, "filters": group.filters,
            "links": {"self": request.build_absolute_uri(f"{PREFIX}/endpoint_groups/{group.id}")}}


def _projects(request, projects):
    return Response({"projects": ProjectSerializer(projects, many=True, context={"request": request}).data,
                     "links": _links(request)})


def _endpoints(request, endpoints):
    return Response({"endpoints": EndpointSerializer(endpoints, many=True, context={"request": request}).data,
                     "links": _links(request)})


def _group_fields(request, partial):
    body = request.data.get("endpoint_group") if isinstance(request.data, dict) else None
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field 'endpoint_group': the request body must be "
                         "{\"endpoint_group\": {...}}.")
    unknown = set(body) - {"name", "description", "filters"}
    if unknown:
        raise BadRequest(f"Invalid input for field '{sorted(unknown)[0]}': not an attribute of an endpoint group.")
    fields = {}
    if "name" in body or not partial:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise BadRequest("Invalid input for field 'name': a non-empty string of at most 255 characters.")
        fields["name"] = name
    if "filters" in body or not partial:
        fields["filters"] = endpoint_filter.checked_filters(body.get("filters"))
    if "description" in body:
        description = body["description"]
        if description is not None and not isinstance(description, str):
            raise BadRequest("Invalid input for field 'description': expected a string.")
        fields["description"] = description or ""
    return fields


class EndpointGroupListView(ApiView):
    policy = ADMIN

    def get(self, request):
        groups = EndpointGroup.objects.all()
        if "name" in request.query_params:
            groups = groups.filter(name=request.query_params["name"])
        return Response({"endpoint_groups": [group_body(request, group) for group in groups],
                         "links": _links(request)})

    def post(self, request):
        group = EndpointGroup.objects.create(**_group_fields(request, partial=False))
        return Response({"endpoint_group": group_body(request, group)}, status=status.HTTP_201_CREATED)


class EndpointGroupView(ApiView):
    policy = ADMIN

    def get(self, request, group_id):
        return Response({"endpoint_group": group_body(request, _found(EndpointGroup, "endpoint group", group_id))})

    def head(self, request, group_id):
        _found(EndpointGroup, "endpoint group", group_id)
        return Response(status=status.HTTP_200_OK)

    def patch(self, request, group_id):
        group = _found(EndpointGroup, "endpoint group", group_id)
        for name, value in _group_fields(request, partial=True).items():
            setattr(group, name, value)
        group.save()
        return Response({"endpoint_group": group_body(request, group)})

    def delete(self, request, group_id):
        _found(EndpointGroup, "endpoint group", group_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointGroupEndpointsView(ApiView):
    policy = ADMIN

    def get(self, request, group_id):
        return _endpoints(request, endpoint_filter.group_endpoints(_found(EndpointGroup, "endpoint group", group_id)))


class EndpointGroupProjectsView(ApiView):
    policy = ADMIN

    def get(self, request, group_id):
        group = _found(EndpointGroup, "endpoint group", group_id)
        return _projects(request, Project.objects.filter(endpoint_groups=group).select_related("domain"))


class EndpointGroupProjectView(ApiView):
    """PUT/GET/HEAD/DELETE /v3/OS-EP-FILTER/endpoint_groups/{group}/projects/{project}."""

    policy = ADMIN

    def _pair(self, group_id, project_id):
        return _found(EndpointGroup, "endpoint group", group_id), _found(Project, "project", project_id)

    def _association(self, group_id, project_id):
        group, project = self._pair(group_id, project_id)
        association = ProjectEndpointGroup.objects.filter(endpoint_group=group, project=project).first()
        if association is None:
            raise NotFound(f"Could not find project endpoint group: project {project_id}, endpoint group "
                           f"{group_id}.")
        return association, project

    def put(self, request, group_id, project_id):
        group, project = self._pair(group_id, project_id)
        try:
            with transaction.atomic():
                ProjectEndpointGroup.objects.create(endpoint_group=group, project=project)
        except IntegrityError:
            pass  # already given: PUT is idempotent
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get(self, request, group_id, project_id):
        _, project = self._association(group_id, project_id)
        return Response({"project": ProjectSerializer(project, context={"request": request}).data})

    def head(self, request, group_id, project_id):
        self._association(group_id, project_id)
        return Response(status=status.HTTP_200_OK)

    def delete(self, request, group_id, project_id):
        self._association(group_id, project_id)[0].delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectEndpointGroupsView(ApiView):
    policy = ADMIN

    def get(self, request, project_id):
        project = _found(Project, "project", project_id)
        return Response({"endpoint_groups": [group_body(request, group)
                                             for group in EndpointGroup.objects.filter(projects=project)],
                         "links": _links(request)})


class ProjectEndpointsView(ApiView):
    policy = ADMIN

    def get(self, request, project_id):
        _found(Project, "project", project_id)
        return _endpoints(request, endpoint_filter.project_endpoints(project_id))


class ProjectEndpointView(ApiView):
    """PUT/GET/HEAD/DELETE /v3/OS-EP-FILTER/projects/{project}/endpoints/{endpoint}."""

    policy = ADMIN

    def _pair(self, project_id, endpoint_id):
        return _found(Project, "project", project_id), _found(Endpoint, "endpoint", endpoint_id)

    def _association(self, project_id, endpoint_id):
        project, endpoint = self._pair(project_id, endpoint_id)
        association = ProjectEndpoint.objects.filter(project=project, endpoint=endpoint).first()
        if association is None:
            raise NotFound(f"Could not find project endpoint: project {project_id}, endpoint {endpoint_id}.")
        return association

    def put(self, request, project_id, endpoint_id):
        project, endpoint = self._pair(project_id, endpoint_id)
        try:
            with transaction.atomic():
                ProjectEndpoint.objects.create(project=project, endpoint=endpoint)
        except IntegrityError:
            pass
        return Response(status=status.HTTP_204_NO_CONTENT)

    def head(self, request, project_id, endpoint_id):
        self._association(project_id, endpoint_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    get = head

    def delete(self, request, project_id, endpoint_id):
        self._association(project_id, endpoint_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointProjectsView(ApiView):
    policy = ADMIN

    def get(self, request, endpoint_id):
        _found(Endpoint, "endpoint", endpoint_id)
        projects = Project.objects.filter(endpoint_associations__endpoint_id=endpoint_id).select_related("domain")
        return _projects(request, projects)
