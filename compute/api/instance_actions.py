"""os-instance-actions: what was asked of a server, and each step (event)
of it with its times and result. From 2.58 the list pages (`limit`,
`marker` a request_id of this server's, a `next` link) and filters on
`changes-since`, as Nova's does."""
from rest_framework.response import Response

from cloud.errors import NotFound
from cloud.pagination import order_by
from compute.api.base import ComputeView, is_uuid, nova_time_usec, paginate_from
from compute.api.servers import parse_time, visible_instances
from compute.models import InstanceAction


def find_server(request, server_id):
    # Actions of deleted servers stay readable, as in Nova.
    instance = visible_instances(request, include_deleted=True).filter(pk=server_id).first() \
        if is_uuid(server_id) else None
    if instance is None:
        raise NotFound(f"Instance {server_id} could not be found.")
    return instance


def action_body(request, action):
    data = {"action": action.action, "instance_uuid": str(action.instance_id), "message": action.message,
            "project_id": action.project_id, "request_id": action.request_id,
            "start_time": nova_time_usec(action.start_time), "user_id": action.user_id}
    if request.api_version >= (2, 58):
        data["updated_at"] = nova_time_usec(action.updated_at)
    return data


def event_body(request, event):
    data = {"event": event.event, "start_time": nova_time_usec(event.start_time),
            "finish_time": nova_time_usec(event.finish_time), "result": event.result}
    if request.auth.is_admin:
        data["traceback"] = event.traceback
    return data


NEWEST_FIRST = [("start_time", "desc"), ("id", "desc")]


def page(request, instance):
    """(actions, next link or None); paged and filtered on changes-since
    from 2.58. The marker is looked for among this server's actions only:
    one request may act on many servers, so a request_id alone is not
    unique."""
    actions = InstanceAction.objects.filter(instance=instance)
    if request.api_version >= (2, 58) and request.query_params.get("changes-since"):
        actions = actions.filter(updated_at__gte=parse_time(request.query_params["changes-since"], "changes-since"))
    return paginate_from(request, (2, 58), actions, NEWEST_FIRST, marker_field="request_id",
                         markers=InstanceAction.objects.filter(instance=instance).order_by(*order_by(NEWEST_FIRST)),
                         marker_not_found="Marker {marker} could not be found.")


class InstanceActionListView(ComputeView):
    policy = {"get": "reader"}

    def get(self, request, server_id):
        actions, next_url = page(request, find_server(request, server_id))
        body = {"instanceActions": [action_body(request, action) for action in actions]}
        if next_url:
            body["links"] = [{"rel": "next", "href": next_url}]
        return Response(body)


class InstanceActionView(ComputeView):
    policy = {"get": "reader"}

    def get(self, request, server_id, request_id):
        instance = find_server(request, server_id)
        action = InstanceAction.objects.filter(instance=instance, request_id=request_id).order_by(
            "-start_time", "-id").first()
        if action is None:
            raise NotFound(f"Action for request_id {request_id} on instance {server_id} not found.")
        body = action_body(request, action)
        body["events"] = [event_body(request, event) for event in action.events.order_by("start_time", "id")]
        return Response({"instanceAction": body})



