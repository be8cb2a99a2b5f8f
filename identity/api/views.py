"""Keystone's resources: domains, projects, users, groups, roles, role
assignments, regions, services, endpoints, application credentials."""
import json
import secrets

from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q
from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict, Forbidden, NotFound, describe_validation_error
from cloud.viewsets import FALSE_VALUES, ResourceViewSet, parse_bool
from cloud.views import ApiView
from cloud.policy import DENIED
from identity import assignments, credentials as credential_rules, security_compliance
from identity.api.serializers import (
    AccessRuleSerializer, ApplicationCredentialSerializer, CredentialBodySerializer, PolicySerializer, StrictBooleanField, checked_tags, CredentialSerializer, DomainSerializer, EndpointSerializer, GroupSerializer, ProjectSerializer,
    RegionSerializer, RoleSerializer, ServiceSerializer, UserSerializer,
)
from identity.models import (
    AccessRule, ApplicationCredential, Credential, Domain, Endpoint, Group, ImpliedRole, Policy, Project, Region, Role,
    RoleAssignment, Service, User, new_id,
)
from identity.passwords import hash_secret


def is_self(request, view):
    return request.auth.user_id == view.kwargs.get("pk") or request.auth.user_id == view.kwargs.get("user_id")


class DomainViewSet(ResourceViewSet):
    queryset = Domain.objects.all()
    serializer_class = DomainSerializer
    member_name, collection_name = "domain", "domains"
    filters = {"name": "name", "enabled": ("enabled", parse_bool)}
    policy = {"list": "admin", "retrieve": "reader", "create": "admin", "partial_update": "admin", "destroy": "admin"}

    def perform_destroy(self, domain):
        delete_domain(domain)


def delete_domain(domain):
    """A disabled domain and everything in it (DELETE of the domain, or of
    the project acting as it)."""
    if domain.enabled:
        raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
    with transaction.atomic():
        Project.objects.filter(domain=domain).delete()
        User.objects.filter(domain=domain).delete()
        Group.objects.filter(domain=domain).delete()
        domain.delete()


def domain_as_project(request, domain):
    """A domain as Keystone shows it through /v3/projects: a project acting
    as a domain, with no domain or parent of its own."""
    return {"id": domain.id, "name": domain.name, "domain_id": None, "parent_id": None,
            "description": domain.description, "enabled": domain.enabled, "is_domain": True, "tags": [],
            "options": {}, **{key: value for key, value in (domain.extra or {}).items()},
            "links": {"self": request.build_absolute_uri(f"/identity/v3/projects/{domain.id}")}}


class ProjectViewSet(ResourceViewSet):
    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    member_name, collection_name = "project", "projects"
    filters = {"name": "name", "domain_id": "domain_id", "parent_id": "parent_id",
               "enabled": ("enabled", parse_bool)}
    policy = {"list": "admin", "retrieve": "any", "create": "admin", "partial_update": "admin", "destroy": "admin",
              "tags": lambda request, view: request.method == "GET", "tag": lambda request, view: request.method in
              ("GET", "HEAD")}

    def get_queryset(self):
        # Outside admin, a project is visible to its own tokens only.
        if self.request.auth.is_admin:
            return Project.objects.all()
        return Project.objects.filter(id=self.request.auth.project_id)

    # Keystone's projects acting as domains (is_domain): Stratus's domains,
    # seen and changed through /v3/projects by cloud admins.

    def _acting_domain(self):
        if not self.request.auth.is_admin:
            return None
        return Domain.objects.filter(id=self.kwargs["pk"]).first()

    def list(self, request, *args, **kwargs):
        if "is_domain" in request.query_params and parse_bool(request.query_params["is_domain"], "is_domain"):
            domains = Domain.objects.all() if request.auth.is_admin else Domain.objects.none()
            if "name" in request.query_params:
                domains = domains.filter(name=request.query_params["name"])
            if "enabled" in request.query_params:
                domains = domains.filter(enabled=parse_bool(request.query_params["enabled"], "enabled"))
            return Response({"projects": [domain_as_project(request, domain) for domain in domains],
                             "links": self.collection_links()})
        return super().list(request, *args, **kwargs)

    def create(self, request, *args, **kwargs):
        body = self.request_body()
        if "is_domain" in body and not isinstance(body["is_domain"], bool):
            raise BadRequest("Invalid input for field 'is_domain': expected a boolean.")
        if not body.get("is_domain"):
            return super().create(request, *args, **kwargs)
        for field in ("domain_id", "parent_id"):
            if body.get(field) is not None:
                raise BadRequest(f"Invalid input for field '{field}': a project acting as a domain has none.")
        fields = {key: value for key, value in body.items() if key not in ("is_domain", "domain_id", "parent_id")}
        serializer = DomainSerializer(data=fields, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        domain = self.save(serializer)
        return self.envelope(domain_as_project(request, domain), status.HTTP_201_CREATED)

    def retrieve(self, request, *args, **kwargs):
        try:
            return super().retrieve(request, *args, **kwargs)
        except NotFound:
            domain = self._acting_domain()
            if domain is None:
                raise
        return self.envelope(domain_as_project(request, domain))

    def partial_update(self, request, *args, **kwargs):
        try:
            return super().partial_update(request, *args, **kwargs)
        except NotFound:
            domain = self._acting_domain()
            if domain is None:
                raise
        fields = {key: value for key, value in self.request_body().items() if key != "is_domain"}
        serializer = DomainSerializer(domain, data=fields, partial=True, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return self.envelope(domain_as_project(request, self.save(serializer)))

    def destroy(self, request, *args, **kwargs):
        try:
            return super().destroy(request, *args, **kwargs)
        except NotFound:
            domain = self._acting_domain()
            if domain is None:
                raise
        delete_domain(domain)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        params = self.request.query_params
        # Keystone's tag filters: all of, any of, not all of, none of.
        tests = {"tags": lambda want, have: want <= have, "tags-any": lambda want, have: bool(want & have),
                 "not-tags": lambda want, have: not want <= have, "not-tags-any": lambda want, have: not want & have}
        chosen = {param: set(params[param].split(",")) for param in tests if param in params}
        if chosen:
            ids = [pk for pk, tags in queryset.values_list("id", "tags")
                   if all(tests[param](want, set(tags or [])) for param, want in chosen.items())]
            queryset = queryset.filter(id__in=ids)
        return queryset

    # /v3/projects/{id}/tags and /v3/projects/{id}/tags/{tag}

    def _set_tags(self, project, tags):
        project.tags = tags
        project.save(update_fields=["tags"])

    @action(detail=True, methods=["get", "put", "delete"], url_path="tags")
    def tags(self, request, pk=None):
        project = self.get_object()
        if request.method == "GET":
            return Response({"tags": project.tags or [], "links": self.collection_links()})
        if request.method == "DELETE":
            self._set_tags(project, [])
            return Response(status=status.HTTP_204_NO_CONTENT)
        body = request.data if isinstance(request.data, dict) else {}
        try:
            tags = checked_tags(body.get("tags"))
        except serializers.ValidationError as error:
            raise BadRequest(describe_validation_error({"tags": error.detail}))
        self._set_tags(project, tags)
        return Response({"tags": tags, "links": self.collection_links()})

    @action(detail=True, methods=["get", "head", "put", "delete"], url_path="tags/(?P<tag>[^/]+)")
    def tag(self, request, pk=None, tag=None):
        project = self.get_object()
        tags = list(project.tags or [])
        if request.method == "PUT":
            try:
                tags = checked_tags(tags + [tag])
            except serializers.ValidationError as error:
                raise BadRequest(describe_validation_error({"tag": error.detail}))
            self._set_tags(project, tags)
            # The API working group's tags guideline: 201, the tag's URL, no body.
            return Response(status=status.HTTP_201_CREATED, headers={"Location": request.build_absolute_uri()})
        if tag not in tags:
            raise NotFound(f"Could not find tag: {tag}.")
        if request.method == "DELETE":
            self._set_tags(project, [t for t in tags if t != tag])
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_destroy(self, project):
        if project.children.exists():
            raise Forbidden("Cannot delete a project that has child projects.")
        project.delete()


class UserViewSet(ResourceViewSet):
    queryset = User.objects.all()
    serializer_class = UserSerializer
    member_name, collection_name = "user", "users"
    filters = {"name": "name", "domain_id": "domain_id", "enabled": ("enabled", parse_bool)}
    policy = {"list": "admin", "retrieve": "any", "create": "admin", "partial_update": "admin",
              "destroy": "admin", "password": "public", "projects": "any", "groups": "any"}

    def get_queryset(self):
        # Outside admin, users see themselves only; anyone else reads as 404.
        if self.request.auth.is_admin:
            return User.objects.all()
        return User.objects.filter(id=self.request.auth.user_id)

    @action(detail=True, methods=["post"])
    def password(self, request, pk=None):
        # As Keystone's: the original password is the credential, no token
        # needed (a user whose password expired has none); an unknown user
        # is the same 401 as a wrong password.
        user = User.objects.filter(pk=pk).first()
        body = request.data.get("user") if isinstance(request.data, dict) else None
        if not isinstance(body, dict):
            raise BadRequest("Invalid input for field 'user': the request body must be {\"user\": {...}}.")
        for field in ("original_password", "password"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise BadRequest(f"Invalid input for field 'user.{field}': expected a non-empty string.")
        security_compliance.change_own_password(user, body["original_password"], body["password"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["get"])
    def projects(self, request, pk=None):
        user = self.get_object()
        data = ProjectSerializer(assignments.projects_of(user), many=True, context={"request": request}).data
        return Response({"projects": data, "links": self.collection_links()})

    @action(detail=True, methods=["get"])
    def groups(self, request, pk=None):
        user = self.get_object()
        data = GroupSerializer(user.groups.all(), many=True, context={"request": request}).data
        return Response({"groups": data, "links": self.collection_links()})


class GroupViewSet(ResourceViewSet):
    queryset = Group.objects.all()
    serializer_class = GroupSerializer
    member_name, collection_name = "group", "groups"
    filters = {"name": "name", "domain_id": "domain_id"}
    policy = {"list": "admin", "retrieve": "admin", "create": "admin", "partial_update": "admin",
              "destroy": "admin", "users": "admin"}

    @action(detail=True, methods=["get"])
    def users(self, request, pk=None):
        group = self.get_object()
        data = UserSerializer(group.users.all(), many=True, context={"request": request}).data
        return Response({"users": data, "links": self.collection_links()})


class GroupMemberView(ApiView):
    """PUT/HEAD/DELETE /v3/groups/{group}/users/{user}."""

    policy = {"put": "admin", "head": "admin", "get": "admin", "delete": "admin"}

    def _pair(self, group_id, user_id):
        group = Group.objects.filter(id=group_id).first()
        if group is None:
            raise NotFound(f"Could not find group: {group_id}.")
        user = User.objects.filter(id=user_id).first()
        if user is None:
            raise NotFound(f"Could not find user: {user_id}.")
        return group, user

    def put(self, request, group_id, user_id):
        group, user = self._pair(group_id, user_id)
        group.users.add(user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def head(self, request, group_id, user_id):
        group, user = self._pair(group_id, user_id)
        if not group.users.filter(id=user.id).exists():
            raise NotFound(f"User '{user_id}' not found in group '{group_id}'.")
        return Response(status=status.HTTP_204_NO_CONTENT)

    get = head

    def delete(self, request, group_id, user_id):
        group, user = self._pair(group_id, user_id)
        if not group.users.filter(id=user.id).exists():
            raise NotFound(f"User '{user_id}' not found in group '{group_id}'.")
        group.users.remove(user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoleViewSet(ResourceViewSet):
    queryset = Role.objects.all()
    serializer_class = RoleSerializer
    member_name, collection_name = "role", "roles"
    filters = {"name": "name", "domain_id": "domain_id"}
    policy = {"list": "reader", "retrieve": "reader", "create": "admin", "partial_update": "admin", "destroy": "admin"}

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if "domain_id" not in self.request.query_params:
            queryset = queryset.filter(domain=None)
        return queryset


# ---------------------------------------------------------------- role inference rules

def role_ref(request, role):
    return {"id": role.id, "name": role.name,
            "links": {"self": request.build_absolute_uri(f"/identity/v3/roles/{role.id}")}}


class RoleInferenceView(ApiView):
    """PUT/GET/HEAD/DELETE /v3/roles/{prior}/implies/{implied}."""

    policy = {"put": "admin", "get": "reader", "head": "reader", "delete": "admin"}

    def _body(self, request, prior, implied):
        path = f"/identity/v3/roles/{prior.id}/implies/{implied.id}"
        return {"role_inference": {"prior_role": role_ref(request, prior), "implies": role_ref(request, implied)},
                "links": {"self": request.build_absolute_uri(path)}}

    def _rule(self, prior_id, implied_id):
        prior, implied = _found(Role, "role", prior_id), _found(Role, "role", implied_id)
        rule = ImpliedRole.objects.filter(prior_role=prior, implied_role=implied).first()
        return prior, implied, rule

    def put(self, request, prior_id, implied_id):
        prior, implied, rule = self._rule(prior_id, implied_id)
        if implied.name in assignments.PROHIBITED_IMPLIED_ROLES and implied.domain_id is None:
            raise Forbidden(f"{implied.name} is not a role another role may imply.")
        if implied.domain_id is not None and prior.domain_id is None:
            raise Forbidden("A global role cannot imply a domain-specific role.")
        if prior.id == implied.id or any(
                role.id == prior.id for role, _ in assignments.implied_by(implied, assignments.inference_rules())):
            raise BadRequest(f"Role {implied.id} implying role {prior.id} would make a cycle of implied roles.")
        if rule is None:
            ImpliedRole.objects.get_or_create(prior_role=prior, implied_role=implied)
        return Response(self._body(request, prior, implied), status=status.HTTP_201_CREATED)

    def get(self, request, prior_id, implied_id):
        prior, implied, rule = self._rule(prior_id, implied_id)
        if rule is None:
            raise NotFound(f"{prior_id} does not imply {implied_id}.")
        return Response(self._body(request, prior, implied))

    def head(self, request, prior_id, implied_id):
        self.get(request, prior_id, implied_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def delete(self, request, prior_id, implied_id):
        prior, implied, rule = self._rule(prior_id, implied_id)
        if rule is None:
            raise NotFound(f"{prior_id} does not imply {implied_id}.")
        rule.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoleInferenceListView(ApiView):
    """GET /v3/roles/{prior}/implies: the roles one role implies directly."""

    policy = {"get": "reader", "head": "reader"}

    def get(self, request, prior_id):
        prior = _found(Role, "role", prior_id)
        implied = [role_ref(request, rule.implied_role)
                   for rule in ImpliedRole.objects.filter(prior_role=prior).select_related("implied_role")]
        return Response({"role_inference": {"prior_role": role_ref(request, prior), "implies": implied},
                         "links": {"self": request.build_absolute_uri()}})

    head = get


class RoleInferencesView(ApiView):
    """GET /v3/role_inferences: every rule, grouped by prior role."""

    policy = {"get": "reader", "head": "reader"}

    def get(self, request):
        grouped = {}
        for rule in ImpliedRole.objects.select_related("prior_role", "implied_role").order_by("prior_role_id"):
            entry = grouped.setdefault(rule.prior_role_id, {"prior_role": role_ref(request, rule.prior_role),
                                                            "implies": []})
            entry["implies"].append(role_ref(request, rule.implied_role))
        return Response({"role_inferences": list(grouped.values()), "links": {"self": request.build_absolute_uri()}})

    head = get


# ---------------------------------------------------------------- grants

TARGETS = {"projects": (Project, "project"), "domains": (Domain, "domain")}
ACTORS = {"users": (User, "user"), "groups": (Group, "group")}
SYSTEM_TARGET = "system"  # /v3/system/{users|groups}/{a}/roles: the whole cloud


class GrantView(ApiView):
    """PUT/HEAD/GET/DELETE /v3/{projects|domains}/{t}/{users|groups}/{a}/roles/{r},
    /v3/system/{users|groups}/{a}/roles/{r} and the OS-INHERIT variant on domains."""

    policy = {"put": "admin", "head": "admin", "get": "admin", "delete": "admin"}
    inherited = False

    def _resolve(self, kind, model, pk):
        obj = model.objects.filter(pk=pk).first()
        if obj is None:
            raise NotFound(f"Could not find {kind}: {pk}.")
        return obj

    def _grant(self, target_kind, actor_kind, actor_id, role_id, target_id=None):
        if target_kind == SYSTEM_TARGET:
            target = {"system": True}
        else:
            target_model, target_field = TARGETS[target_kind]
            target = {target_field: self._resolve(target_field, target_model, target_id)}
        actor_model, actor_field = ACTORS[actor_kind]
        actor = self._resolve(actor_field, actor_model, actor_id)
        role = self._resolve("role", Role, role_id)
        return {**target, actor_field: actor, "role": role, "inherited": self.inherited}

    def put(self, request, **kwargs):
        grant = self._grant(**kwargs)
        RoleAssignment.objects.get_or_create(**grant)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def head(self, request, **kwargs):
        grant = self._grant(**kwargs)
        if not RoleAssignment.objects.filter(**grant).exists():
            raise NotFound(f"Could not find role assignment with role: {kwargs['role_id']}.")
        return Response(status=status.HTTP_204_NO_CONTENT)

    get = head

    def delete(self, request, **kwargs):
        grant = self._grant(**kwargs)
        deleted, _ = RoleAssignment.objects.filter(**grant).delete()
        if not deleted:
            raise NotFound(f"Could not find role assignment with role: {kwargs['role_id']}.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class GrantListView(ApiView):
    """GET /v3/{projects|domains}/{t}/{users|groups}/{a}/roles"""

    policy = {"get": "admin"}
    inherited = False  # the OS-INHERIT list: grants inherited by the target's projects

    def get(self, request, target_kind, actor_kind, actor_id, target_id=None):
        if target_kind == SYSTEM_TARGET:
            target = {"system": True}
        else:
            target = {f"{TARGETS[target_kind][1]}_id": target_id}
        actor_field = ACTORS[actor_kind][1]
        role_ids = RoleAssignment.objects.filter(
            **target, **{f"{actor_field}_id": actor_id, "inherited": self.inherited}).values("role_id")
        roles = Role.objects.filter(id__in=role_ids)
        data = RoleSerializer(roles, many=True, context={"request": request}).data
        return Response({"roles": data, "links": {"self": request.build_absolute_uri(), "previous": None, "next": None}})


class RoleAssignmentListView(ApiView):
    """GET /v3/role_assignments with Keystone's filters, `effective` (group
    grants expanded to their members) and `include_names`."""

    policy = {"get": lambda request, view: request.query_params.get("user.id") == request.auth.user_id}

    def get(self, request):
        params = request.query_params
        rows = RoleAssignment.objects.select_related(
            "role", "user__domain", "group__domain", "project__domain", "domain").order_by("id")
        effective = "effective" in params
        for param, lookup in (("role.id", "role_id"), ("scope.domain.id", "domain_id"), ("group.id", "group_id")):
            if param in params:
                rows = rows.filter(**{lookup: params[param]})
        scoped_project = None
        if "scope.project.id" in params:
            scoped_project = Project.objects.select_related("domain").filter(id=params["scope.project.id"]).first()
            targets = Q(project_id=params["scope.project.id"])
            if effective and scoped_project is not None:
                # What the project inherits from its domain and its ancestors.
                targets = (Q(project_id=scoped_project.id, inherited=False)
                           | Q(domain_id=scoped_project.domain_id, inherited=True)
                           | Q(project_id__in=scoped_project.ancestor_ids(), inherited=True))
            rows = rows.filter(targets)
        if effective and "scope.domain.id" in params:
            rows = rows.filter(inherited=False)  # those act on the domain's projects, not on it
        if "scope.system" in params:
            if params["scope.system"] != "all":
                raise BadRequest("Invalid input for field 'scope.system': the only system is 'all'.")
            rows = rows.filter(system=True)
        if "scope.OS-INHERIT:inherited_to" in params:
            rows = rows.filter(inherited=True)
        include_names = "include_names" in params and params["include_names"].lower() not in FALSE_VALUES
        user_id = params.get("user.id")
        if user_id and not effective:
            rows = rows.filter(user_id=user_id)
        elif user_id:
            rows = rows.filter(Q(user_id=user_id) | Q(group__users__id=user_id))

        # Group grants expand to their members, read with the rows (one query
        # for every group's members), not one query per group.
        if effective and user_id:
            the_user = User.objects.select_related("domain").filter(id=user_id).first()
        elif effective:
            rows = rows.prefetch_related(Prefetch("group__users", queryset=User.objects.select_related("domain")))

        rules = assignments.inference_rules() if effective else {}
        assignments_out = []
        for row in rows:
            # Effective, an inherited grant is a grant on each project that inherits it.
            on_projects = [None]
            if effective and row.inherited:
                on_projects = [scoped_project] if scoped_project is not None else self._inheriting_projects(row)
            # Effective, a role is also every role it implies; a domain-specific
            # role acts only through those.
            roles = [(row.role, None)]
            if effective:
                roles = [(row.role, None)] if row.role.domain_id is None else []
                roles += assignments.implied_by(row.role, rules)
                roles = [(role, prior) for role, prior in roles if role.domain_id is None]
            for on_project in on_projects:
                for role, prior in roles:
                    if effective and row.group_id:
                        members = [the_user] if user_id else row.group.users.all()
                        for member in members:
                            assignments_out.append(self._render(
                                request, row, user=member, include_names=include_names, via_group=row.group,
                                on_project=on_project, role=role, prior=prior))
                    else:
                        assignments_out.append(self._render(request, row, user=row.user, include_names=include_names,
                                                            on_project=on_project, role=role, prior=prior))
        return Response({"role_assignments": assignments_out,
                         "links": {"self": request.build_absolute_uri(), "previous": None, "next": None}})

    def _named(self, obj, include_names, with_domain=True):
        ref = {"id": obj.id}
        if include_names:
            ref["name"] = obj.name
            if with_domain:
                ref["domain"] = {"id": obj.domain_id, "name": obj.domain.name}
        return ref

    @staticmethod
    def _inheriting_projects(row):
        projects = Project.objects.select_related("domain").order_by("id")
        if row.domain_id:
            return list(projects.filter(domain_id=row.domain_id))
        return list(projects.filter(id__in=row.project.descendant_ids()))

    def _render(self, request, row, user, include_names, via_group=None, on_project=None, role=None, prior=None):
        out = {"role": self._named(role or row.role, include_names, with_domain=False)}
        if user is not None:
            out["user"] = self._named(user, include_names)
        else:
            out["group"] = self._named(row.group, include_names)
        if on_project is not None:
            out["scope"] = {"project": self._named(on_project, include_names)}
            target = f"{'domains/' + row.domain_id if row.domain_id else 'projects/' + row.project_id}"
        elif row.system:
            out["scope"] = {"system": {"all": True}}
            target = "system"
        elif row.project_id:
            out["scope"] = {"project": self._named(row.project, include_names)}
            target = f"projects/{row.project_id}"
        else:
            out["scope"] = {"domain": self._named(row.domain, include_names, with_domain=False)}
            target = f"domains/{row.domain_id}"
        actor = f"users/{row.user_id}" if row.user_id else f"groups/{row.group_id}"
        path = f"/identity/v3/{target}/{actor}/roles/{row.role_id}"
        if row.inherited:
            path = f"/identity/v3/OS-INHERIT/{target}/{actor}/roles/{row.role_id}/inherited_to_projects"
            if on_project is None:
                out["scope"]["OS-INHERIT:inherited_to"] = "projects"
        out["links"] = {"assignment": request.build_absolute_uri(path)}
        if prior is not None:
            out["links"]["prior_role"] = request.build_absolute_uri(f"/identity/v3/roles/{prior.id}")
        if via_group is not None:
            out["links"]["membership"] = request.build_absolute_uri(
                f"/identity/v3/groups/{via_group.id}/users/{user.id}")
        return out


# ---------------------------------------------------------------- catalog

class RegionViewSet(ResourceViewSet):
    queryset = Region.objects.all()
    serializer_class = RegionSerializer
    member_name, collection_name = "region", "regions"
    filters = {"parent_region_id": "parent_region_id"}
    policy = {"list": "any", "retrieve": "any", "create": "admin", "update": "admin", "partial_update": "admin",
              "destroy": "admin"}

    def update(self, request, *args, **kwargs):
        """PUT /v3/regions/{id}: Keystone's create with the id the caller chose."""
        body = {**self.request_body(), "id": kwargs["pk"]}
        if Region.objects.filter(id=kwargs["pk"]).exists():
            raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {kwargs['pk']}.")
        serializer = self.get_serializer(data=body)
        serializer.is_valid(raise_exception=True)
        return self.envelope(self.get_serializer(self.save(serializer)).data, status.HTTP_201_CREATED)

    def perform_destroy(self, region):
        if region.children.exists() or region.endpoints.exists():
            raise Conflict(f"Region {region.id} has child regions or endpoints and cannot be deleted.")
        region.delete()

    def create(self, request, *args, **kwargs):
        body = self.request_body()
        if body.get("id") and Region.objects.filter(id=body["id"]).exists():
            raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {body['id']}.")
        return super().create(request, *args, **kwargs)


class ServiceViewSet(ResourceViewSet):
    queryset = Service.objects.all()
    serializer_class = ServiceSerializer
    member_name, collection_name = "service", "services"
    filters = {"type": "type", "name": "name"}
    policy = {"list": "admin", "retrieve": "admin", "create": "admin", "partial_update": "admin", "destroy": "admin"}


class EndpointViewSet(ResourceViewSet):
    queryset = Endpoint.objects.all()
    serializer_class = EndpointSerializer
    member_name, collection_name = "endpoint", "endpoints"
    filters = {"service_id": "service_id", "interface": "interface", "region_id": "region_id"}
    policy = {"list": "admin", "retrieve": "admin", "create": "admin", "partial_update": "admin", "destroy": "admin"}


class PolicyViewSet(ResourceViewSet):
    """/v3/policies: documents kept for services, read and written by admins."""

    queryset = Policy.objects.all()
    serializer_class = PolicySerializer
    member_name, collection_name = "policy", "policies"
    filters = {"type": "type"}
    policy = {"list": "admin", "retrieve": "admin", "create": "admin", "partial_update": "admin", "destroy": "admin"}


# ---------------------------------------------------------------- application credentials

class ApplicationCredentialCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    secret = serializers.CharField(required=False, allow_null=True, max_length=4096)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    unrestricted = StrictBooleanField(required=False, default=False)
    roles = serializers.ListField(child=serializers.DictField(), required=False)
    access_rules = serializers.ListField(child=serializers.DictField(), required=False)


def access_rules_for(user_id, requested):
    """The user's AccessRule rows for the requested rules: an existing one
    by id, or by what it allows (made when the user has none alike)."""
    rules = []
    for index, ref in enumerate(requested or []):
        field = f"access_rules[{index}]"
        if set(ref) == {"id"}:
            rule = AccessRule.objects.filter(user_id=user_id, id=ref["id"]).first()
            if rule is None:
                raise BadRequest(f"Invalid input for field '{field}': no access rule {ref['id']!r} of yours.")
            rules.append(rule)
            continue
        unknown = set(ref) - {"service", "method", "path", "id"}
        if unknown:
            raise BadRequest(f"Invalid input for field '{field}': unknown attribute {sorted(unknown)[0]!r}.")
        service, method, path = ref.get("service"), ref.get("method"), ref.get("path")
        if not isinstance(service, str) or not 0 < len(service) <= 64:
            raise BadRequest(f"Invalid input for field '{field}.service': a service type of at most 64 characters.")
        if method not in AccessRule.METHODS:
            raise BadRequest(f"Invalid input for field '{field}.method': one of {', '.join(AccessRule.METHODS)}.")
        if not isinstance(path, str) or not path.startswith("/") or len(path) > 255:
            raise BadRequest(f"Invalid input for field '{field}.path': a path starting with '/', at most 255 "
                             f"characters.")
        rule, _ = AccessRule.objects.get_or_create(user_id=user_id, service=service, method=method, path=path)
        rules.append(rule)
    return rules


class ApplicationCredentialViewSet(ResourceViewSet):
    serializer_class = ApplicationCredentialSerializer
    member_name, collection_name = "application_credential", "application_credentials"
    filters = {"name": "name"}
    policy = {"list": is_self, "retrieve": is_self, "create": is_self, "destroy": is_self}

    def get_queryset(self):
        return ApplicationCredential.objects.filter(user_id=self.kwargs["user_id"]).prefetch_related(
            "roles", "access_rules")

    def create(self, request, *args, **kwargs):
        credentials = request.auth
        if credentials.user_id != kwargs["user_id"]:
            raise Forbidden("Application credentials can only be created for yourself.")
        if not credentials.project_id:
            raise Forbidden("Creating an application credential needs a project-scoped token.")
        if credentials.application_credential_id and not credentials.unrestricted:
            raise Forbidden("A restricted application credential cannot create another one.")
        if credentials.trust_id:
            raise Forbidden("A trust-scoped token cannot create an application credential.")
        if credentials.extra.get("oauth1"):
            raise Forbidden("A token made with an OAuth access token cannot create an application credential.")
        body = ApplicationCredentialCreateSerializer(data=self.request_body())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("expires_at") and data["expires_at"] <= timezone.now():
            raise BadRequest("Invalid input for field 'expires_at': must be in the future.")
        roles = self._roles(data.get("roles"), credentials)
        secret = data.get("secret") or secrets.token_urlsafe(64)
        with transaction.atomic():
            if ApplicationCredential.objects.filter(user_id=credentials.user_id, name=data["name"]).exists():
                raise Conflict(f"Conflict occurred attempting to store application_credential - "
                               f"Duplicate entry found with name {data['name']}.")
            credential = ApplicationCredential.objects.create(
                name=data["name"], description=data.get("description") or "", user_id=credentials.user_id,
                project_id=credentials.project_id, secret_hash=hash_secret(secret),
                expires_at=data.get("expires_at"), unrestricted=data["unrestricted"])
            credential.roles.set(roles)
            credential.access_rules.set(access_rules_for(credentials.user_id, data.get("access_rules")))
        body = self.get_serializer(credential).data
        body["secret"] = secret  # shown this once only
        return self.envelope(body, status.HTTP_201_CREATED)

    def _roles(self, requested, credentials):
        """The token's roles, or the requested ones among those the user
        holds in the project now (granted since the token was issued too)."""
        held = {role.name: role for role in Role.objects.filter(name__in=credentials.roles, domain=None)}
        if not requested:
            return list(held.values())
        if not credentials.application_credential_id:
            user = User.objects.get(id=credentials.user_id)
            held = {role.name: role for role in assignments.roles_on_project(user, Project.objects.get(
                id=credentials.project_id))}
        chosen = []
        for index, ref in enumerate(requested):
            role = next((r for r in held.values() if r.id == ref.get("id") or r.name == ref.get("name")), None)
            if role is None:
                raise BadRequest(f"Invalid input for field 'roles[{index}]': you do not hold the role "
                                 f"{ref.get('name') or ref.get('id')} in this project.")
            chosen.append(role)
        return chosen


class AccessRuleViewSet(ResourceViewSet):
    """/v3/users/{id}/access_rules: a user's rules; one still named by an
    application credential cannot be deleted."""

    serializer_class = AccessRuleSerializer
    member_name, collection_name = "access_rule", "access_rules"
    filters = {"service": "service", "method": "method", "path": "path"}
    policy = {"list": is_self, "retrieve": is_self, "destroy": is_self}

    def get_queryset(self):
        return AccessRule.objects.filter(user_id=self.kwargs["user_id"])

    def perform_destroy(self, rule):
        if rule.application_credentials.exists():
            raise Forbidden(f"Cannot delete access rule {rule.id}: an application credential still uses it.")
        rule.delete()


# ---------------------------------------------------------------- credentials

def _found(model, kind, pk):
    obj = model.objects.filter(pk=pk).first()
    if obj is None:
        raise NotFound(f"Could not find {kind}: {pk}.")
    return obj


def _bound_ec2_blob(request, blob, project):
    """An ec2 blob made with an application credential's or a trust's token
    remembers it, as Keystone's does, so what the keys later authenticate
    stays bound to it (/v3/ec2tokens). A consumer's OAuth delegation
    cannot be turned into keys that outlive it."""
    if request.auth.extra.get("oauth1"):
        raise Forbidden("A token made with an OAuth access token cannot create ec2 credentials.")
    if request.auth.trust_id:
        if project.id != request.auth.project_id:
            raise Forbidden("Ec2 credentials made with a trust's token are for the trust's project.")
        blob["trust_id"] = request.auth.trust_id
    if request.auth.application_credential_id:
        blob["app_cred_id"] = request.auth.application_credential_id
    return blob


class CredentialViewSet(ResourceViewSet):
    """/v3/credentials: an admin's for every user, anyone else's own only
    (another user's credential reads as 404)."""

    serializer_class = CredentialSerializer
    member_name, collection_name = "credential", "credentials"
    filters = {"user_id": "user_id", "type": "type"}
    policy = {"list": "any", "retrieve": "any", "create": "any", "partial_update": "any", "destroy": "any"}

    def get_queryset(self):
        if self.request.auth.is_admin:
            return Credential.objects.all()
        return Credential.objects.filter(user_id=self.request.auth.user_id)

    def create(self, request, *args, **kwargs):
        body = CredentialBodySerializer(data=self.request_body())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if not request.auth.is_admin and data["user_id"] != request.auth.user_id:
            raise Forbidden(DENIED)
        user = _found(User, "user", data["user_id"])
        project = _found(Project, "project", data["project_id"]) if data.get("project_id") else None
        blob, pk = data["blob"], new_id()
        if credential_rules.is_ec2(data["type"]):
            if project is None:
                raise BadRequest("Invalid input for field 'project_id': an ec2 credential needs a project.")
            parsed = _bound_ec2_blob(request, credential_rules.ec2_blob(blob), project)
            blob, pk = json.dumps(parsed), credential_rules.ec2_id(parsed["access"])
        try:
            with transaction.atomic():
                credential = Credential.objects.create(id=pk, user=user, project=project, type=data["type"],
                                                       blob=blob)
        except IntegrityError:
            raise Conflict(f"Conflict occurred attempting to store credential - Duplicate ID, {pk}.")
        return self.envelope(self.get_serializer(credential).data, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        credential = self.get_object()
        body = CredentialBodySerializer(data=self.request_body(), partial=True)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if "user_id" in data and data["user_id"] != credential.user_id:
            if not request.auth.is_admin:
                raise Forbidden("Only an administrator can give a credential to another user.")
            credential.user = _found(User, "user", data["user_id"])
        if "project_id" in data:
            credential.project = _found(Project, "project", data["project_id"]) if data["project_id"] else None
        new_type, new_blob = data.get("type", credential.type), data.get("blob", credential.blob)
        if credential_rules.is_ec2(new_type):
            if credential.project is None:
                raise BadRequest("Invalid input for field 'project_id': an ec2 credential needs a project.")
            if credential_rules.is_ec2(credential.type):
                credential_rules.check_ec2_update(credential.blob, new_blob)
            else:
                credential_rules.ec2_blob(new_blob)
        credential.type, credential.blob = new_type, new_blob
        credential.save()
        return self.envelope(self.get_serializer(credential).data)


def ec2_credential_body(request, credential):
    """A credential as /v3/users/{id}/credentials/OS-EC2 shows it."""
    blob = json.loads(credential.blob)
    body = {"user_id": credential.user_id, "tenant_id": credential.project_id, "access": blob.get("access"),
            "secret": blob.get("secret"), "trust_id": blob.get("trust_id")}
    for key in ("app_cred_id", "access_token_id"):
        if key in blob:
            body[key] = blob[key]
    path = f"/identity/v3/users/{credential.user_id}/credentials/OS-EC2/{body['access']}"
    body["links"] = {"self": request.build_absolute_uri(path)}
    return body


class Ec2CredentialListView(ApiView):
    """GET/POST /v3/users/{user_id}/credentials/OS-EC2: a user's own (or an
    admin's for anyone) ec2 keys for a project."""

    policy = {"get": is_self, "post": is_self}

    def get(self, request, user_id):
        _found(User, "user", user_id)
        rows = Credential.objects.filter(user_id=user_id, type=credential_rules.EC2)
        return Response({"credentials": [ec2_credential_body(request, row) for row in rows],
                         "links": {"self": request.build_absolute_uri(), "previous": None, "next": None}})

    def post(self, request, user_id):
        user = _found(User, "user", user_id)
        body = request.data if isinstance(request.data, dict) else None
        if body is None or not isinstance(body.get("tenant_id"), str) or not body["tenant_id"]:
            raise BadRequest("Invalid input for field 'tenant_id': expected the id of a project.")
        project = _found(Project, "project", body["tenant_id"])
        blob = _bound_ec2_blob(request, credential_rules.new_ec2_blob(), project)
        credential = Credential.objects.create(id=credential_rules.ec2_id(blob["access"]), user=user,
                                               project=project, type=credential_rules.EC2, blob=json.dumps(blob))
        return Response({"credential": ec2_credential_body(request, credential)}, status=status.HTTP_201_CREATED)


class Ec2CredentialView(ApiView):
    """GET/DELETE /v3/users/{user_id}/credentials/OS-EC2/{access}."""

    policy = {"get": is_self, "delete": is_self}

    def _credential(self, user_id, access):
        _found(User, "user", user_id)
        credential_id = credential_rules.ec2_id(access)
        credential = Credential.objects.filter(id=credential_id, user_id=user_id, type=credential_rules.EC2).first()
        if credential is None:
            raise NotFound(f"Could not find credential: {credential_id}.")
        return credential

    def get(self, request, user_id, access):
        return Response({"credential": ec2_credential_body(request, self._credential(user_id, access))})

    def delete(self, request, user_id, access):
        self._credential(user_id, access).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
