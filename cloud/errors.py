"""OpenStack error bodies, written once for every service.

Each service has its own error envelope on the wire; which one a response
uses follows from the URL prefix the request came in on."""
import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict",
    413: "Request Entity Too Large", 415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable",
}

# Nova and Cinder name the fault by its kind.
NOVA_FAULT_NAMES = {
    400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
    405: "badMethod", 409: "conflictingRequest", 413: "overLimit",
    415: "badMediaType", 501: "notImplemented", 503: "serviceUnavailable",
}


class ApiError(Exception):
    """An error a client should see, in its service's envelope.
    `kind` is the Neutron error type (e.g. NetworkNotFound)."""

    status = 400

    def __init__(self, message, status=None, kind=None, headers=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.kind = kind
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class OverLimit(ApiError):
    status = 413


def service_of(path):
    """The service whose API a path belongs to: its first segment."""
    return path.lstrip("/").split("/", 1)[0]


def error_body(service, status, message, kind=None):
    title = TITLES.get(status, "Error")
    if service in ("compute", "volume"):
        return {NOVA_FAULT_NAMES.get(status, "computeFault"): {"code": status, "message": message}}
    if service == "network":
        # Neutron names an error without a type of its own by its webob class (HTTPBadRequest).
        return {"NeutronError": {"type": kind or "HTTP" + title.replace(" ", ""), "message": message, "detail": ""}}
    if service == "image":
        return {"code": f"{status} {title}", "title": title, "message": message}
    return {"error": {"code": status, "message": message, "title": title}}


def error_response(request, status, message, kind=None, headers=None):
    response = JsonResponse(error_body(service_of(request.path), status, message, kind), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    if status == 401:
        response["WWW-Authenticate"] = f'Keystone uri="{request.build_absolute_uri("/identity/v3")}"'
    return response


def describe_validation_error(detail, prefix=""):
    """The first message of a DRF validation error, naming its field."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            if field == "non_field_errors":
                return describe_validation_error(value, prefix)
            name = f"{prefix}.{field}" if prefix else str(field)
            return describe_validation_error(value, name)
    if isinstance(detail, list) and detail:
        for index, item in enumerate(detail):
            if item:
                inner = prefix if not isinstance(item, (dict, list)) else f"{prefix}[{index}]"
                return describe_validation_error(item, inner)
    text = str(detail).rstrip(".")
    return f"Invalid input for field '{prefix}': {text}." if prefix else f"{text}."


def exception_handler(exc, context):
    """DRF's exception handler for every service."""
    request = context["request"]
    if isinstance(exc, ApiError):
        return error_response(request, exc.status, exc.message, exc.kind, exc.headers)
    if isinstance(exc, drf.ValidationError):
        return error_response(request, 400, describe_validation_error(exc.detail))
    if isinstance(exc, drf.ParseError):
        return error_response(request, 400, f"Malformed request body: {exc.detail}")
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        return error_response(request, 401, str(exc.detail))
    if isinstance(exc, (drf.PermissionDenied, PermissionDenied)):
        return error_response(request, 403, "You are not authorized to perform the requested action.")
    if isinstance(exc, (Http404, drf.NotFound)):
        return error_response(request, 404, str(exc) or "The resource could not be found.")
    if isinstance(exc, drf.APIException):
        return error_response(request, exc.status_code, str(exc.detail))
    return None  # ApiErrorMiddleware turns anything else into a logged 500


def not_found_view(request, exception=None):
    return error_response(request, 404, "The resource could not be found.")


def server_error_view(request):
    return error_response(request, 500, "An unexpected error prevented the server from fulfilling your request.")
