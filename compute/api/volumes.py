"""Nova's volume proxy below microversion 2.36: os-volumes and os-snapshots
(list, detail, show, create, delete), answered by the Block Storage API in
the caller's project as Nova answers them from Cinder, in Nova's camelCase
shape. (Attaching is os-volume_attachments, which stays.)"""
from rest_framework.response import Response

from cloud.errors import BadRequest, NotFound
from compute.api.base import ServiceProxy, is_uuid, require_int

PAGING = ("limit", "offset", "marker")


def nova_volume(volume):
    attachments = [{"id": attachment["volume_id"], "volumeId": attachment["volume_id"],
                    "serverId": attachment["server_id"], "device": attachment["device"]}
                   for attachment in volume["attachments"]]
    return {"id": volume["id"], "status": volume["status"], "size": volume["size"],
            "availabilityZone": volume["availability_zone"], "createdAt": volume["created_at"],
            # Nova's own quirk: no attachment is a list holding one empty object.
            "attachments": attachments or [{}], "displayName": volume["name"],
            "displayDescription": volume["description"], "volumeType": volume["volume_type"],
            "snapshotId": volume["snapshot_id"], "metadata": volume["metadata"]}


def nova_snapshot(snapshot):
    return {"id": snapshot["id"], "volumeId": snapshot["volume_id"], "status": snapshot["status"],
            "size": snapshot["size"], "createdAt": snapshot["created_at"], "displayName": snapshot["name"],
            "displayDescription": snapshot["description"]}


def optional_text(body, field):
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not a string.")
    return value


class CinderProxy(ServiceProxy):
    policy = {"get": "reader", "post": "reader", "delete": "reader"}
    # Cinder's name for what the path holds, and Nova's view of one.
    collection, member, render = "volumes", "volume", staticmethod(nova_volume)

    def listing(self, request):
        params = {name: request.query_params[name] for name in PAGING if name in request.query_params}
        found = self.cinder("GET", f"/{self.collection}/detail", params=params)
        return Response({self.collection: [self.render(item) for item in found[self.collection]]})

    def one(self, item_id):
        if not is_uuid(item_id):
            raise NotFound(f"{self.member.capitalize()} {item_id} could not be found.")
        return self.cinder("GET", f"/{self.collection}/{item_id}")[self.member]


class VolumeListView(CinderProxy):
    def get(self, request):
        return self.listing(request)

    def post(self, request):
        body = self.body("volume")
        size = require_int(body.get("size"), "size", minimum=1)
        volume = {"size": size, "name": optional_text(body, "display_name"),
                  "description": optional_text(body, "display_description"),
                  "volume_type": optional_text(body, "volume_type"),
                  "availability_zone": optional_text(body, "availability_zone"),
                  "snapshot_id": optional_text(body, "snapshot_id")}
        metadata = body.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise BadRequest("Invalid input for field 'metadata': an object is needed.")
            volume["metadata"] = metadata
        made = self.cinder("POST", "/volumes", {"volume": {key: value for key, value in volume.items()
                                                           if value is not None}})
        return Response({"volume": nova_volume(made["volume"])})


class VolumeDetailListView(CinderProxy):
    def get(self, request):
        return self.listing(request)


class VolumeView(CinderProxy):
    def get(self, request, volume_id):
        return Response({"volume": nova_volume(self.one(volume_id))})

    def delete(self, request, volume_id):
        self.one(volume_id)
        self.cinder("DELETE", f"/volumes/{volume_id}")
        return Response(status=202)


class SnapshotProxy(CinderProxy):
    collection, member, render = "snapshots", "snapshot", staticmethod(nova_snapshot)


class SnapshotListView(SnapshotProxy):
    def get(self, request):
        return self.listing(request)

    def post(self, request):
        body = self.body("snapshot")
        volume_id = body.get("volume_id")
        if not isinstance(volume_id, str) or not volume_id:
            raise BadRequest("Invalid input for field 'volume_id': a volume id is required.")
        force = body.get("force", False)
        if isinstance(force, str) and force.lower() in ("true", "false", "1", "0", "yes", "no"):
            force = force.lower() in ("true", "1", "yes")
        if not isinstance(force, bool):
            raise BadRequest(f"Invalid input for field 'force': {force!r} is not a boolean.")
        snapshot = {"volume_id": volume_id, "force": force, "name": optional_text(body, "display_name"),
                    "description": optional_text(body, "display_description")}
        made = self.cinder("POST", "/snapshots", {"snapshot": {key: value for key, value in snapshot.items()
                                                               if value is not None}})
        return Response({"snapshot": nova_snapshot(made["snapshot"])})


class SnapshotDetailListView(SnapshotProxy):
    def get(self, request):
        return self.listing(request)


class SnapshotView(SnapshotProxy):
    def get(self, request, snapshot_id):
        return Response({"snapshot": nova_snapshot(self.one(snapshot_id))})

    def delete(self, request, snapshot_id):
        self.one(snapshot_id)
        self.cinder("DELETE", f"/snapshots/{snapshot_id}")
        return Response(status=202)
