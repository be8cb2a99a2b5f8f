"""What every Networking v2.0 resource shares, written once: Neutron's
filters (any attribute, repeated for OR), `fields=`, `sort_key`/`sort_dir`,
`limit`/`marker` with `<collection>_links`, tags, project scoping and the
admin-only attributes."""
import ipaddress
import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from cloud.errors import ApiError, BadRequest
from cloud.pagination import paginate, parse_sort
from cloud.policy import ROLE_RULES
from cloud.viewsets import ResourceViewSet, column_value, parse_bool
from network import errors
from network.models import Tag

MAX_TAG_LENGTH = 255


def reader_or_member(request, view):
    """Reading needs the reader role, changing needs member."""
    rule = "reader" if request.method in ("GET", "HEAD") else "member"
    return request.auth.has_role(*ROLE_RULES[rule])


POLICY = {"list": "reader", "retrieve": "reader", "create": "member", "partial_update": "member",
          "update": "member", "destroy": "member", "tags": reader_or_member, "tag": reader_or_member}


def policy_denied(rule):
    return ApiError(f"({rule}) is disallowed by policy", status=403, kind="PolicyNotAuthorized")


def as_int(value, field):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not an integer.")
    if not -2**63 <= number < 2**63:  # no column holds it (SQLite cannot even bind it)
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is out of range.")
    return number


def as_uuid(value, field):
    """A filter on an id that is no UUID matches nothing rather than failing."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def as_address(value, field):
    """A filter on an IP address that is no address matches nothing."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def admin_status(admin_state_up):
    """A network's or router's status, which follows its admin state (its
    ports' follow their plumbing too, reported by the agents)."""
    return "ACTIVE" if admin_state_up else "DOWN"


def as_bool(value, field):
    return parse_bool(value, field)


class NeutronSerializer(serializers.Serializer):
    """Validates a request body. `wire_names` maps attribute names that are
    not Python names ("router:external") to the field that reads them;
    unknown attributes are refused, as Neutron does."""

    wire_names = {}
    fixed_after_create = ()  # attributes an update may not carry
    # Kept as given, spaces included, as Neutron keeps them.
    name = serializers.CharField(max_length=255, allow_blank=True, required=False, trim_whitespace=False)
    description = serializers.CharField(max_length=255, allow_blank=True, allow_null=True, required=False,
                                        trim_whitespace=False)
    project_id = serializers.CharField(max_length=64, required=False)
    tenant_id = serializers.CharField(max_length=64, required=False)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise BadRequest("Invalid input: the request body must be an object.")
        # The owner of a row never changes.
        fixed_after_create = (*self.fixed_after_create, "project_id", "tenant_id") if self.partial else ()
        fixed = sorted(key for key in data if key in fixed_after_create)
        if fixed:
            raise BadRequest(f"Cannot update read-only attribute {', '.join(fixed)}")
        fields = {self.wire_names.get(key, key): value for key, value in data.items()}
        unknown = sorted(key for key, field in zip(data, fields) if field not in self.fields
                         or self.fields[field].read_only)
        if unknown:
            raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        try:
            values = super().to_internal_value(fields)
        except serializers.ValidationError as error:
            wire = {field: key for key, field in self.wire_names.items()}
            if isinstance(error.detail, dict):
                error.detail = {wire.get(key, key): value for key, value in error.detail.items()}
            raise
        if values.get("description") is None and "description" in values:
            values["description"] = ""
        return values


class NeutronViewSet(ResourceViewSet):
    """A flat Neutron resource. Subclasses declare the queryset, the
    serializer that validates bodies, `render(row)` for the wire form, and
    `filters` / `sort_keys` by wire attribute name."""

    kind = None               # Neutron's name of the resource in errors: "Network"
    filters = {}              # wire attribute -> lookup, or (lookup, parser)
    sort_keys = {}            # wire attribute -> model field
    default_sort = (("created_at", "asc"),)
    admin_only = ()           # wire attributes only an admin may set
    tagged = True
    policy = POLICY
    update_serializer_class = None  # the body of an update, when it differs from a create's

    def get_serializer_class(self):
        if self.action in ("update", "partial_update") and self.update_serializer_class is not None:
            return self.update_serializer_class
        return self.serializer_class

    COMMON_FILTERS = {
        "id": ("id", as_uuid), "name": "name", "description": "description", "project_id": "project_id",
        "tenant_id": "project_id", "revision_number": ("revision_number", as_int),
    }
    COMMON_SORT_KEYS = {"id": "id", "name": "name", "project_id": "project_id", "tenant_id": "project_id",
                        "created_at": "created_at", "updated_at": "updated_at"}

    # --- who sees what

    @property
    def caller(self):
        return self.request.auth

    def visible(self, queryset):
        """Rows the caller may see: an admin sees all, others their project's."""
        if self.caller.is_admin:
            return queryset
        return queryset.filter(project_id=self.caller.project_id)

    def get_queryset(self):
        return self.visible(self.queryset.all())

    def get_object(self):
        lookup = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        try:
            obj = self.get_queryset().filter(pk=lookup).first()
        except (ValueError, ValidationError):
            obj = None
        if obj is None:
            raise errors.not_found(self.kind, lookup)
        return obj

    def writable(self, obj):
        """Raises unless the caller may change `obj`: admins and its owner may."""
        if not self.caller.is_admin and obj.project_id != self.caller.project_id:
            raise policy_denied(f"{self.action}_{self.member_name}")
        return obj

    def owner_of(self, values):
        """The project a new row belongs to: the caller's, or the one an
        admin names."""
        requested = values.pop("project_id", None) or values.pop("tenant_id", None)
        values.pop("tenant_id", None)
        if requested and requested != self.caller.project_id and not self.caller.is_admin:
            raise policy_denied(f"create_{self.member_name}")
        return requested or self.caller.project_id

    def check_admin_only(self, body):
        if self.caller.is_admin:
            return
        for attribute in self.admin_only:
            if attribute in body:
                operation = "create" if self.action == "create" else "update"
                raise policy_denied(f"{operation}_{self.member_name}:{attribute}")

    # --- creating: one member, or Neutron's bulk form

    bulk = False  # POST also takes {"<collection>": [{...}, ...]}, all made or none
    bulk_member = None  # the member of a bulk body being made

    def request_body(self):
        if self.bulk_member is not None:
            return self.bulk_member
        return super().request_body()

    def create(self, request, *args, **kwargs):
        data = request.data
        if not (self.bulk and isinstance(data, dict) and self.collection_name in data):
            return self.create_one()
        members = data[self.collection_name]
        if not isinstance(members, list) or not members or not all(isinstance(m, dict) for m in members):
            raise BadRequest(f"Invalid input for field '{self.collection_name}': expected a non-empty list of "
                             f"objects.")
        made = []
        # One transaction: an invalid member leaves none of the others made.
        with transaction.atomic():
            for member in members:
                self.bulk_member = member
                made.append(self.create_one().data[self.member_name])
        self.bulk_member = None
        return Response({self.collection_name: made}, status=status.HTTP_201_CREATED)

    def create_one(self):
        raise NotImplementedError

    def validated(self, partial=False):
        body = self.request_body()
        self.check_admin_only(body)
        serializer = self.get_serializer(data=body, partial=partial)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    # --- reading

    def filter_queryset(self, queryset):
        params = self.request.query_params
        declared = {**self.COMMON_FILTERS, **self.filters}
        for param, lookup in declared.items():
            values = params.getlist(param)
            if not values:
                continue
            parser = None
            if isinstance(lookup, tuple):
                lookup, parser = lookup
            if parser is not None:
                values = [parser(value, param) for value in values]
            else:
                values = [column_value(queryset.model, lookup, value, param) for value in values]
            queryset = queryset.filter(**{f"{lookup}__in": [v for v in values if v is not None]})
        if self.tagged:
            queryset = self.filter_tags(queryset, params)
        return queryset

    def filter_tags(self, queryset, params):
        def tag_list(param):
            return [tag for value in params.getlist(param) for tag in value.split(",") if tag]

        def tagged_with(tag):
            return Tag.objects.filter(tag=tag).values("resource_id")

        for tag in tag_list("tags"):
            queryset = queryset.filter(id__in=tagged_with(tag))
        if tag_list("tags-any"):
            queryset = queryset.filter(id__in=Tag.objects.filter(tag__in=tag_list("tags-any")).values("resource_id"))
        not_all = tag_list("not-tags")
        if not_all:
            having_all = None
            for tag in not_all:
                ids = set(Tag.objects.filter(tag=tag).values_list("resource_id", flat=True))
                having_all = ids if having_all is None else having_all & ids
            queryset = queryset.exclude(id__in=having_all)
        if tag_list("not-tags-any"):
            queryset = queryset.exclude(
                id__in=Tag.objects.filter(tag__in=tag_list("not-tags-any")).values("resource_id"))
        return queryset

    def tags_of(self, rows):
        """{resource id: [tags]} for the rows, in one query."""
        tags = {row.id: [] for row in rows}
        if self.tagged and rows:
            for resource_id, tag in Tag.objects.filter(resource_id__in=list(tags)).values_list("resource_id", "tag"):
                tags[resource_id].append(tag)
        return tags

    def render(self, row, tags):
        raise NotImplementedError

    def common(self, row, tags):
        """The attributes every resource shows."""
        body = {"id": str(row.id), "name": row.name, "description": row.description,
                "project_id": row.project_id, "tenant_id": row.project_id,
                "created_at": row.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "updated_at": row.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "revision_number": row.revision_number}
        if self.tagged:
            body["tags"] = tags.get(row.id, [])
        return body

    def only_fields(self, body):
        fields = [field for value in self.request.query_params.getlist("fields") for field in value.split(",")]
        if not fields:
            return body
        return {key: value for key, value in body.items() if key in fields}

    def show(self, row, status_code=status.HTTP_200_OK):
        # A row just made has no tags yet.
        tags = {} if status_code == status.HTTP_201_CREATED else self.tags_of([row])
        body = self.only_fields(self.render(row, tags))
        return Response({self.member_name: body}, status=status_code)

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        pairs = parse_sort(request, {**self.COMMON_SORT_KEYS, **self.sort_keys}, self.default_sort)
        # The marker is looked for among what the caller sees.
        rows, next_url = paginate(request, queryset, pairs, markers=self.get_queryset(),
                                  marker_not_found=f"{self.kind} {{marker}} could not be found.")
        tags = self.tags_of(rows)
        body = {self.collection_name: [self.only_fields(self.render(row, tags)) for row in rows]}
        if next_url:
            body[f"{self.collection_name}_links"] = [{"rel": "next", "href": next_url}]
        return Response(body)

    def retrieve(self, request, *args, **kwargs):
        return self.show(self.get_object())

    def update(self, request, *args, **kwargs):
        # Neutron's update is PUT with only the attributes that change.
        return self.partial_update(request, *args, **kwargs)

    def partial_update(self, request, *args, **kwargs):
        """Resources that can change say how; the others cannot."""
        self.get_object()
        raise BadRequest(f"A {self.member_name.replace('_', ' ')} cannot be updated: delete it and create another.")

    def destroy(self, request, *args, **kwargs):
        obj = self.writable(self.get_object())
        with transaction.atomic():
            # Locked first: a row being made that points at this one commits
            # before (and is seen by perform_destroy) or finds it gone.
            obj = type(obj).objects.select_for_update().filter(pk=obj.pk).first()
            if obj is None:
                raise errors.not_found(self.kind, self.kwargs[self.lookup_url_kwarg or self.lookup_field])
            self.perform_destroy(obj)
            Tag.objects.filter(resource_id=obj.id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- tags: /<collection>/<id>/tags[/<tag>]

    def tags_body(self):
        data = self.request.data
        if not isinstance(data, dict) or not isinstance(data.get("tags"), list) or \
                not all(isinstance(tag, str) and 0 < len(tag) <= MAX_TAG_LENGTH and "," not in tag
                        for tag in data["tags"]):
            raise BadRequest("Invalid input for field 'tags': expected a list of non-empty strings without commas, "
                             f"{MAX_TAG_LENGTH} characters at most.")
        return list(dict.fromkeys(data["tags"]))

    @action(detail=True, methods=["get", "put", "delete"], url_path="tags")
    def tags(self, request, pk=None):
        obj = self.get_object()
        if request.method == "GET":
            return Response({"tags": list(Tag.objects.filter(resource_id=obj.id).values_list("tag", flat=True))})
        self.writable(obj)
        with transaction.atomic():
            Tag.objects.filter(resource_id=obj.id).delete()
            if request.method == "DELETE":
                return Response(status=status.HTTP_204_NO_CONTENT)
            tags = self.tags_body()
            Tag.objects.bulk_create([Tag(resource_id=obj.id, tag=tag) for tag in tags])
        return Response({"tags": tags})

    @action(detail=True, methods=["get", "put", "delete"], url_path=r"tags/(?P<tag>[^/]+)")
    def tag(self, request, pk=None, tag=None):
        obj = self.get_object()
        exists = Tag.objects.filter(resource_id=obj.id, tag=tag).exists()
        if request.method == "GET":
            if not exists:
                raise ApiError(f"Tag {tag} could not be found.", status=404, kind="TagNotFound")
            return Response(status=status.HTTP_204_NO_CONTENT)
        self.writable(obj)
        if request.method == "PUT":
            if len(tag) > MAX_TAG_LENGTH or "," in tag:
                raise BadRequest(f"Invalid input for field 'tag': {tag!r} is longer than {MAX_TAG_LENGTH} "
                                 f"characters or has a comma.")
            Tag.objects.bulk_create([Tag(resource_id=obj.id, tag=tag)], ignore_conflicts=True)
            return Response(status=status.HTTP_201_CREATED)
        if not exists:
            raise ApiError(f"Tag {tag} could not be found.", status=404, kind="TagNotFound")
        Tag.objects.filter(resource_id=obj.id, tag=tag).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
