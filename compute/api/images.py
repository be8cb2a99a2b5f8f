"""Nova's image proxy: /images (list, detail, show, delete) below
microversion 2.36 and /images/{id}/metadata below 2.39, answered from the
images app with Glance's rules (images.service); from those versions on
they are 404, as in Nova."""
from django.db import transaction
from django.utils.dateparse import parse_datetime
from rest_framework.response import Response

from cloud.errors import BadRequest, NotFound
from cloud.pagination import paginate
from compute import quotas
from compute.api.base import ProxyView, nova_time, require_metadata
from compute.api.server_views import base_url, link
from images import service

# Nova's image status and progress from Glance's status.
STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "importing": "SAVING",
          "uploading": "SAVING", "deleted": "DELETED", "pending_delete": "DELETED", "killed": "ERROR"}
PROGRESS = {"queued": 25, "saving": 50, "active": 100}
LIST_PAIRS = [("created_at", "desc"), ("id", "desc")]


def glance_statuses(nova_status):
    return [glance for glance, nova in STATUS.items() if nova == nova_status.upper()]


def project_of(request):
    return None if request.auth.is_admin else request.auth.project_id


def image_links(request, image):
    return [link(request, f"/compute/v2.1/images/{image.id}"),
            link(request, f"/compute/images/{image.id}", rel="bookmark"),
            {"rel": "alternate", "type": "application/vnd.openstack.image",
             "href": f"{base_url(request)}/image/images/{image.id}"}]


def image_summary(request, image):
    return {"id": image.id, "name": image.name, "links": image_links(request, image)}


def image_detail(request, image):
    body = {
        **image_summary(request, image), "minRam": image.min_ram, "minDisk": image.min_disk,
        "metadata": dict(image.properties), "created": nova_time(image.created_at),
        "updated": nova_time(image.updated_at), "status": STATUS.get(image.status, "UNKNOWN"),
        "progress": PROGRESS.get(image.status, 0), "OS-EXT-IMG-SIZE:size": image.size,
    }
    server_id = image.properties.get("instance_uuid")
    if server_id:
        body["server"] = {"id": server_id, "links": [
            link(request, f"/compute/v2.1/servers/{server_id}"),
            link(request, f"/compute/servers/{server_id}", rel="bookmark")]}
    return body


class ImageProxyView(ProxyView):
    def image(self, image_id):
        image = service.visible(image_id, project_of(self.request))
        if image is None:
            raise NotFound("Image not found.")
        return image


class ImageListView(ImageProxyView):
    policy = {"get": "reader"}
    detail = False

    def get(self, request):
        images = service.listed(project_of(request)).exclude(status="deleted")
        params = request.query_params
        if params.get("name"):
            images = images.filter(name=params["name"])
        if params.get("status"):
            images = images.filter(status__in=glance_statuses(params["status"]))
        if params.get("changes-since"):
            since = parse_datetime(params["changes-since"])
            if since is None:
                raise BadRequest(f"Invalid input for field 'changes-since': {params['changes-since']!r} is not "
                                 f"a time.")
            images = images.filter(updated_at__gte=since)
        if params.get("server"):
            images = images.filter(properties__instance_uuid=params["server"].rstrip("/").rsplit("/", 1)[-1])
        if params.get("type"):
            images = images.filter(properties__image_type=params["type"])
        for param, column in (("minRam", "min_ram__gte"), ("minDisk", "min_disk__gte")):
            if params.get(param):
                if not params[param].isdigit():
                    raise BadRequest(f"Invalid input for field '{param}': {params[param]!r} is not an integer.")
                images = images.filter(**{column: int(params[param])})
        rows, next_url = paginate(request, images, LIST_PAIRS, markers=service.listed(project_of(request)))
        render = image_detail if self.detail else image_summary
        body = {"images": [render(request, image) for image in rows]}
        if next_url:
            body["images_links"] = [{"rel": "next", "href": next_url}]
        return Response(body)


class ImageDetailListView(ImageListView):
    detail = True


class ImageView(ImageProxyView):
    policy = {"get": "reader", "delete": "member"}

    def get(self, request, image_id):
        return Response({"image": image_detail(request, self.image(image_id))})

    def delete(self, request, image_id):
        with transaction.atomic():
            service.delete(self.owned(image_id))
        return Response(status=204)

    def owned(self, image_id):
        self.image(image_id)
        return service.owned_for_update(image_id, project_of(self.request))


class MetadataProxyView(ImageProxyView):
    removed_in = (2, 39)

    def change(self, image_id, change):
        """The image's metadata replaced by change(current), within the
        project's metadata_items quota as in Nova."""
        self.image(image_id)
        limit = quotas.limit_of(self.request.auth.project_id, "metadata_items")

        def checked(current):
            new = change(current)
            require_metadata(new, limit=limit)
            return new

        return service.change_properties(image_id, project_of(self.request), checked)


class ImageMetadataView(MetadataProxyView):
    """GET, PUT (replace) and POST (merge) /images/{id}/metadata."""

    policy = {"get": "reader", "put": "member", "post": "member"}

    def get(self, request, image_id):
        return Response({"metadata": dict(self.image(image_id).properties)})

    def put(self, request, image_id):
        new = self.new_metadata(request)
        return Response({"metadata": self.change(image_id, lambda current: new)})

    def post(self, request, image_id):
        new = self.new_metadata(request)
        return Response({"metadata": self.change(image_id, lambda current: {**current, **new})})

    @staticmethod
    def new_metadata(request):
        if not isinstance(request.data, dict) or "metadata" not in request.data:
            raise BadRequest("Invalid input for field 'metadata': the body must be {\"metadata\": {...}}.")
        return require_metadata(request.data["metadata"])


class ImageMetadataItemView(MetadataProxyView):
    policy = {"get": "reader", "put": "member", "delete": "member"}

    def get(self, request, image_id, key):
        properties = self.image(image_id).properties
        if key not in properties:
            raise NotFound(f"Image metadata item {key} was not found.")
        return Response({"meta": {key: properties[key]}})

    def put(self, request, image_id, key):
        meta = request.data.get("meta") if isinstance(request.data, dict) else None
        if not isinstance(meta, dict) or list(meta) != [key]:
            raise BadRequest("Invalid input for field 'meta': must hold exactly the key in the URL.")
        require_metadata(meta, "meta")
        self.change(image_id, lambda current: {**current, **meta})
        return Response({"meta": meta})

    def delete(self, request, image_id, key):
        def without_key(current):
            if key not in current:
                raise NotFound(f"Image metadata item {key} was not found.")
            return {name: value for name, value in current.items() if name != key}

        self.change(image_id, without_key)
        return Response(status=204)
