"""Flavors, their extra specs and the access lists of private flavors."""
import uuid

from django.db import IntegrityError, transaction
from django.db.models import Q
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict, NotFound
from cloud.pagination import paginate, parse_sort
from cloud.versions import link
from compute.api.base import ComputeView, require_bool, require_float, require_int, require_string
from compute.models import Flavor, FlavorAccess

SORT_KEYS = {"id": "id", "flavorid": "id", "name": "name", "memory_mb": "memory_mb", "ram": "memory_mb",
             "vcpus": "vcpus", "root_gb": "root_gb", "disk": "root_gb", "created_at": "created_at"}


def visible_flavors(request):
    """Flavors the caller may see: all for admin; public ones and private
    ones shared with the caller's project for everyone else."""
    flavors = Flavor.objects.all()
    if request.auth.is_admin:
        return flavors
    return flavors.filter(Q(is_public=True) | Q(access__project_id=request.auth.project_id)).distinct()


def find_flavor(request, flavor_id):
    flavor = visible_flavors(request).filter(id=flavor_id).first()
    if flavor is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


def flavor_to_use(request, flavor_ref, field="flavorRef"):
    """The flavor a server asks for (by id or link): a 400 naming `field`
    if it is missing, unknown to the caller or disabled."""
    if flavor_ref is None or flavor_ref == "":
        raise BadRequest(f"Invalid input for field '{field}': a flavor is required.")
    flavor_id = str(flavor_ref).rstrip("/").rsplit("/", 1)[-1]
    flavor = visible_flavors(request).filter(id=flavor_id).first()
    if flavor is None:
        raise BadRequest(f"Invalid input for field '{field}': Flavor {flavor_id} could not be found.")
    if flavor.disabled:
        raise BadRequest(f"Invalid input for field '{field}': Flavor {flavor_id} is disabled.")
    return flavor


# Nova's limit on a flavor's description.
MAX_DESCRIPTION = 65535


def flavor_description(data):
    """The `description` of a flavor body: a string (of any length up to
    Nova's limit, empty allowed) or null."""
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise BadRequest(f"Invalid input for field 'description': {description!r} is not a string.")
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise BadRequest(f"Invalid input for field 'description': longer than {MAX_DESCRIPTION} characters.")
    return description


def flavor_links(request, flavor):
    return [link(request, f"/compute/v2.1/flavors/{flavor.id}"),
            link(request, f"/compute/flavors/{flavor.id}", rel="bookmark")]


def flavor_summary(request, flavor):
    data = {"id": flavor.id, "name": flavor.name, "links": flavor_links(request, flavor)}
    if request.api_version >= (2, 55):
        data["description"] = flavor.description
    return data


def flavor_detail(request, flavor):
    data = flavor_summary(request, flavor)
    data.update({
        "ram": flavor.memory_mb, "vcpus": flavor.vcpus, "disk": flavor.root_gb,
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
        # Nova answers "" for no swap before 2.75.
        "swap": flavor.swap or "",
        "rxtx_factor": flavor.rxtx_factor,
        "OS-FLV-DISABLED:disabled": flavor.disabled,
        "os-flavor-access:is_public": flavor.is_public,
    })
    return data


class FlavorListView(ComputeView):
    policy = {"get": "any", "post": "admin"}
    detail = False

    def get(self, request):
        flavors = visible_flavors(request)
        is_public = request.query_params.get("is_public")
        if request.auth.is_admin:
            # Nova: an admin sees public flavors unless asking is_public=none (all) or false (private).
            if is_public is None:
                flavors = flavors.filter(is_public=True)
            elif is_public.lower() != "none":
                flavors = flavors.filter(is_public=require_bool(is_public, "is_public"))
        for param, column in (("minRam", "memory_mb__gte"), ("minDisk", "root_gb__gte")):
            if param in request.query_params:
                flavors = flavors.filter(**{column: require_int(request.query_params[param], param)})
        pairs = parse_sort(request, SORT_KEYS, [("id", "asc")])
        rows, next_url = paginate(request, flavors, pairs)
        render = flavor_detail if self.detail else flavor_summary
        body = {"flavors": [render(request, flavor) for flavor in rows]}
        if next_url:
            body["flavors_links"] = [{"rel": "next", "href": next_url}]
        return Response(body)

    def post(self, request):
        data = self.body("flavor")
        name = require_string(data.get("name"), "name")
        flavor_id = data.get("id")
        if flavor_id is None or flavor_id == "auto":
            flavor_id = str(uuid.uuid4())
        else:
            flavor_id = require_string(str(flavor_id), "id")
        flavor = Flavor(
            id=flavor_id, name=name,
            vcpus=require_int(data.get("vcpus"), "vcpus", 1),
            memory_mb=require_int(data.get("ram"), "ram", 1),
            root_gb=require_int(data.get("disk", 0), "disk"),
            ephemeral_gb=require_int(data.get("OS-FLV-EXT-DATA:ephemeral", 0), "OS-FLV-EXT-DATA:ephemeral"),
            swap=require_int(data.get("swap", 0) or 0, "swap"),
            rxtx_factor=require_float(data.get("rxtx_factor", 1.0), "rxtx_factor", exclusive_minimum=0),
            is_public=require_bool(data.get("os-flavor-access:is_public", True), "os-flavor-access:is_public"),
            description=flavor_description(data) if request.api_version >= (2, 55) else None,
        )
        try:
            with transaction.atomic():
                flavor.save(force_insert=True)
        except IntegrityError:
            raise Conflict(f"Flavor with name {name} or ID {flavor_id} already exists.")
        return Response({"flavor": flavor_detail(request, flavor)})


class FlavorDetailListView(FlavorListView):
    policy = {"get": "any"}
    detail = True


class FlavorView(ComputeView):
    policy = {"get": "any", "put": "admin", "delete": "admin"}

    def get(self, request, flavor_id):
        return Response({"flavor": flavor_detail(request, find_flavor(request, flavor_id))})

    def put(self, request, flavor_id):
        if request.api_version < (2, 55):
            raise NotFound("Updating a flavor needs microversion 2.55 or later.")
        flavor = find_flavor(request, flavor_id)
        data = self.body("flavor")
        if set(data) != {"description"}:
            raise BadRequest("Invalid input for field 'flavor': only 'description' can be updated.")
        flavor.description = flavor_description(data)
        flavor.save(update_fields=["description"])
        return Response({"flavor": flavor_detail(request, flavor)})

    def delete(self, request, flavor_id):
        find_flavor(request, flavor_id).delete()
        return Response(status=202)


def validate_extra_specs(data):
    if not isinstance(data, dict):
        raise BadRequest("Invalid input for field 'extra_specs': must be an object.")
    specs = {}
    for key, value in data.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise BadRequest("Invalid input for field 'extra_specs': keys are strings of 1 to 255 characters.")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BadRequest(f"Invalid input for field 'extra_specs/{key}': must be a string or number.")
        specs[key] = str(value)
    return specs


def change_extra_specs(flavor_id, change):
    """Replaces a flavor's extra specs by change(current), the row locked
    so that concurrent writers do not lose each other's keys."""
    with transaction.atomic():
        flavor = Flavor.objects.select_for_update().filter(id=flavor_id).first()
        if flavor is None:
            raise NotFound(f"Flavor {flavor_id} could not be found.")
        flavor.extra_specs = change(flavor.extra_specs)
        flavor.save(update_fields=["extra_specs"])


class ExtraSpecsView(ComputeView):
    policy = {"get": "any", "post": "admin"}

    def get(self, request, flavor_id):
        return Response({"extra_specs": find_flavor(request, flavor_id).extra_specs})

    def post(self, request, flavor_id):
        specs = validate_extra_specs(request.data.get("extra_specs") if isinstance(request.data, dict) else None)
        change_extra_specs(flavor_id, lambda current: {**current, **specs})
        return Response({"extra_specs": specs})


class ExtraSpecView(ComputeView):
    policy = {"get": "any", "put": "admin", "delete": "admin"}

    def get(self, request, flavor_id, key):
        specs = find_flavor(request, flavor_id).extra_specs
        if key not in specs:
            raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
        return Response({key: specs[key]})

    def put(self, request, flavor_id, key):
        specs = validate_extra_specs(request.data)
        if set(specs) != {key}:
            raise BadRequest("Request body and URI mismatch: the body must hold exactly the key in the URL.")
        change_extra_specs(flavor_id, lambda current: {**current, **specs})
        return Response(specs)

    def delete(self, request, flavor_id, key):
        def without_key(current):
            if key not in current:
                raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
            return {k: v for k, v in current.items() if k != key}

        change_extra_specs(flavor_id, without_key)
        return Response(status=200)


def access_list(flavor):
    return {"flavor_access": [{"flavor_id": flavor.id, "tenant_id": project_id}
                              for project_id in flavor.access.values_list("project_id", flat=True)]}


class FlavorAccessView(ComputeView):
    policy = {"get": "admin"}

    def get(self, request, flavor_id):
        flavor = find_flavor(request, flavor_id)
        if flavor.is_public:
            raise NotFound("Access list not available for public flavors.")
        return Response(access_list(flavor))


class FlavorActionView(ComputeView):
    policy = {"post": "admin"}

    def post(self, request, flavor_id):
        flavor = find_flavor(request, flavor_id)
        data = request.data if isinstance(request.data, dict) else {}
        if "addTenantAccess" in data:
            project_id = self._tenant(data["addTenantAccess"], "addTenantAccess")
            if flavor.is_public:
                raise Conflict("Can not add access to a public flavor.")
            _, created = FlavorAccess.objects.get_or_create(flavor=flavor, project_id=project_id)
            if not created:
                raise Conflict(f"Flavor access already exists for flavor {flavor.id} and project {project_id} "
                               f"combination.")
        elif "removeTenantAccess" in data:
            project_id = self._tenant(data["removeTenantAccess"], "removeTenantAccess")
            deleted, _ = FlavorAccess.objects.filter(flavor=flavor, project_id=project_id).delete()
            if not deleted:
                raise NotFound(f"Flavor access not found for {flavor.id} / {project_id} combination.")
        else:
            raise BadRequest("Invalid input: the action must be addTenantAccess or removeTenantAccess.")
        return Response(access_list(flavor))

    @staticmethod
    def _tenant(body, action):
        if not isinstance(body, dict) or not isinstance(body.get("tenant"), str) or not body["tenant"]:
            raise BadRequest(f"Invalid input for field '{action}.tenant': a project id is required.")
        return body["tenant"]
