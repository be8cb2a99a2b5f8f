"""Server groups: affinity and anti-affinity policies the scheduler keeps
for their members (boots with the `group` scheduler hint)."""

from django.db import transaction
from django.db.models import Prefetch
from rest_framework.response import Response

from cloud.errors import ApiError, BadRequest, NotFound
from cloud.pagination import paginate
from compute import quotas
from compute.api.base import ComputeView, is_uuid, require_string
from compute.models import Instance, ServerGroup

# Policies before 2.64 (a one-item list) that Stratus's scheduler enforces.
POLICIES = ("affinity", "anti-affinity")


def with_members(groups):
    """`groups` with their live members read in one query for all of them
    (group_body lists `group.members`)."""
    return groups.prefetch_related(Prefetch("members", queryset=Instance.objects.filter(deleted=False).only(
        "id", "server_group_id")))


def group_body(request, group):
    """A group as Nova shows it; `group` comes from with_members (or is new)."""
    members = [str(member.id) for member in group.members.all()]
    data = {"id": str(group.id), "name": group.name, "policies": [group.policy], "members": members,
            "metadata": {}}
    if request.api_version >= (2, 13):
        data.update({"project_id": group.project_id, "user_id": group.user_id})
    return data


def find_group(request, group_id):
    if not is_uuid(group_id):
        raise NotFound(f"Instance group {group_id} could not be found.")
    groups = with_members(ServerGroup.objects.filter(pk=group_id))
    if not request.auth.is_admin:
        groups = groups.filter(project_id=request.auth.project_id)
    group = groups.first()
    if group is None:
        raise NotFound(f"Instance group {group_id} could not be found.")
    return group


class ServerGroupListView(ComputeView):
    policy = {"get": "reader", "post": "member"}

    def get(self, request):
        groups = with_members(ServerGroup.objects.all())
        all_projects = request.auth.is_admin and request.query_params.get("all_projects", "").lower() in (
            "true", "1", "")  and "all_projects" in request.query_params
        if not all_projects:
            groups = groups.filter(project_id=request.auth.project_id)
        rows, _next = paginate(request, groups, [("created_at", "asc"), ("id", "asc")])
        return Response({"server_groups": [group_body(request, group) for group in rows]})

    def post(self, request):
        data = self.body("server_group")
        name = require_string(data.get("name"), "name")
        policies = data.get("policies")
        if not isinstance(policies, list) or len(policies) != 1 or policies[0] not in POLICIES:
            raise BadRequest(f"Invalid input for field 'policies': must be one of {', '.join(POLICIES)} "
                             f"(as a one-item list).")
        with transaction.atomic():
            quotas.lock_project(request.auth.project_id)
            limit = quotas.limit_of(request.auth.project_id, "server_groups")
            used = ServerGroup.objects.filter(project_id=request.auth.project_id).count()
            if limit >= 0 and used + 1 > limit:
                raise ApiError(f"Quota exceeded for server_groups: Requested 1, but already used {used} of "
                               f"{limit} server_groups", status=403)
            group = ServerGroup.objects.create(name=name, policy=policies[0], project_id=request.auth.project_id,
                                               user_id=request.auth.user_id)
        return Response({"server_group": group_body(request, group)})


class ServerGroupView(ComputeView):
    policy = {"get": "reader", "delete": "member"}

    def get(self, request, group_id):
        return Response({"server_group": group_body(request, find_group(request, group_id))})

    def delete(self, request, group_id):
        find_group(request, group_id).delete()
        return Response(status=204)
