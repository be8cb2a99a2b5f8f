"""Consoles of a server: its console log (os-getConsoleOutput), a noVNC URL
(os-getVNCConsole, and POST /servers/{id}/remote-consoles from 2.6).

Both wait for the instance's node to answer, inside an API worker thread:
each wait is bounded (compute.conf.NODE_CALL_TIMEOUT) and only a few
requests per API process may wait at once (NODE_CALLS_PER_API_PROCESS), so
a slow or dead node answers 409 and never stalls the other requests."""
import threading
from contextlib import contextmanager

from rest_framework.response import Response

from cloud.errors import BadRequest, Conflict
from compute import conf
from compute.api.base import require_int
from compute.console.tokens import novnc_url
from compute.models import VmState
from workers import pipelines

_node_waits = threading.BoundedSemaphore(conf.NODE_CALLS_PER_API_PROCESS)


@contextmanager
def waiting_for_node(instance, what):
    """Around one synchronous call to the instance's node: 409 at once when
    the node is down or this process has enough requests waiting already,
    409 naming the node when it does not answer in time or fails."""
    if not instance.node.is_up:
        raise Conflict(f"Compute host {instance.host} is not available.")
    if not _node_waits.acquire(blocking=False):
        raise Conflict(f"{what} of instance {instance.id} is unavailable now: too many requests are waiting "
                       f"for compute hosts; try again.")
    try:
        yield
    except pipelines.NodeDidNotAnswer as error:
        raise Conflict(f"{what} of instance {instance.id} is unavailable: {error}") from None
    except Exception as error:  # the node's own error: the caller sees why
        raise Conflict(f"{what} of instance {instance.id} is unavailable: compute host {instance.host} "
                       f"answered {type(error).__name__}: {error}") from None
    finally:
        _node_waits.release()


def console_output(instance, argument):
    length = None
    if isinstance(argument, dict) and argument.get("length") not in (None, -1, "-1"):
        length = require_int(argument["length"], "length", minimum=0)
    if not instance.host or instance.vm_state in (VmState.BUILDING, VmState.ERROR) or instance.node is None:
        raise Conflict(f"Instance {instance.id} is not ready: it has no console yet "
                       f"(vm_state {instance.vm_state}).")
    with waiting_for_node(instance, "Console log"):
        output = pipelines.console_log(instance.pk, instance.host, length, conf.NODE_CALL_TIMEOUT)
    return Response({"output": output})


def vnc_console(instance, argument):
    """os-getVNCConsole (before 2.6)."""
    console_type = argument.get("type") if isinstance(argument, dict) else None
    return Response({"console": {"type": console_type, "url": novnc_url_of(instance, console_type)}})


def novnc_url_of(instance, console_type):
    """A one-time noVNC console URL of the instance's domain (through the
    console proxy), or 400/409 saying why there is none."""
    if console_type != "novnc":
        raise BadRequest(f"Invalid input for field 'type': unavailable console type {console_type!r}; "
                         f"Stratus offers 'novnc'.")
    if not instance.host or instance.node is None or instance.vm_state not in (VmState.ACTIVE, VmState.PAUSED):
        raise Conflict(f"Instance {instance.id} is not ready: it has no console now "
                       f"(vm_state {instance.vm_state}).")
    with waiting_for_node(instance, "Console"):
        return novnc_url(instance, timeout=conf.NODE_CALL_TIMEOUT)
