"""The one base for resource APIs: OpenStack envelopes ({"project": {...}}
in and out, {"projects": [...]} for lists), 404s that name the resource,
query-string filters declared per view, and the policy of cloud.policy."""
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import IntegrityError, connection, transaction
from rest_framework import status, viewsets
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict, NotFound

TRUE_VALUES = ("true", "1", "yes", "on")
FALSE_VALUES = ("false", "0", "no", "off")


def parse_bool(value, field):
    lowered = str(value).lower()
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES:
        return False
    raise BadRequest(f"Invalid input for field '{field}': {value!r} is not a boolean.")


def column_value(model, lookup, value, param):
    """A filter's value, checked against the column it is compared with: one
    the column cannot take (an address that is not one, a number that is not)
    is a 400 naming the parameter, not an error when the query is sent."""
    try:
        field = model._meta.get_field(lookup)
    except FieldDoesNotExist:  # a lookup across a relation or with a transform
        return value
    if field.is_relation:
        return value
    try:
        prepared = field.get_db_prep_value(value, connection, prepared=False)
        if isinstance(prepared, int) and not isinstance(prepared, bool):
            # Past the column's range: the same 400 on every database (SQLite
            # cannot even bind it).
            low, high = connection.ops.integer_field_range(field.get_internal_type())
            if (low is not None and prepared < low) or (high is not None and prepared > high):
                raise ValueError(prepared)
    except (ValueError, TypeError, ValidationError, KeyError):
        raise BadRequest(f"Invalid input for field '{param}': {value!r} is not a valid value.")
    return value


class ResourceViewSet(viewsets.GenericViewSet):
    member_name = None       # "project"
    collection_name = None   # "projects"
    lookup_value_regex = "[^/]+"
    # query parameter -> model lookup; a (lookup, parser) pair to convert the value
    filters = {}
    policy = {}
    # message of the 409 when a unique constraint refuses a write
    conflict_message = "Conflict occurred attempting to store {member} - Duplicate entry found with name {name}."

    def get_queryset(self):
        return self.queryset.all()

    def filter_queryset(self, queryset):
        params = self.request.query_params
        for param, lookup in self.filters.items():
            if param not in params:
                continue
            value = params[param]
            if isinstance(lookup, tuple):
                lookup, parser = lookup
                value = parser(value, param)
            else:
                value = column_value(queryset.model, lookup, value, param)
            queryset = queryset.filter(**{lookup: value})
        return queryset

    def get_object(self):
        lookup = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        obj = self.get_queryset().filter(**{self.lookup_field: lookup}).first()
        if obj is None:
            raise NotFound(f"Could not find {self.member_name}: {lookup}.")
        self.check_object_permissions(self.request, obj)
        return obj

    def request_body(self):
        """The object inside the request's envelope."""
        if not isinstance(self.request.data, dict) or not isinstance(self.request.data.get(self.member_name), dict):
            raise BadRequest(f"Invalid input for field '{self.member_name}': the request body must be "
                             f"{{\"{self.member_name}\": {{...}}}}.")
        return self.request.data[self.member_name]

    def envelope(self, data, status_code=status.HTTP_200_OK):
        return Response({self.member_name: data}, status=status_code)

    def collection_links(self):
        return {"self": self.request.build_absolute_uri(), "previous": None, "next": None}

    def list(self, request, *args, **kwargs):
        rows = self.filter_queryset(self.get_queryset())
        data = self.get_serializer(rows, many=True).data
        return Response({self.collection_name: data, "links": self.collection_links()})

    def retrieve(self, request, *args, **kwargs):
        return self.envelope(self.get_serializer(self.get_object()).data)

    def save(self, serializer):
        try:
            with transaction.atomic():
                return serializer.save()
        except IntegrityError:
            name = serializer.validated_data.get("name", "")
            raise Conflict(self.conflict_message.format(member=self.member_name, name=name))

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=self.request_body())
        serializer.is_valid(raise_exception=True)
        instance = self.save(serializer)
        return self.envelope(self.get_serializer(instance).data, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        serializer = self.get_serializer(self.get_object(), data=self.request_body(), partial=True)
        serializer.is_valid(raise_exception=True)
        instance = self.save(serializer)
        return self.envelope(self.get_serializer(instance).data)

    def destroy(self, request, *args, **kwargs):
        self.perform_destroy(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_destroy(self, instance):
        instance.delete()


class EmptyIdIsNotFound:
    """For Glance and Cinder, where `<collection>/` with its trailing slash
    is a resource with an empty id rather than the collection: anything but
    a POST there is a 404 (once the caller's token is checked as for the
    list), not the list nor a 403 for a method the collection lacks."""

    def initial(self, request, *args, **kwargs):
        empty_id = request.method != "POST" and self.action in (None, "list") and request.path.endswith("/")
        if empty_id:
            self.action = "list"
        super().initial(request, *args, **kwargs)
        if empty_id:
            raise NotFound("The resource could not be found.")
