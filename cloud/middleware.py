import logging
import uuid

from django.conf import settings

from cloud.errors import error_response, service_of

log = logging.getLogger("cloud.api")

API_PREFIXES = ("identity", "compute", "image", "network", "volume")


class RequestIdMiddleware:
    """Gives every request an id, returned as X-Openstack-Request-Id and
    written in the log line of any error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = f"req-{uuid.uuid4()}"
        response = self.get_response(request)
        response["X-Openstack-Request-Id"] = request.request_id
        if service_of(request.path) == "compute":
            response["X-Compute-Request-Id"] = request.request_id
        return response


class ApiErrorMiddleware:
    """An unexpected exception in an API view still answers in the service's
    error format (and is logged with the request id), never as an HTML page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if service_of(request.path) not in API_PREFIXES or settings.DEBUG:
            return None
        log.exception("%s %s failed (%s)", request.method, request.path, getattr(request, "request_id", "-"))
        return error_response(
            request, 500, "An unexpected error prevented the server from fulfilling your request.")
