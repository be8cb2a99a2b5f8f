"""os-instance-actions: what was asked of a server, and each step (event)
of it with its times and result."""
from rest_framework.response import Response

from cloud.errors import NotFound
from compute.api.base import ComputeView, nova_time_usec
from compute.api.servers import visible_instances
from compute.models import InstanceAction


def find_server(request, server_id):
    # Actions of deleted servers stay readable, as in Nova.
    instance = visible_instances(request, include_deleted=True).filter(pk=server_id).first() \
        if _is_uuid(server_id) else None
    if instance is None:
        raise NotFound(f"Instance {server_id} could not be found.")
    return instance


def _is_uuid(value):
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


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


class InstanceActionListView(ComputeView):
    policy = {"get": "reader"}

    def get(self, request, server_id):
        instance = find_server(request, server_id)
        actions = InstanceAction.objects.filter(instance=instance).order_by("-start_time", "-id")
        return Response({"instanceActions": [action_body(request, action) for action in actions]})


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



