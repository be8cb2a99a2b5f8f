import logging
import time
import uuid

import redis.exceptions
from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.db import OperationalError as DatabaseUnavailable
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string
from kombu.exceptions import OperationalError as BrokerUnavailable

from cloud import generations
from cloud.errors import error_response, service_of

log = logging.getLogger("cloud.api")

API_PREFIXES = ("identity", "compute", "image", "network", "volume", "object-store")
NUL = "\x00"

# A backing service that does not answer (restarting, say): the request may
# succeed if tried again, so the client is told 503, not 500.
UNAVAILABLE = {
    redis.exceptions.ConnectionError: "the cache (Redis)",
    redis.exceptions.TimeoutError: "the cache (Redis)",
    BrokerUnavailable: "the message broker",
    DatabaseUnavailable: "the database",
}
RETRY_AFTER_SECONDS = 5


def is_api(request):
    """Whether the request is for one of the REST APIs (not a browser page)."""
    return service_of(request.path) in API_PREFIXES


class RequestIdMiddleware:
    """Gives every request an id, returned as X-Openstack-Request-Id and
    written in the log line of any error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        service = service_of(request.path)
        request.request_id = swift_trans_id() if service == "object-store" else f"req-{uuid.uuid4()}"
        with generations.request_scope():
            response = self.get_response(request)
        response["X-Openstack-Request-Id"] = request.request_id
        if service == "compute":
            response["X-Compute-Request-Id"] = request.request_id
        elif service == "object-store":
            response["X-Trans-Id"] = request.request_id
            if request.path.startswith(S3_PREFIX):
                # S3 clients log these two; Swift's s3api gives both the transaction id.
                response["x-amz-request-id"] = request.request_id
                response["x-amz-id-2"] = request.request_id
        return response


S3_PREFIX = "/object-store/s3"


def swift_trans_id():
    """A transaction id in Swift's form, `tx` + 21 hex digits + `-` + the
    unix time in 10 hex digits, which Swift's clients and Tempest match."""
    return f"tx{uuid.uuid4().hex[:21]}-{int(time.time()):010x}"


class RequestTextMiddleware:
    """Refuses a path or query parameter holding a NUL character, which no
    database column can store or compare with: a 400 naming it, for every
    service, before any view looks the text up."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api(request):
            if NUL in request.path:
                return error_response(request, 400, "Invalid input in the URL path: it must not contain NUL "
                                                    "(%00) characters.")
            for name, values in request.GET.lists():
                if NUL in name or any(NUL in value for value in values):
                    field = name.replace(NUL, "%00")
                    return error_response(request, 400, f"Invalid input for field '{field}': query parameters "
                                                        f"must not contain NUL (%00) characters.")
        return self.get_response(request)


class ApiErrorMiddleware:
    """An unexpected exception in an API view still answers in the service's
    error format (and is logged with the request id), never as an HTML page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_api(request) or settings.DEBUG:
            return None
        for kind, what in UNAVAILABLE.items():
            if isinstance(exception, kind):
                log.warning("%s %s: %s is unavailable (%s): %s", request.method, request.path, what,
                            getattr(request, "request_id", "-"), exception)
                return error_response(request, 503, f"Service temporarily unavailable: {what} is not answering. "
                                                    f"Try again shortly.",
                                      headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        log.exception("%s %s failed (%s)", request.method, request.path, getattr(request, "request_id", "-"))
        return error_response(
            request, 500, "An unexpected error prevented the server from fulfilling your request.")


class BrowserMiddleware:
    """Django's security headers, common checks, sessions, CSRF, users and
    messages, for the pages people open in a browser (the dashboard, the
    admin site). API requests carry a token, never a session cookie, and
    take a short path instead, which every call of every service pays: the
    Host header checked against ALLOWED_HOSTS and Content-Length set, as
    CommonMiddleware does, and X-Content-Type-Options as SecurityMiddleware
    sets it (its Referrer-Policy and Cross-Origin-Opener-Policy govern the
    documents a browser shows, not JSON)."""

    LAYERS = (
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    )

    def __init__(self, get_response):
        self.get_response = get_response
        handler = get_response
        for path in reversed(self.LAYERS):
            layer = import_string(path)(handler)
            if isinstance(layer, CsrfViewMiddleware):
                self.csrf = layer
            handler = convert_exception_to_response(layer)
        self.browser_response = handler

    def __call__(self, request):
        if not is_api(request):
            return self.browser_response(request)
        request.get_host()  # DisallowedHost (a 400) unless ALLOWED_HOSTS has it
        response = self.get_response(request)
        if not response.streaming and "Content-Length" not in response:
            response["Content-Length"] = str(len(response.content))
        if settings.SECURE_CONTENT_TYPE_NOSNIFF and "X-Content-Type-Options" not in response:
            response["X-Content-Type-Options"] = "nosniff"
        return response

    def process_view(self, request, view, args, kwargs):
        # Django calls only the listed middleware's process_view: pass it on.
        if is_api(request):
            return None
        return self.csrf.process_view(request, view, args, kwargs)

