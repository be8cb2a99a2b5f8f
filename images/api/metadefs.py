"""Glance's metadata definitions API (/v2/metadefs/...): namespaces and
what they hold (objects, properties, tags, resource type associations),
and the resource types. Anyone reads; a private namespace is seen by its
owner project alone (another project gets 404). Writes take the `admin`
role, as Glance's default policy (metadef_admin); since `admin` on an
ordinary project is that project's admin only, its holder writes the
project's own private namespaces, and public or protected ones, or another
project's, are the cloud administrator's. Nothing in a protected namespace
may be deleted (403)."""
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.utils import timezone
from rest_framework.response import Response

from cloud.auth import ADMIN_ROLE
from cloud.errors import Conflict, Forbidden, NotFound
from cloud.pagination import paginate, parse_sort
from cloud.viewsets import parse_bool
from cloud.views import ApiView
from images import metadefs
from images.api.metadef_schemas import METADEF_SCHEMAS
from images.api.serializers import timestamp
from images.api.views import project_of
from images.models import (
    MetadefNamespace, MetadefObject, MetadefProperty, MetadefResourceType, MetadefResourceTypeAssociation,
    MetadefTag)


def holds_admin_role(request, view):
    """Glance's metadef_admin (role:admin); which namespaces a project's
    admin may write is checked on each (writable_namespace)."""
    return request.auth.has_role(ADMIN_ROLE)


READ = {"get": "reader"}
READ_WRITE = {"get": "reader", "post": holds_admin_role, "put": holds_admin_role, "delete": holds_admin_role}
NAMESPACE_SORT_KEYS = {name: name for name in (
    "namespace", "display_name", "created_at", "updated_at", "visibility", "protected", "owner", "id")}
DEFAULT_SORT = [("created_at", "desc")]


def visible_namespaces(request):
    return MetadefNamespace.objects.visible_to(None if request.auth.is_admin else project_of(request))


def find_namespace(request, namespace, for_update=False):
    namespaces = visible_namespaces(request)
    if for_update:
        namespaces = namespaces.select_for_update()
    found = namespaces.filter(namespace=namespace).first()
    if found is None:
        raise NotFound(f"Metadata definition namespace={namespace} was not found.")
    return found


def writable_namespace(request, namespace):
    """The namespace, locked, when the caller may change it: any for the
    cloud administrator, the project's own private unprotected ones for
    its admin."""
    found = find_namespace(request, namespace, for_update=True)
    if not request.auth.is_admin and (found.owner != project_of(request) or found.visibility != "private"
                                      or found.protected):
        raise Forbidden(f"Only a cloud administrator may change namespace {namespace}: it is public, protected "
                        f"or another project's.")
    return found


def check_attributes_allowed(request, checked):
    """Public, protected or another project's: the cloud administrator's."""
    if request.auth.is_admin:
        return
    if checked["visibility"] == "public" or checked["protected"]:
        raise Forbidden("Only a cloud administrator may make a namespace public or protected.")
    if checked["owner"] not in (None, project_of(request)):
        raise Forbidden("Only a cloud administrator may make a namespace owned by another project.")


def refuse_if_protected(namespace, what):
    if namespace.protected:
        raise Forbidden(f"{what} in namespace {namespace.namespace} cannot be deleted: the namespace is "
                        f"protected.")


def touch(namespace):
    MetadefNamespace.objects.filter(pk=namespace.pk).update(updated_at=timezone.now())


def stored(write, conflict):
    """Runs `write` in a savepoint; a unique name taken is a 409 `conflict`."""
    try:
        with transaction.atomic():
            return write()
    except IntegrityError:
        raise Conflict(conflict)


def omit_none(data):
    return {key: value for key, value in data.items() if value is not None}


def association_view(association):
    return omit_none({
        "name": association.resource_type.name, "prefix": association.prefix,
        "properties_target": association.properties_target,
        "created_at": timestamp(association.created_at), "updated_at": timestamp(association.updated_at)})


def prefixed(definitions, prefix):
    return {prefix + name: definition for name, definition in definitions.items()} if prefix else definitions


def object_view(namespace, metadef_object, prefix=None):
    required = metadef_object.required
    if prefix and required:
        required = [prefix + name for name in required]
    return omit_none({
        "name": metadef_object.name, "description": metadef_object.description, "required": required,
        "properties": prefixed(metadef_object.properties, prefix),
        "created_at": timestamp(metadef_object.created_at), "updated_at": timestamp(metadef_object.updated_at),
        "self": f"/v2/metadefs/namespaces/{namespace.namespace}/objects/{metadef_object.name}",
        "schema": "/v2/schemas/metadefs/object"})


def property_view(metadef_property, name=None):
    return {"name": name or metadef_property.name, **metadef_property.schema}


def tag_view(tag):
    return {"name": tag.name, "created_at": timestamp(tag.created_at), "updated_at": timestamp(tag.updated_at)}


def namespace_view(namespace, detail=False, resource_type=None):
    """The namespace as Glance shows it: its associations (read from the
    prefetched relation), and with `detail` its objects, properties and
    tags, their names prefixed as on `resource_type` when one is given."""
    data = omit_none({
        "namespace": namespace.namespace, "display_name": namespace.display_name,
        "description": namespace.description, "visibility": namespace.visibility,
        "protected": namespace.protected, "owner": namespace.owner,
        "created_at": timestamp(namespace.created_at), "updated_at": timestamp(namespace.updated_at),
        "self": f"/v2/metadefs/namespaces/{namespace.namespace}", "schema": "/v2/schemas/metadefs/namespace"})
    associations = list(namespace.resource_types.all())
    if associations:
        data["resource_type_associations"] = [association_view(item) for item in associations]
    if not detail:
        return data
    prefix = next((item.prefix for item in associations if item.resource_type.name == resource_type), None)
    objects = list(namespace.metadef_objects.all())
    if objects:
        data["objects"] = [object_view(namespace, item, prefix) for item in objects]
    properties = {item.name: item.schema for item in namespace.metadef_properties.all()}
    if properties:
        data["properties"] = prefixed(properties, prefix)
    tags = list(namespace.metadef_tags.all())
    if tags:
        data["tags"] = [{"name": tag.name} for tag in tags]
    return data


def with_associations(namespaces):
    return namespaces.prefetch_related(Prefetch(
        "resource_types", MetadefResourceTypeAssociation.objects.select_related("resource_type").order_by("id")))


def with_contents(namespaces):
    return with_associations(namespaces).prefetch_related(
        Prefetch("metadef_objects", MetadefObject.objects.order_by("name")),
        Prefetch("metadef_properties", MetadefProperty.objects.order_by("name")),
        Prefetch("metadef_tags", MetadefTag.objects.order_by("name")))


def resource_type_named(name):
    """The resource type; as Glance, a name not known yet makes a new one."""
    return MetadefResourceType.objects.get_or_create(name=name)[0]


def add_contents(namespace, checked):
    """Writes a new namespace's associations, properties, objects and tags
    (all checked already); the caller's transaction holds them together."""
    for association in checked["resource_type_associations"]:
        MetadefResourceTypeAssociation.objects.create(
            namespace=namespace, resource_type=resource_type_named(association["name"]),
            prefix=association["prefix"], properties_target=association["properties_target"])
    MetadefProperty.objects.bulk_create([
        MetadefProperty(namespace=namespace, name=name, schema=schema)
        for name, schema in checked["properties"].items()])
    MetadefObject.objects.bulk_create([MetadefObject(namespace=namespace, **item) for item in checked["objects"]])
    MetadefTag.objects.bulk_create([MetadefTag(namespace=namespace, name=name) for name in checked["tags"]])


def next_link(request, path, rows, key):
    params = request.query_params.copy()
    params["marker"] = getattr(rows[-1], key)
    params["limit"] = str(len(rows))
    return f"{path}?{urlencode(params, doseq=True)}"


class NamespaceListView(ApiView):
    policy = {"get": "reader", "post": holds_admin_role}

    def get(self, request):
        params = request.query_params
        namespaces = visible_namespaces(request)
        visibility = params.get("visibility")
        if visibility is not None:
            if visibility not in ("public", "private"):
                raise metadefs.invalid("visibility", f"{visibility!r} is not one of public, private.")
            namespaces = namespaces.filter(visibility=visibility)
        if params.get("resource_types"):
            names = [name.strip() for name in params["resource_types"].split(",") if name.strip()]
            namespaces = namespaces.filter(id__in=MetadefResourceTypeAssociation.objects.filter(
                resource_type__name__in=names).values("namespace_id"))
        if "protected" in params:
            namespaces = namespaces.filter(protected=parse_bool(params["protected"], "protected"))
        pairs = parse_sort(request, NAMESPACE_SORT_KEYS, DEFAULT_SORT)
        rows, next_url = paginate(
            request, with_associations(namespaces), pairs, marker_field="namespace",
            markers=visible_namespaces(request), marker_error=NotFound,
            marker_not_found="Metadata definition namespace={marker} was not found.")
        first = "/v2/metadefs/namespaces"
        query = {key: value for key, value in params.items() if key != "marker"}
        body = {"namespaces": [namespace_view(row) for row in rows],
                "first": f"{first}?{urlencode(query)}" if query else first,
                "schema": "/v2/schemas/metadefs/namespaces"}
        if next_url:
            body["next"] = next_link(request, first, rows, "namespace")
        return Response(body)

    def post(self, request):
        checked = metadefs.check_namespace(request.data)
        check_attributes_allowed(request, checked)
        owner = checked["owner"] or project_of(request)
        if owner is None:
            raise metadefs.invalid("owner", "a token without a project (system scope) must name the owner project.")
        with transaction.atomic():
            namespace = stored(lambda: MetadefNamespace.objects.create(
                namespace=checked["namespace"], display_name=checked["display_name"],
                description=checked["description"], visibility=checked["visibility"],
                protected=checked["protected"], owner=owner),
                f"Metadata definition namespace={checked['namespace']} already exists.")
            add_contents(namespace, checked)
        namespace = with_contents(MetadefNamespace.objects.filter(pk=namespace.pk)).get()
        response = Response(namespace_view(namespace, detail=True), status=201)
        response["Location"] = f"/v2/metadefs/namespaces/{namespace.namespace}"
        return response


class NamespaceView(ApiView):
    policy = READ_WRITE

    def get(self, request, namespace):
        found = with_contents(visible_namespaces(request)).filter(namespace=namespace).first()
        if found is None:
            raise NotFound(f"Metadata definition namespace={namespace} was not found.")
        return Response(namespace_view(found, detail=True, resource_type=request.query_params.get("resource_type")))

    def put(self, request, namespace):
        # As Glance: a full replacement of the namespace's own attributes
        # (what is left out takes its default); its contents stay.
        checked = metadefs.check_namespace(request.data)
        check_attributes_allowed(request, checked)
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            found.namespace = checked["namespace"]
            found.display_name, found.description = checked["display_name"], checked["description"]
            found.visibility, found.protected = checked["visibility"], checked["protected"]
            found.owner = checked["owner"] or found.owner
            found.updated_at = timezone.now()
            stored(found.save, f"Metadata definition namespace={checked['namespace']} already exists.")
        return Response(namespace_view(with_associations(MetadefNamespace.objects.filter(pk=found.pk)).get()))

    def delete(self, request, namespace):
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            if found.protected:
                raise Forbidden(f"Metadata definition namespace {namespace} is protected and cannot be deleted.")
            found.delete()
        return Response(status=204)


class NamespaceContents(ApiView):
    """What the list views of one kind of content share: the namespace
    they are in, and DELETE of all of them."""

    policy = READ_WRITE
    model = None
    what = None

    def delete(self, request, namespace):
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            refuse_if_protected(found, self.what)
            self.model.objects.filter(namespace=found).delete()
            touch(found)
        return Response(status=204)


class ObjectListView(NamespaceContents):
    model, what = MetadefObject, "Objects"

    def get(self, request, namespace):
        found = find_namespace(request, namespace)
        rows = MetadefObject.objects.filter(namespace=found).order_by("name")
        return Response({"objects": [object_view(found, row) for row in rows],
                         "schema": "/v2/schemas/metadefs/objects"})

    def post(self, request, namespace):
        checked = metadefs.check_object(request.data)
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            created = stored(lambda: MetadefObject.objects.create(namespace=found, **checked),
                             f"A metadata definition object with name={checked['name']} already exists in "
                             f"namespace={namespace}.")
            touch(found)
        response = Response(object_view(found, created), status=201)
        response["Location"] = f"/v2/metadefs/namespaces/{namespace}/objects/{created.name}"
        return response


def find_in(namespace, model, name, kind):
    found = model.objects.filter(namespace=namespace, name=name).first()
    if found is None:
        raise NotFound(f"Metadata definition {kind}={name} was not found in namespace={namespace.namespace}.")
    return found


class ObjectView(ApiView):
    policy = READ_WRITE

    def get(self, request, namespace, name):
        found = find_namespace(request, namespace)
        return Response(object_view(found, find_in(found, MetadefObject, name, "object")))

    def put(self, request, namespace, name):
        checked = metadefs.check_object(request.data)
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            metadef_object = find_in(found, MetadefObject, name, "object")
            for key, value in checked.items():
                setattr(metadef_object, key, value)
            metadef_object.updated_at = timezone.now()
            stored(metadef_object.save, f"A metadata definition object with name={checked['name']} already "
                                        f"exists in namespace={namespace}.")
            touch(found)
        return Response(object_view(found, metadef_object))

    def delete(self, request, namespace, name):
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            metadef_object = find_in(found, MetadefObject, name, "object")
            refuse_if_protected(found, f"Object {name}")
            metadef_object.delete()
            touch(found)
        return Response(status=204)


class PropertyListView(NamespaceContents):
    model, what = MetadefProperty, "Properties"

    def get(self, request, namespace):
        found = find_namespace(request, namespace)
        rows = MetadefProperty.objects.filter(namespace=found).order_by("name")
        return Response({"properties": {row.name: row.schema for row in rows},
                         "schema": "/v2/schemas/metadefs/properties"})

    def post(self, request, namespace):
        schema = metadefs.check_property(request.data, named=True)
        name = request.data["name"]
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            created = stored(lambda: MetadefProperty.objects.create(namespace=found, name=name, schema=schema),
                             f"A metadata definition property with name={name} already exists in "
                             f"namespace={namespace}.")
            touch(found)
        return Response(property_view(created), status=201)


class PropertyView(ApiView):
    policy = READ_WRITE

    def get(self, request, namespace, name):
        found = find_namespace(request, namespace)
        resource_type = request.query_params.get("resource_type")
        shown = name
        if resource_type:
            # As Glance: the name as it is on that resource type (hw_cpu_cores
            # for cpu_cores), found without the association's prefix.
            association = MetadefResourceTypeAssociation.objects.filter(
                namespace=found, resource_type__name=resource_type).first()
            prefix = association.prefix if association else None
            if prefix:
                if not name.startswith(prefix):
                    raise NotFound(f"Property {name} does not start with the prefix {prefix} of resource type "
                                   f"{resource_type}.")
                name = name[len(prefix):]
        return Response(property_view(find_in(found, MetadefProperty, name, "property"), shown))

    def put(self, request, namespace, name):
        schema = metadefs.check_property(request.data, named=True)
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            metadef_property = find_in(found, MetadefProperty, name, "property")
            metadef_property.name, metadef_property.schema = request.data["name"], schema
            metadef_property.updated_at = timezone.now()
            stored(metadef_property.save, f"A metadata definition property with name={request.data['name']} "
                                          f"already exists in namespace={namespace}.")
            touch(found)
        return Response(property_view(metadef_property))

    def delete(self, request, namespace, name):
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            metadef_property = find_in(found, MetadefProperty, name, "property")
            refuse_if_protected(found, f"Property {name}")
            metadef_property.delete()
            touch(found)
        return Response(status=204)


class TagListView(NamespaceContents):
    model, what = MetadefTag, "Tags"

    def get(self, request, namespace):
        found = find_namespace(request, namespace)
        tags = MetadefTag.objects.filter(namespace=found)
        pairs = parse_sort(request, {"name": "name", "created_at": "created_at", "updated_at": "updated_at"},
                           DEFAULT_SORT)
        rows, _ = paginate(request, tags, pairs, marker_field="name", markers=tags, marker_error=NotFound,
                           marker_not_found=f"Metadata definition tag={{marker}} was not found in "
                                            f"namespace={namespace}.")
        return Response({"tags": [{"name": row.name} for row in rows]})

    def post(self, request, namespace):
        """Tags in bulk: they replace the namespace's tags, or with
        `X-Openstack-Append: true` join them (a name already there: 409)."""
        body = metadefs.check_object_body(request.data)
        metadefs.check_keys(body, ("tags",), "body")
        names = metadefs.check_tags(body.get("tags"))
        append = parse_bool(request.headers.get("X-Openstack-Append", "false"), "X-Openstack-Append")
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            if names and not append:
                # As Glance: an empty list replaces nothing (DELETE .../tags clears them).
                MetadefTag.objects.filter(namespace=found).delete()
            stored(lambda: MetadefTag.objects.bulk_create([MetadefTag(namespace=found, name=name) for name in names]),
                   f"A metadata tag of {', '.join(names)} already exists in namespace={namespace}.")
            touch(found)
        return Response({"tags": [{"name": name} for name in names]}, status=201)


class TagView(ApiView):
    policy = READ_WRITE

    def get(self, request, namespace, name):
        found = find_namespace(request, namespace)
        return Response(tag_view(find_in(found, MetadefTag, name, "tag")))

    def post(self, request, namespace, name):
        metadefs.name(name, "name")
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            created = stored(lambda: MetadefTag.objects.create(namespace=found, name=name),
                             f"A metadata tag with name={name} already exists in namespace={namespace}.")
            touch(found)
        return Response(tag_view(created), status=201)

    def put(self, request, namespace, name):
        new_name = metadefs.check_tag(request.data)
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            tag = find_in(found, MetadefTag, name, "tag")
            tag.name, tag.updated_at = new_name, timezone.now()
            stored(tag.save, f"A metadata tag with name={new_name} already exists in namespace={namespace}.")
            touch(found)
        return Response(tag_view(tag))

    def delete(self, request, namespace, name):
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            tag = find_in(found, MetadefTag, name, "tag")
            refuse_if_protected(found, f"Tag {name}")
            tag.delete()
            touch(found)
        return Response(status=204)


class ResourceTypeListView(ApiView):
    policy = READ

    def get(self, request):
        return Response({"resource_types": [
            {"name": row.name, "created_at": timestamp(row.created_at), "updated_at": timestamp(row.updated_at)}
            for row in MetadefResourceType.objects.order_by("name")]})


class AssociationListView(ApiView):
    policy = READ_WRITE

    def get(self, request, namespace):
        found = find_namespace(request, namespace)
        rows = found.resource_types.select_related("resource_type").order_by("id")
        return Response({"resource_type_associations": [association_view(row) for row in rows]})

    def post(self, request, namespace):
        checked = metadefs.check_association(request.data)
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            resource_type = resource_type_named(checked["name"])
            created = stored(lambda: MetadefResourceTypeAssociation.objects.create(
                namespace=found, resource_type=resource_type, prefix=checked["prefix"],
                properties_target=checked["properties_target"]),
                f"The metadata definition resource-type association of resource-type={checked['name']} to "
                f"namespace={namespace}, already exists.")
            touch(found)
        return Response(association_view(created), status=201)


class AssociationView(ApiView):
    policy = {"delete": holds_admin_role}

    def delete(self, request, namespace, resource_type):
        with transaction.atomic():
            found = writable_namespace(request, namespace)
            association = found.resource_types.filter(resource_type__name=resource_type).first()
            if association is None:
                raise NotFound(f"The metadata definition resource-type association of "
                               f"resource-type={resource_type} to namespace={namespace}, was not found.")
            refuse_if_protected(found, f"The association of resource type {resource_type}")
            association.delete()
            touch(found)
        return Response(status=204)


class MetadefSchemaView(ApiView):
    policy = {"get": "any"}

    def get(self, request, name):
        if name not in METADEF_SCHEMAS:
            raise NotFound(f"Could not find schema: metadefs/{name}.")
        return Response(METADEF_SCHEMAS[name])
