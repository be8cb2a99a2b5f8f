"""POST /os-server-external-events: other services tell Compute what
happened to a server's ports or volumes (Nova's service API: a cloud admin
or a token with the `service` role).

Each event is answered on its own, as Nova answers it: 200 `completed` for
a server on a host, 404 `failed` for a server that does not exist (or is
deleted), 422 `failed` for one on no host, 400 `failed` for a
`volume-extended` without the volume's id in `tag`. The whole answer is
200 when every event was accepted, 207 when some were not, 404 when none
was. An accepted event needs no more work here: a node reads a server's
ports and volumes from the database at each step (nothing waits for a
vif-plugged event or caches what network-changed would refresh)."""
from rest_framework.response import Response

from cloud.errors import BadRequest, NotFound
from compute.api.base import ComputeView, is_uuid
from compute.models import Instance

SERVICE_ROLE = "service"
EVENT_STATUSES = ("failed", "completed", "in-progress")
NETWORK_EVENTS = ("network-changed", "network-vif-plugged", "network-vif-unplugged", "network-vif-deleted")
# Events that name what they are about in `tag` (volume-extended: the volume).
TAG_REQUIRED = {"volume-extended"}
MAX_EVENTS = 1000  # events in one request; Nova's schema has no bound, its callers send a handful


def event_names(request):
    """The events known at the request's microversion."""
    if request.api_version >= (2, 51):
        return NETWORK_EVENTS + ("volume-extended",)
    return NETWORK_EVENTS


def service_or_admin(request, view):
    return request.auth.has_role(SERVICE_ROLE)


def check_event(request, index, event):
    field = f"events/{index}"
    if not isinstance(event, dict):
        raise BadRequest(f"Invalid input for field '{field}': must be an object.")
    unknown = sorted(set(event) - {"server_uuid", "name", "status", "tag"})
    if unknown:
        raise BadRequest(f"Invalid input for field '{field}': additional properties are not allowed "
                         f"({', '.join(unknown)} unexpected).")
    for required in ("server_uuid", "name"):
        if required not in event:
            raise BadRequest(f"Invalid input for field '{field}/{required}': it is required.")
    if not isinstance(event["server_uuid"], str) or not is_uuid(event["server_uuid"]):
        raise BadRequest(f"Invalid input for field '{field}/server_uuid': {event['server_uuid']!r} is not a "
                         f"'uuid'.")
    names = event_names(request)
    if event["name"] not in names:
        raise BadRequest(f"Invalid input for field '{field}/name': {event['name']!r} is not one of "
                         f"{', '.join(names)}.")
    if "status" in event and event["status"] not in EVENT_STATUSES:
        raise BadRequest(f"Invalid input for field '{field}/status': {event['status']!r} is not one of "
                         f"{', '.join(EVENT_STATUSES)}.")
    if "tag" in event and (not isinstance(event["tag"], str) or len(event["tag"]) > 255):
        raise BadRequest(f"Invalid input for field '{field}/tag': must be a string of at most 255 characters.")


class ServerExternalEventsView(ComputeView):
    policy = {"post": service_or_admin}

    def post(self, request):
        data = request.data
        if not isinstance(data, dict) or set(data) != {"events"}:
            raise BadRequest("Invalid input for field 'events': the body must be {\"events\": [...]}.")
        events = data["events"]
        if not isinstance(events, list) or not events:
            raise BadRequest("Invalid input for field 'events': must be a list of at least one event.")
        if len(events) > MAX_EVENTS:
            raise BadRequest(f"Invalid input for field 'events': at most {MAX_EVENTS} events in one request.")
        for index, event in enumerate(events):
            check_event(request, index, event)
        wanted = {event["server_uuid"].lower() for event in events}
        hosts = {str(pk): host for pk, host in Instance.objects.filter(pk__in=wanted, deleted=False)
                 .values_list("pk", "host")}
        answered, accepted = [], 0
        for event in events:
            answer = {**event, "status": event.get("status", "completed")}
            host = hosts.get(event["server_uuid"].lower())
            if event["server_uuid"].lower() not in hosts:
                answer.update(status="failed", code=404)
            elif event["name"] in TAG_REQUIRED and "tag" not in event:
                answer.update(status="failed", code=400)
            elif not host:
                answer.update(status="failed", code=422)
            else:
                answer.update(status="completed", code=200)
                accepted += 1
            answered.append(answer)
        if not accepted:
            raise NotFound("No instances found for any event")
        return Response({"events": answered}, status=200 if accepted == len(events) else 207)
