"""What every Block Storage v3 view shares, written once: the project in
the path (`/v3/{project_id}/...`: another project's is 404 unless the
caller is an admin), the microversion (`OpenStack-API-Version: volume
3.x`, answered in the same header), Cinder's filters, `sort`, limit/marker
with `<collection>_links`, and Cinder's error words."""
import re
import uuid

from django.core.exceptions import ValidationError
from django.db.models.fields.json import KeyTransform
from rest_framework import serializers
from rest_framework.response import Response

from cloud.errors import ApiError, BadRequest, NotFound
from cloud.negotiation import JsonOnly
from cloud.pagination import paginate, parse_sort
from cloud.viewsets import EmptyIdIsNotFound, ResourceViewSet, parse_bool
from cloud.views import ApiView

MIN_VERSION = (3, 0)
# The highest microversion whose behaviour is implemented: messages (3.3),
# attachments (3.27), user_id of snapshots (3.41), attachment complete (3.44).
MAX_VERSION = (3, 44)


def version_string(version):
    return f"{version[0]}.{version[1]}"


def parse_version(request):
    raw = None
    for part in request.headers.get("OpenStack-API-Version", "").split(","):
        service, _, value = part.strip().partition(" ")
        if service.lower() == "volume":
            raw = value.strip()
    if raw is None:
        return MIN_VERSION
    if raw.lower() == "latest":
        return MAX_VERSION
    match = re.fullmatch(r"(\d+)\.(\d+)", raw)
    if not match:
        raise BadRequest(f"Invalid API version: {raw} is not a version of the form 3.N.")
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ApiError(f"Version {raw} is not supported by the API. Minimum is {version_string(MIN_VERSION)} and "
                       f"maximum is {version_string(MAX_VERSION)}.", status=406)
    return version


def invalid_input(reason):
    return BadRequest(f"Invalid input received: {reason}")


def not_found(kind, resource_id):
    return NotFound(f"{kind} {resource_id} could not be found.")


def is_uuid(value):
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def cinder_time(value):
    """Cinder's timestamps: 2018-04-25T01:26:36.000000."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def as_bool(value, field):
    return parse_bool(value, field)


def as_int(value, field):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_input(f"{field} must be an integer, not {value!r}.") from None


def body_of(request, name):
    """The object inside the request's {"name": {...}} envelope."""
    data = request.data
    if not isinstance(data, dict) or not isinstance(data.get(name), dict):
        raise BadRequest(f"Invalid input for field '{name}': the request body must be {{\"{name}\": {{...}}}}.")
    return data[name]


def validated(serializer_class, data, partial=False):
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def metadata_value(value, field="metadata"):
    """Cinder's metadata: string keys of 1-255 characters, string values of up to 255."""
    if not isinstance(value, dict):
        raise invalid_input(f"{field} must be an object of strings.")
    for key, item in value.items():
        if not isinstance(key, str) or not 0 < len(key) <= 255 or not isinstance(item, str) or len(item) > 255:
            raise invalid_input(f"{field}: keys must be 1 to 255 characters and values strings of at most 255 "
                                f"characters ({key!r}).")
    return dict(value)


class MetadataField(serializers.Field):
    def to_internal_value(self, data):
        return metadata_value(data, self.field_name)


class CinderMixin:
    """The project in the path and the microversion, for views and viewsets."""

    content_negotiation_class = JsonOnly

    def initial(self, request, *args, **kwargs):
        request.api_version = MIN_VERSION
        request.api_version = parse_version(request)
        super().initial(request, *args, **kwargs)
        project_id = kwargs.get("project_id")
        if project_id is not None and request.auth is not None and not request.auth.is_admin and \
                project_id != request.auth.project_id:
            raise NotFound("The resource could not be found.")

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        version = getattr(request, "api_version", None) or MIN_VERSION
        response["OpenStack-API-Version"] = f"volume {version_string(version)}"
        response["Vary"] = "OpenStack-API-Version"
        return response

    @property
    def caller(self):
        return self.request.auth

    def needs_version(self, version, what):
        if self.request.api_version < version:
            raise NotFound(f"{what} needs microversion {version_string(version)} or later.")

    def link(self, collection, resource_id):
        base = f"/volume/v3/{self.kwargs.get('project_id') or self.caller.project_id}/{collection}/{resource_id}"
        return [{"rel": "self", "href": self.request.build_absolute_uri(base)},
                {"rel": "bookmark", "href": self.request.build_absolute_uri(base.replace("/v3/", "/", 1))}]


class CinderView(CinderMixin, ApiView):
    pass


class CinderViewSet(CinderMixin, EmptyIdIsNotFound, ResourceViewSet):
    """A Cinder collection. Subclasses declare the queryset, `kind` (the
    resource's name in errors), `filters` and `sort_keys` by wire name, and
    `render(row)` / `summary(row)`."""

    kind = None
    filters = {}
    sort_keys = {}
    default_sort = (("created_at", "desc"),)
    lookup_value_regex = "[^/]+"
    COMMON_SORT_KEYS = {"id": "id", "name": "name", "display_name": "name", "created_at": "created_at",
                        "updated_at": "updated_at", "status": "status"}

    def visible(self, queryset):
        """An admin sees every project's rows (listing them asks for
        all_tenants, as in Cinder); others their project's."""
        listing = self.action in ("list", "list_detail")
        if self.caller.is_admin and (not listing or
                                     parse_bool(self.request.query_params.get("all_tenants", "0"), "all_tenants")):
            project_filter = self.request.query_params.get("project_id")
            return queryset.filter(project_id=project_filter) if project_filter and listing else queryset
        return queryset.filter(project_id=self.caller.project_id)

    def get_queryset(self):
        return self.visible(self.queryset.all())

    def get_object(self, locked=False):
        lookup = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        queryset = self.get_queryset()
        if locked:
            queryset = queryset.select_for_update(of=("self",))
        try:
            obj = queryset.filter(pk=lookup).first() if is_uuid(lookup) else None
        except (ValueError, ValidationError):
            obj = None
        if obj is None:
            raise not_found(self.kind, lookup)
        return obj

    def filter_queryset(self, queryset):
        params = self.request.query_params
        for param, lookup in self.filters.items():
            if param not in params:
                continue
            value = params[param]
            if isinstance(lookup, tuple):
                lookup, parser = lookup
                value = parser(value, param)
            if value is None:
                return queryset.none()
            queryset = queryset.filter(**{lookup: value})
        if "metadata" in params and hasattr(queryset.model, "metadata"):
            # One key lookup per item: JSON containment is PostgreSQL's only,
            # and the all-in-one runs on SQLite.
            for index, (key, value) in enumerate(self.parse_metadata_filter(params["metadata"]).items()):
                alias = f"metadata_item_{index}"
                queryset = queryset.alias(**{alias: KeyTransform(key, "metadata")}).filter(**{alias: value})
        return queryset

    @staticmethod
    def parse_metadata_filter(raw):
        """`metadata={'k': 'v'}` (as the clients send it), a JSON object."""
        import ast
        import json

        for parse in (json.loads, ast.literal_eval):
            try:
                value = parse(raw)
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
        raise invalid_input(f"metadata filter {raw!r} is not an object.")

    def render(self, row):
        raise NotImplementedError

    def summary(self, row):
        return {"id": str(row.id), "name": row.name, "links": self.link(self.collection_name, row.id)}

    def page(self, detail):
        queryset = self.filter_queryset(self.get_queryset())
        pairs = parse_sort(self.request, {**self.COMMON_SORT_KEYS, **self.sort_keys}, self.default_sort)
        # The marker is looked for among what the caller sees, as Cinder does:
        # another project's id is no position in this list.
        rows, next_url = paginate(self.request, queryset, pairs, offset=self.offset(), markers=self.get_queryset(),
                                  marker_not_found="Marker {marker} could not be found.", marker_error=NotFound)
        rows = self.prefetch(rows)
        body = {self.collection_name: [self.render(row) if detail else self.summary(row) for row in rows]}
        if next_url:
            body[f"{self.collection_name}_links"] = [{"rel": "next", "href": next_url}]
        return Response(body)

    def prefetch(self, rows):
        return rows

    def offset(self):
        raw = self.request.query_params.get("offset", "0")
        # Bounded so the database's 64-bit OFFSET takes it.
        if not (raw.isascii() and raw.isdigit()) or int(raw) >= 2**63:
            raise BadRequest(f"Invalid input for field 'offset': {raw!r} is not a non-negative integer.")
        return int(raw)

    def list(self, request, *args, **kwargs):
        return self.page(detail=False)

    def list_detail(self, request, *args, **kwargs):
        return self.page(detail=True)

    def retrieve(self, request, *args, **kwargs):
        return Response({self.member_name: self.render(self.get_object())})

    def writable(self, obj):
        """Raises unless the caller may change `obj`: admins, and members of its project."""
        if not self.caller.is_admin and obj.project_id != self.caller.project_id:
            raise not_found(self.kind, obj.pk)
        return obj
