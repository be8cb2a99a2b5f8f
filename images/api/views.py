"""Glance's Image v2 resources: images (with data, tags and actions, and
the interoperable import: stage, import and the image's tasks), members,
tasks, schemas and discovery of stores and import methods."""
import re
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.fields.json import KeyTransform
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.decorators import action
from rest_framework.response import Response

from cloud.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound
from cloud.pagination import paginate, parse_sort
from cloud.parsers import JSONParser
from cloud.viewsets import EmptyIdIsNotFound, ResourceViewSet, parse_bool
from cloud.views import ApiView
from images import data, importing, service, stores
from images.api import patch
from images.api.schemas import SCHEMAS
from images.api.serializers import check_new_image, image_view, member_view, task_view
from images.models import (
    ACTIVE, DEACTIVATED, MEMBER_STATUSES, TASK_STATUSES, VISIBILITIES, Image, ImageMember, ImageTag, ImageTask)

SORT_KEYS = {name: name for name in (
    "name", "status", "container_format", "disk_format", "size", "virtual_size", "id", "created_at",
    "updated_at", "visibility", "owner", "min_disk", "min_ram")}
DEFAULT_SORT = [("created_at", "desc")]
# Query parameters with a meaning of their own; any other one filters on a
# custom property (?os_distro=debian), as Glance does.
LIST_PARAMETERS = {
    "limit", "marker", "sort", "sort_key", "sort_dir", "name", "id", "status", "visibility", "owner", "tag",
    "disk_format", "container_format", "size_min", "size_max", "member_status", "protected", "os_hidden",
    "checksum", "os_hash_value", "created_at", "updated_at", "changes-since",
}
TIME_OPERATORS = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte", "eq": "exact"}


def project_of(request):
    return request.auth.project_id


def _values(raw, field):
    """A filter value, or several with Glance's `in:a,b` operator."""
    if raw.startswith("in:"):
        values = [value.strip().strip('"') for value in raw[3:].split(",")]
        if not all(values):
            raise BadRequest(f"Invalid input for field '{field}': empty value in {raw!r}.")
        return values
    return [raw]


def _integer(raw, field):
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Invalid input for field '{field}': {raw!r} is not an integer.")


def parse_time(field, raw):
    """An aware datetime from ISO 8601 text (a `+` of the offset may have
    arrived as a space); 400 naming the field for text that is not a real
    moment (month 13, February 30th, hour 25)."""
    try:
        moment = parse_datetime(raw.replace(" ", "+"))
    except ValueError:  # the shape of a time, but not a time that exists
        moment = None
    if moment is None:
        raise BadRequest(f"Invalid input for field '{field}': {raw!r} is not an ISO 8601 time.")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.utc)
    return moment


class JsonPatchParser(JSONParser):
    media_type = patch.MEDIA_TYPES[0]


class JsonPatchV20Parser(JSONParser):
    media_type = patch.MEDIA_TYPES[1]


def visible_images(request):
    """The images the caller may see at all; listing narrows it further."""
    project = None if request.auth.is_admin else project_of(request)
    return Image.objects.visible_to(project).prefetch_related("tags", "locations")


def find_image(request, image_id):
    image = visible_images(request).filter(pk=image_id).first()
    if image is None:
        raise NotFound(f"Could not find image: {image_id}.")
    return image


def owned_image(request, image_id, for_update=False):
    """The image, when the caller may change it: its owner's project (or an
    administrator). Visible but not owned: 403."""
    image = find_image(request, image_id)
    if not request.auth.is_admin and image.owner != project_of(request):
        raise Forbidden(f"You are not permitted to modify image {image.id}.")
    if for_update:
        image = Image.objects.select_for_update().get(pk=image.pk)
    return image


def create_image(request, body, field=None):
    """A new queued image of a create request's `body` (in a transaction):
    400 for a bad attribute (named inside `field` when given), 403 for
    another owner or a public image by a non-admin, 409 for a taken id."""
    try:
        attributes, properties, tags = check_new_image(body)
    except BadRequest as error:
        if field is None:
            raise
        raise BadRequest(error.message.replace("Invalid input for field '", f"Invalid input for field '{field}/"))
    credentials = request.auth
    owner = attributes.pop("owner", credentials.project_id)
    if owner != credentials.project_id and not credentials.is_admin:
        raise Forbidden("You are not permitted to create images owned by another project.")
    if attributes.get("visibility") == "public" and not credentials.is_admin:
        raise Forbidden("You are not authorized to publicize images.")
    try:
        with transaction.atomic():
            image = Image.objects.create(owner=owner, properties=properties, **attributes)
            ImageTag.objects.bulk_create([ImageTag(image=image, value=tag) for tag in tags])
    except IntegrityError:
        raise Conflict(f"An image with identifier {attributes.get('id')} already exists.")
    return image


class ImageViewSet(EmptyIdIsNotFound, ResourceViewSet):
    queryset = Image.objects.all()
    member_name, collection_name = "image", "images"
    parser_classes = [JSONParser, JsonPatchParser, JsonPatchV20Parser]
    policy = {
        "list": "reader", "retrieve": "reader", "create": "member", "partial_update": "member",
        "destroy": "member", "upload": "member", "download": "reader", "deactivate": "member",
        "reactivate": "member", "add_tag": "member", "remove_tag": "member", "stage": "member",
        "import_data": "member", "tasks": "reader",
    }

    def get_queryset(self):
        return visible_images(self.request)

    def get_object(self):
        return find_image(self.request, self.kwargs["pk"])

    def get_owned_object(self, for_update=False):
        return owned_image(self.request, self.kwargs["pk"], for_update)

    def list_scope(self, queryset):
        """Glance's listing by visibility: by default the caller's own,
        public and accepted shared images; `visibility` and
        `member_status` choose others."""
        params = self.request.query_params
        visibility = params.get("visibility")
        if visibility is not None and visibility not in VISIBILITIES + ("all",):
            raise BadRequest(f"Invalid input for field 'visibility': {visibility!r} is not one of "
                             f"{', '.join(VISIBILITIES + ('all',))}.")
        member_status = params.get("member_status", "accepted")
        if member_status not in MEMBER_STATUSES + ("all",):
            raise BadRequest(f"Invalid input for field 'member_status': {member_status!r} is not one of "
                             f"{', '.join(MEMBER_STATUSES + ('all',))}.")
        statuses = MEMBER_STATUSES if member_status == "all" else (member_status,)
        if visibility in VISIBILITIES:
            queryset = queryset.filter(visibility=visibility)
        if self.request.auth.is_admin:
            if visibility == "shared" and "member_status" in params:
                queryset = queryset.filter(members__status__in=statuses).distinct()
            return queryset
        project = project_of(self.request)
        if visibility == "shared":
            return queryset.filter(Q(owner=project) | Image.objects.shared_with_q(project, statuses))
        if visibility in ("public", "community"):
            return queryset
        if visibility == "private":
            return queryset.filter(owner=project)
        scope = Q(owner=project) | Q(visibility="public") | Image.objects.shared_with_q(project, statuses)
        if visibility == "all":
            scope |= Q(visibility="community")
        return queryset.filter(scope)

    def filter_queryset(self, queryset):
        params = self.request.query_params
        queryset = self.list_scope(queryset)
        for field in ("id", "name", "status", "owner", "disk_format", "container_format", "checksum",
                      "os_hash_value"):
            if field in params:
                queryset = queryset.filter(**{f"{field}__in": _values(params[field], field)})
        for tag in params.getlist("tag"):
            queryset = queryset.filter(id__in=ImageTag.objects.filter(value=tag).values("image_id"))
        if "size_min" in params:
            queryset = queryset.filter(size__gte=_integer(params["size_min"], "size_min"))
        if "size_max" in params:
            queryset = queryset.filter(size__lte=_integer(params["size_max"], "size_max"))
        if "protected" in params:
            queryset = queryset.filter(protected=parse_bool(params["protected"], "protected"))
        # Hidden images are left out unless asked for.
        hidden = parse_bool(params["os_hidden"], "os_hidden") if "os_hidden" in params else False
        queryset = queryset.filter(os_hidden=hidden)
        for field in ("created_at", "updated_at"):
            if field in params:
                queryset = queryset.filter(**self._time_filter(field, params[field]))
        if "changes-since" in params:
            # Glance v1's and Nova's filter: images changed at or after a time.
            queryset = queryset.filter(updated_at__gte=parse_time("changes-since", params["changes-since"]))
        for index, (key, value) in enumerate(sorted(params.items())):
            if key not in LIST_PARAMETERS:
                alias = f"property_{index}"
                # A JSON key lookup, which SQLite takes too (a text one is
                # compared as JSON there, and a plain string is not JSON).
                queryset = queryset.alias(**{alias: KeyTransform(key, "properties")}).filter(**{alias: value})
        return queryset

    @staticmethod
    def _time_filter(field, raw):
        operator, _, value = raw.partition(":")
        if operator not in TIME_OPERATORS:
            raise BadRequest(f"Invalid input for field '{field}': expected <gt|gte|lt|lte|eq>:<ISO 8601 time>, "
                             f"got {raw!r}.")
        return {f"{field}__{TIME_OPERATORS[operator]}": parse_time(field, value)}

    def list(self, request, *args, **kwargs):
        pairs = parse_sort(request, SORT_KEYS, DEFAULT_SORT)
        # The marker is looked for among the images the caller sees.
        rows, next_url = paginate(request, self.filter_queryset(self.get_queryset()), pairs,
                                  markers=self.get_queryset())
        body = {"images": [image_view(image) for image in rows], "first": "/v2/images",
                "schema": "/v2/schemas/images"}
        if next_url:
            # Glance's `next` is relative to the service root (/v2/...).
            params = request.query_params.copy()
            params["marker"] = rows[-1].id
            params["limit"] = str(len(rows))
            body["next"] = "/v2/images?" + urlencode(params, doseq=True)
        return Response(body)

    def retrieve(self, request, *args, **kwargs):
        return Response(image_view(self.get_object()))

    def create(self, request, *args, **kwargs):
        with transaction.atomic():
            image = create_image(request, request.data)
        image = self.get_queryset().get(pk=image.pk)
        response = Response(image_view(image), status=201)
        response["Location"] = request.build_absolute_uri(f"/image/v2/images/{image.id}")
        # As Glance: what the new image's data may come in by besides PUT /file.
        response["OpenStack-image-import-methods"] = ",".join(importing.enabled_methods())
        response["OpenStack-image-store-ids"] = ",".join(stores.enabled())
        return response

    def partial_update(self, request, *args, **kwargs):
        content_type = request.content_type.split(";")[0].strip()
        if content_type not in patch.MEDIA_TYPES:
            raise ApiError(f"Unsupported Content-Type {content_type!r}: image updates are JSON patches of type "
                           f"{patch.MEDIA_TYPES[0]}.", status=415,
                           headers={"Accept-Patch": ", ".join(patch.MEDIA_TYPES)})
        changes = patch.parse(request.data, content_type)
        with transaction.atomic():
            image = self.get_owned_object(for_update=True)
            state = patch.ImageState(image)
            state.apply(changes, request.auth)
            state.save()
        return Response(image_view(self.get_queryset().get(pk=image.pk)))

    def destroy(self, request, *args, **kwargs):
        with transaction.atomic():
            service.delete(self.get_owned_object(for_update=True))
        return Response(status=204)

    @action(detail=True, methods=["put"], url_path="file", parser_classes=[])
    def upload(self, request, *args, **kwargs):
        image = self.get_owned_object()
        store_id = request.headers.get("X-Image-Meta-Store")
        store = stores.get(store_id) if store_id else stores.default()
        if store is None:
            raise BadRequest(f"Invalid input for header 'X-Image-Meta-Store': no store {store_id!r} "
                             f"(stores: {', '.join(stores.enabled())}).")
        data.upload(image, data.RequestBody(request), store, data.content_length(request))
        return Response(status=204)

    @action(detail=True, methods=["put"], url_path="stage", parser_classes=[])
    def stage(self, request, *args, **kwargs):
        image = self.get_owned_object()
        importing.stage(image, data.request_chunks(request), data.content_length(request))
        return Response(status=204)

    @action(detail=True, methods=["post"], url_path="import")
    def import_data(self, request, *args, **kwargs):
        with transaction.atomic():
            image = self.get_owned_object(for_update=True)
            importing.start(image, request.data, request.auth, getattr(request, "request_id", None),
                            request.headers.get("X-Image-Meta-Store"))
        return Response(status=202)

    @action(detail=True, methods=["get"], url_path="tasks")
    def tasks(self, request, *args, **kwargs):
        image = self.get_object()
        tasks = ImageTask.objects.filter(image_id=image.id).order_by("created_at", "id")
        return Response({"tasks": [task_view(task) for task in tasks]})

    @upload.mapping.get
    def download(self, request, *args, **kwargs):
        image = self.get_object()
        if image.status == DEACTIVATED and not request.auth.is_admin:
            raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
        if image.status != ACTIVE and image.status != DEACTIVATED:
            return Response(status=204)
        selected = parse_range(request.headers.get("Range"), image.size)
        stream = data.open_data(image)
        if selected is None:
            response = FileResponse(stream, content_type="application/octet-stream")
            response["Content-Length"] = str(image.size)
        else:
            start, end = selected
            stream.seek(start)
            response = StreamingHttpResponse(read_span(stream, end - start + 1), status=206,
                                             content_type="application/octet-stream")
            response["Content-Length"] = str(end - start + 1)
            response["Content-Range"] = f"bytes {start}-{end}/{image.size}"
        response["Content-MD5"] = image.checksum
        response["Accept-Ranges"] = "bytes"
        return response

    @action(detail=True, methods=["post"], url_path="actions/deactivate")
    def deactivate(self, request, *args, **kwargs):
        return self._switch(DEACTIVATED)

    @action(detail=True, methods=["post"], url_path="actions/reactivate")
    def reactivate(self, request, *args, **kwargs):
        return self._switch(ACTIVE)

    def _switch(self, status):
        with transaction.atomic():
            image = self.get_owned_object(for_update=True)
            if image.status != status:
                if image.status not in (ACTIVE, DEACTIVATED):
                    verb = "deactivate" if status == DEACTIVATED else "reactivate"
                    raise Forbidden(f"Not allowed to {verb} image in status '{image.status}'.")
                image.set_status(status)
        return Response(status=204)

    @action(detail=True, methods=["put"], url_path=r"tags/(?P<tag>[^/]+)")
    def add_tag(self, request, *args, tag=None, **kwargs):
        if len(tag) > 255:
            raise BadRequest("Invalid input for field 'tag': longer than 255 characters.")
        with transaction.atomic():
            image = self.get_owned_object(for_update=True)
            ImageTag.objects.get_or_create(image=image, value=tag)
            Image.objects.filter(pk=image.pk).update(updated_at=timezone.now())
        return Response(status=204)

    @add_tag.mapping.delete
    def remove_tag(self, request, *args, tag=None, **kwargs):
        with transaction.atomic():
            image = self.get_owned_object(for_update=True)
            if not ImageTag.objects.filter(image=image, value=tag).delete()[0]:
                raise NotFound(f"Tag {tag} not found on image {image.id}.")
            Image.objects.filter(pk=image.pk).update(updated_at=timezone.now())
        return Response(status=204)


RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header, size):
    """(first, last) byte of a single `Range: bytes=a-b`, None for the
    whole image; 416 for a range outside it."""
    if not header:
        return None
    match = RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        raise ApiError(f"Invalid Range header {header!r}: expected bytes=<first>-<last>.", status=416,
                       headers={"Content-Range": f"bytes */{size}"})
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1  # the last N bytes
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start > end or start >= size:
        raise ApiError(f"Range {header!r} is outside the image's {size} bytes.", status=416,
                       headers={"Content-Range": f"bytes */{size}"})
    return start, end


def read_span(stream, length, chunk_size=data.CHUNK_SIZE):
    try:
        while length > 0:
            chunk = stream.read(min(chunk_size, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        stream.close()


class MemberViewSet(ResourceViewSet):
    """Members of a shared image. The owner adds and removes them; the
    member project alone accepts or rejects."""

    member_name, collection_name = "member", "members"
    lookup_field = "member"
    policy = {"list": "reader", "retrieve": "reader", "create": "member", "update": "member", "destroy": "member"}

    def image(self, owned=False):
        if owned:
            return owned_image(self.request, self.kwargs["image_id"])
        return find_image(self.request, self.kwargs["image_id"])

    def get_queryset(self):
        image = self.image()
        members = ImageMember.objects.filter(image=image)
        if not self.request.auth.is_admin and image.owner != project_of(self.request):
            members = members.filter(member=project_of(self.request))
        return members

    def list(self, request, *args, **kwargs):
        members = self.get_queryset().order_by("created_at", "member")
        return Response({"members": [member_view(member) for member in members], "schema": "/v2/schemas/members"})

    def retrieve(self, request, *args, **kwargs):
        return Response(member_view(self.get_object()))

    def create(self, request, *args, **kwargs):
        body = request.data
        if not isinstance(body, dict) or not isinstance(body.get("member"), str) or not body["member"]:
            raise BadRequest("Invalid input for field 'member': the body must be {\"member\": \"<project id>\"}.")
        if len(body["member"]) > 64:
            raise BadRequest("Invalid input for field 'member': longer than 64 characters.")
        image = self.image(owned=True)
        if image.visibility != "shared":
            raise Forbidden(f"Only shared images have members; image {image.id} is {image.visibility}.")
        try:
            with transaction.atomic():
                member = ImageMember.objects.create(image=image, member=body["member"])
        except IntegrityError:
            raise Conflict(f"Project {body['member']} is already a member of image {image.id}.")
        return Response(member_view(member))

    def update(self, request, *args, **kwargs):
        body = request.data
        status = body.get("status") if isinstance(body, dict) else None
        if status not in MEMBER_STATUSES:
            raise BadRequest(f"Invalid input for field 'status': {status!r} is not one of "
                             f"{', '.join(MEMBER_STATUSES)}.")
        member = self.get_object()
        if member.member != project_of(request):
            raise Forbidden("Only the member project may accept or reject a shared image.")
        member.status = status
        member.updated_at = timezone.now()
        member.save(update_fields=["status", "updated_at"])
        return Response(member_view(member))

    def destroy(self, request, *args, **kwargs):
        self.image(owned=True)
        member = self.get_object()
        member.delete()
        return Response(status=204)


class SchemaView(ApiView):
    policy = {"get": "any"}

    def get(self, request, name):
        if name not in SCHEMAS:
            raise NotFound(f"Could not find schema: {name}.")
        return Response(SCHEMAS[name])


class StoresInfoView(ApiView):
    policy = {"get": "any"}

    def get(self, request):
        default = stores.default()
        return Response({"stores": [
            {"id": store.id, "description": store.description, **({"default": True} if store is default else {})}
            for store in stores.enabled().values()]})


class ImportInfoView(ApiView):
    policy = {"get": "any"}

    def get(self, request):
        return Response({"import-methods": {"description": "Import methods available.", "type": "array",
                                            "value": importing.enabled_methods()}})


def visible_tasks(request):
    tasks = ImageTask.objects.all()
    return tasks if request.auth.is_admin else tasks.filter(owner=project_of(request))


class TaskListView(ApiView):
    """GET /v2/tasks: the project's tasks, newest first (without their
    input, result and message, as Glance lists them); POST: a task of type
    `import` (images.importing.parse_task), run by a control worker."""

    policy = {"get": "reader", "post": "member"}

    def get(self, request):
        tasks = visible_tasks(request)
        for name, choices in (("status", TASK_STATUSES), ("type", importing.TASK_TYPES)):
            value = request.query_params.get(name)
            if value is not None:
                if value not in choices:
                    raise BadRequest(f"Invalid input for field '{name}': {value!r} is not one of "
                                     f"{', '.join(choices)}.")
                tasks = tasks.filter(**{name: value})
        pairs = parse_sort(request, {"created_at": "created_at", "updated_at": "updated_at", "id": "id",
                                     "status": "status", "type": "type", "expires_at": "expires_at"},
                           DEFAULT_SORT)
        rows, next_url = paginate(request, tasks, pairs, markers=visible_tasks(request))
        body = {"tasks": [task_view(task, listed=True) for task in rows], "first": "/v2/tasks",
                "schema": "/v2/schemas/tasks"}
        if next_url:
            params = request.query_params.copy()
            params["marker"], params["limit"] = rows[-1].id, str(len(rows))
            body["next"] = "/v2/tasks?" + urlencode(params, doseq=True)
        return Response(body)

    def post(self, request):
        task_input = importing.parse_task(request.data)
        with transaction.atomic():
            image = create_image(request, task_input["image_properties"], field="input/image_properties")
            task = importing.start_task(image, task_input, request.auth, getattr(request, "request_id", None))
        response = Response(task_view(task), status=201)
        response["Location"] = request.build_absolute_uri(f"/image/v2/tasks/{task.id}")
        return response


class TaskView(ApiView):
    policy = {"get": "reader", "delete": "reader"}

    def delete(self, request, task_id):
        # As Glance: tasks are deleted only once expired (expires_at).
        raise ApiError("This operation is currently not permitted on Glance Tasks. They are auto deleted after "
                       "reaching the time based on their expires_at property.", status=405, headers={"Allow": "GET"})

    def get(self, request, task_id):
        task = visible_tasks(request).filter(pk=task_id).first()
        if task is None:
            raise NotFound(f"Could not find task: {task_id}.")
        return Response(task_view(task))

