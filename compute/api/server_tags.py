"""Server tags (2.26+): /servers/{id}/tags and /servers/{id}/tags/{tag},
the `tags` of a server's body, of a create request (2.52+) and of the
list filters tags, tags-any, not-tags and not-tags-any."""
import functools
import operator

from django.db import transaction
from django.db.models import Exists, OuterRef
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict, NotFound
from compute.api.base import ComputeView
from compute.models import InstanceTag, VmState

MIN_VERSION = (2, 26)
# Nova changes tags only of a server that is settled in one of these.
TAGGABLE_STATES = (VmState.ACTIVE, VmState.PAUSED, VmState.SUSPENDED, VmState.STOPPED)
FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


def require_tag(value, field="tags"):
    if not isinstance(value, str) or not value or len(value) > InstanceTag.MAX_LENGTH or "/" in value \
            or "," in value:
        raise BadRequest(f"Invalid input for field '{field}': tag {value!r} is invalid. It must be a non empty "
                         f"string of at most {InstanceTag.MAX_LENGTH} characters without characters '/' and ','.")
    return value


def require_tags(value, field="tags"):
    """A list of valid tags, duplicates dropped, within the per-server limit."""
    if not isinstance(value, list):
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not a list of tags.")
    tags = list(dict.fromkeys(require_tag(tag, field) for tag in value))
    if len(tags) > InstanceTag.MAX_PER_INSTANCE:
        raise BadRequest(f"Invalid input for field '{field}': the number of tags exceeded the per-server "
                         f"limit {InstanceTag.MAX_PER_INSTANCE}.")
    return tags


def tags_of(instances):
    """{instance id: [tag, ...]} for the instances, in one query."""
    found = {instance.pk: [] for instance in instances}
    for instance_id, tag in InstanceTag.objects.filter(instance_id__in=list(found)).values_list("instance_id", "tag"):
        found[instance_id].append(tag)
    return found


def filter_by_tags(request, instances):
    """The list filters, each a comma-separated list of tags."""
    params = request.query_params
    if request.api_version < MIN_VERSION:
        return instances
    for name in FILTERS:
        if name not in params:
            continue
        wanted = [tag for tag in params[name].split(",") if tag]
        if not wanted:
            continue
        all_of = functools.reduce(operator.and_, (
            Exists(InstanceTag.objects.filter(instance=OuterRef("pk"), tag=tag)) for tag in wanted))
        any_of = Exists(InstanceTag.objects.filter(instance=OuterRef("pk"), tag__in=wanted))
        if name == "tags":
            instances = instances.filter(all_of)
        elif name == "tags-any":
            instances = instances.filter(any_of)
        elif name == "not-tags":  # not all of them
            instances = instances.exclude(all_of)
        else:  # not-tags-any: none of them
            instances = instances.exclude(any_of)
    return instances


def set_tags(instance, tags):
    """Replaces the instance's tags (inside the caller's transaction)."""
    InstanceTag.objects.filter(instance=instance).exclude(tag__in=tags).delete()
    present = set(InstanceTag.objects.filter(instance=instance).values_list("tag", flat=True))
    InstanceTag.objects.bulk_create([InstanceTag(instance=instance, tag=tag) for tag in tags if tag not in present])


class TagsBase(ComputeView):
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.api_version < MIN_VERSION:
            raise NotFound("Server tags need microversion 2.26 or later.")

    def server(self, server_id, for_change=None):
        """The caller's server; for a change (named), its row locked and in
        a state that allows it (as Nova, a lock does not keep tags still)."""
        from compute.api.servers import find_instance  # servers imports this module

        instance = find_instance(self.request, server_id, for_update=bool(for_change))
        if for_change:
            if instance.vm_state not in TAGGABLE_STATES or instance.task_state:
                raise Conflict(f"Cannot '{for_change}' instance {instance.id} while it is in vm_state "
                               f"{instance.vm_state}" + (f", task_state {instance.task_state}."
                                                        if instance.task_state else "."))
        return instance

    def tags(self, instance):
        return list(InstanceTag.objects.filter(instance=instance).values_list("tag", flat=True))


class ServerTagsView(TagsBase):
    """GET, PUT (replace all) and DELETE (all) of a server's tags."""

    policy = {"get": "reader", "put": "member", "delete": "member"}

    def get(self, request, server_id):
        return Response({"tags": self.tags(self.server(server_id))})

    def put(self, request, server_id):
        if not isinstance(request.data, dict) or "tags" not in request.data:
            raise BadRequest("Invalid input for field 'tags': the body must be {\"tags\": [...]}.")
        tags = require_tags(request.data["tags"])
        with transaction.atomic():
            instance = self.server(server_id, for_change="update tags")
            set_tags(instance, tags)
            return Response({"tags": self.tags(instance)})

    def delete(self, request, server_id):
        with transaction.atomic():
            instance = self.server(server_id, for_change="delete tags")
            InstanceTag.objects.filter(instance=instance).delete()
        return Response(status=204)


class ServerTagView(TagsBase):
    """GET (204 when present), PUT (add) and DELETE of one tag."""

    policy = {"get": "reader", "put": "member", "delete": "member"}

    def get(self, request, server_id, tag):
        instance = self.server(server_id)
        if not InstanceTag.objects.filter(instance=instance, tag=tag).exists():
            raise NotFound(f"Server {instance.id} has no tag '{tag}'")
        return Response(status=204)

    def put(self, request, server_id, tag):
        require_tag(tag, "tag")
        with transaction.atomic():
            instance = self.server(server_id, for_change="update tag")
            tags = self.tags(instance)
            if tag in tags:
                return Response(status=204)
            if len(tags) >= InstanceTag.MAX_PER_INSTANCE:
                raise BadRequest(f"The number of tags exceeded the per-server limit {InstanceTag.MAX_PER_INSTANCE}.")
            InstanceTag.objects.create(instance=instance, tag=tag)
        response = Response(status=201)
        response["Location"] = request.build_absolute_uri()
        return response

    def delete(self, request, server_id, tag):
        with transaction.atomic():
            instance = self.server(server_id, for_change="delete tag")
            deleted, _ = InstanceTag.objects.filter(instance=instance, tag=tag).delete()
        if not deleted:
            raise NotFound(f"Server {instance.id} has no tag '{tag}'")
        return Response(status=204)
