"""Host aggregates (os-aggregates), admin only, as Nova has them.

An aggregate is a named group of compute hosts with metadata; its
`availability_zone` metadata key makes it an availability zone: every host
in it is in that zone, a host in no such aggregate is in the default zone.
The scheduler and the zone list read ComputeNode.availability_zone and
os-services the compute Service's, so every change that moves a host
between zones writes both in the same transaction.

Nova's rules: a host is in at most one zone (adding it to an aggregate of
another zone is refused); a zone is not renamed, nor a host moved to
another zone, while instances run there (their zone would change under
them). Each change is made, then checked, inside one transaction: a
refused request rolls back and leaves nothing changed."""
import re

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict, NotFound
from compute.api.base import ComputeView, nova_time_usec, require_string
from compute.models import Aggregate, AggregateHost, ComputeNode, Instance, Service, host_zones, zone_of

ZONE_KEY = Aggregate.ZONE_KEY
METADATA_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")


def aggregate_body(request, aggregate, full=True):
    data = {
        "id": aggregate.id, "name": aggregate.name, "availability_zone": aggregate.availability_zone,
        "created_at": nova_time_usec(aggregate.created_at), "updated_at": nova_time_usec(aggregate.updated_at),
        "deleted_at": None, "deleted": False,
    }
    if full:  # Nova's create answers without hosts and metadata
        data["hosts"] = [row.host for row in aggregate.hosts.all()]
        data["metadata"] = dict(aggregate.metadata or {})
    if request.api_version >= (2, 41):
        data["uuid"] = str(aggregate.uuid)
    return data


def find(aggregate_id, lock=False):
    """The aggregate by its integer id (anything else: not found)."""
    rows = Aggregate.objects.select_for_update() if lock else Aggregate.objects.all()
    try:
        number = int(str(aggregate_id))
    except ValueError:
        number = None
    aggregate = rows.filter(id=number).first() if number is not None and 0 < number < 2 ** 31 else None
    if aggregate is None:
        raise NotFound(f"Aggregate {aggregate_id} could not be found.")
    return aggregate


def zone_name(value, field="availability_zone"):
    zone = require_string(value, field)
    if ":" in zone:
        raise BadRequest(f"Invalid input for field '{field}': an availability zone name must not contain ':'.")
    return zone


def aggregate_name(value):
    return require_string(value, "name")


def lock_hosts(hosts):
    """Locks the hosts' nodes (in host order): two changes of one host's
    aggregates are checked one after the other."""
    list(ComputeNode.objects.select_for_update().filter(host__in=hosts).order_by("host").values_list("id"))


def hosts_with_instances(hosts):
    """The hosts that have instances (on them or placed there)."""
    live = Instance.objects.filter(deleted=False)
    found = set(live.filter(host__in=hosts).values_list("host", flat=True))
    return found | set(live.filter(node__host__in=hosts).values_list("node__host", flat=True))


def apply_zones(hosts, before, refuse, what):
    """After a change: refuses it (`refuse`, an ApiError class) if a host
    would be in two zones or instances would change zone; otherwise writes
    each host's zone to its node and compute service."""
    after = host_zones(hosts)
    for host in sorted(hosts):
        if len(after[host]) > 1:
            raise refuse(f"Cannot {what}: host {host} would be in more than one availability zone "
                         f"({', '.join(sorted(after[host]))}).")
    moved = {host for host in hosts
             if zone_of(after[host]) != zone_of(before[host])}
    busy = sorted(hosts_with_instances(moved)) if moved else []
    if busy:
        raise refuse(f"Cannot {what}: it would move the instances on host(s) {', '.join(busy)} "
                     f"to another availability zone.")
    for host in hosts:
        zone = zone_of(after[host])
        ComputeNode.objects.filter(host=host).exclude(availability_zone=zone).update(availability_zone=zone)
        Service.objects.filter(host=host, binary=Service.COMPUTE_BINARY).exclude(
            availability_zone=zone).update(availability_zone=zone)


def change_zone(aggregate, metadata, refuse, what):
    """Saves `metadata` on the locked aggregate, its hosts' zones with it."""
    hosts = list(aggregate.hosts.values_list("host", flat=True))
    lock_hosts(hosts)
    before = host_zones(hosts)
    aggregate.metadata = metadata
    aggregate.updated_at = timezone.now()
    aggregate.save(update_fields=["metadata", "updated_at"])
    apply_zones(hosts, before, refuse, what)


def name_taken(name, exclude=None):
    return Aggregate.objects.filter(name=name).exclude(id=exclude).exists()


class AggregateListView(ComputeView):
    policy = {"get": "admin", "post": "admin"}

    def get(self, request):
        aggregates = Aggregate.objects.prefetch_related("hosts")
        return Response({"aggregates": [aggregate_body(request, aggregate) for aggregate in aggregates]})

    def post(self, request):
        data = self.body("aggregate")
        unknown = set(data) - {"name", "availability_zone"}
        if unknown:
            raise BadRequest(f"Invalid input for field 'aggregate': unexpected {', '.join(sorted(unknown))}.")
        name = aggregate_name(data.get("name"))
        zone = data.get("availability_zone")
        metadata = {ZONE_KEY: zone_name(zone)} if zone is not None else {}
        if name_taken(name):
            raise Conflict(f"Aggregate {name} already exists.")
        try:
            with transaction.atomic():
                aggregate = Aggregate.objects.create(name=name, metadata=metadata)
        except IntegrityError:  # made meanwhile
            raise Conflict(f"Aggregate {name} already exists.")
        return Response({"aggregate": aggregate_body(request, aggregate, full=False)})


class AggregateView(ComputeView):
    policy = {"get": "admin", "put": "admin", "delete": "admin"}

    def get(self, request, aggregate_id):
        return Response({"aggregate": aggregate_body(request, find(aggregate_id))})

    def put(self, request, aggregate_id):
        data = self.body("aggregate")
        unknown = set(data) - {"name", "availability_zone"}
        if unknown:
            raise BadRequest(f"Invalid input for field 'aggregate': unexpected {', '.join(sorted(unknown))}.")
        if not data:
            raise BadRequest("Invalid input for field 'aggregate': give name and/or availability_zone.")
        name = aggregate_name(data["name"]) if "name" in data else None
        zone = zone_name(data["availability_zone"]) if "availability_zone" in data else None
        try:
            with transaction.atomic():
                aggregate = find(aggregate_id, lock=True)
                if name is not None and name != aggregate.name:
                    if name_taken(name, exclude=aggregate.id):
                        raise Conflict(f"Aggregate {name} already exists.")
                    aggregate.name = name
                    aggregate.updated_at = timezone.now()
                    aggregate.save(update_fields=["name", "updated_at"])
                if zone is not None and zone != aggregate.availability_zone:
                    change_zone(aggregate, {**aggregate.metadata, ZONE_KEY: zone}, BadRequest,
                                f"update aggregate {aggregate.id}")
        except IntegrityError:
            raise Conflict(f"Aggregate {name} already exists.")
        return Response({"aggregate": aggregate_body(request, aggregate)})

    def delete(self, request, aggregate_id):
        with transaction.atomic():
            aggregate = find(aggregate_id, lock=True)
            if aggregate.hosts.exists():
                raise BadRequest(f"Cannot delete aggregate {aggregate.id}: host aggregate is not empty.")
            aggregate.delete()
        return Response(status=200)


class AggregateActionView(ComputeView):
    """POST /os-aggregates/{id}/action: add_host, remove_host, set_metadata."""

    policy = {"post": "admin"}
    ACTIONS = ("add_host", "remove_host", "set_metadata")

    def post(self, request, aggregate_id):
        data = request.data
        if not isinstance(data, dict) or len(data) != 1 or next(iter(data)) not in self.ACTIONS:
            raise BadRequest("Invalid input for field 'action': give one of add_host, remove_host, set_metadata.")
        action = next(iter(data))
        body = self.body(action)
        with transaction.atomic():
            aggregate = find(aggregate_id, lock=True)
            getattr(self, action)(aggregate, body)
        aggregate = find(aggregate.id)
        return Response({"aggregate": aggregate_body(request, aggregate)})

    @staticmethod
    def host_of(body, action):
        if set(body) != {"host"}:
            raise BadRequest(f"Invalid input for field '{action}': the body must be {{\"host\": ...}}.")
        return require_string(body["host"], "host")

    def add_host(self, aggregate, body):
        host = self.host_of(body, "add_host")
        if not ComputeNode.objects.filter(host=host).exists():
            raise NotFound(f"Compute host {host} could not be found.")
        lock_hosts([host])
        if aggregate.hosts.filter(host=host).exists():
            raise Conflict(f"Cannot add host {host} in aggregate {aggregate.id}: host exists.")
        before = host_zones([host])
        AggregateHost.objects.create(aggregate=aggregate, host=host)
        apply_zones([host], before, Conflict, f"add host {host} to aggregate {aggregate.id}")

    def remove_host(self, aggregate, body):
        host = self.host_of(body, "remove_host")
        lock_hosts([host])
        member = aggregate.hosts.filter(host=host).first()
        if member is None:
            if not ComputeNode.objects.filter(host=host).exists():
                raise NotFound(f"Compute host {host} could not be found.")
            raise NotFound(f"Aggregate {aggregate.id} has no host {host}.")
        before = host_zones([host])
        member.delete()
        apply_zones([host], before, Conflict, f"remove host {host} from aggregate {aggregate.id}")

    def set_metadata(self, aggregate, body):
        if set(body) != {"metadata"} or not isinstance(body["metadata"], dict):
            raise BadRequest("Invalid input for field 'set_metadata': the body must be {\"metadata\": {...}}.")
        changes = body["metadata"]
        for key, value in changes.items():
            if not METADATA_KEY.match(key):
                raise BadRequest(f"Invalid input for field 'metadata': key {key!r} must be 1 to 255 letters, "
                                 f"digits or '-_:. '.")
            if value is not None and (not isinstance(value, str) or len(value) > 255):
                raise BadRequest(f"Invalid input for field 'metadata/{key}': values must be strings of at most "
                                 f"255 characters or null.")
        if ZONE_KEY in changes:
            if changes[ZONE_KEY] is None or not changes[ZONE_KEY].strip():
                raise BadRequest(f"Aggregate {aggregate.name} does not support empty named availability zone.")
            changes = {**changes, ZONE_KEY: zone_name(changes[ZONE_KEY], f"metadata/{ZONE_KEY}")}
        metadata = dict(aggregate.metadata or {})
        for key, value in changes.items():
            if value is None:
                metadata.pop(key, None)
            else:
                metadata[key] = value
        if metadata.get(ZONE_KEY) != aggregate.availability_zone:
            change_zone(aggregate, metadata, BadRequest, f"set metadata of aggregate {aggregate.id}")
        else:
            aggregate.metadata = metadata
            aggregate.updated_at = timezone.now()
            aggregate.save(update_fields=["metadata", "updated_at"])
