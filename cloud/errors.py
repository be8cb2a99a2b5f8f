"""OpenStack error bodies, written once for every service.

Each service has its own error envelope on the wire; which one a response
uses follows from the URL prefix the request came in on."""
import logging

from django.core.exceptions import DisallowedHost, PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
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


# Swift answers errors as short HTML pages (webob's), or as plain text when
# it explains a bad request itself.
SWIFT_PAGES = {
    401: ("Unauthorized", "This server could not verify that you are authorized to access the document you "
                          "requested. Either you supplied the wrong credentials (e.g., bad password), or your "
                          "browser does not understand how to supply the credentials required."),
    403: ("Forbidden", "Access was denied to this resource."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "The method is not allowed for this resource."),
    409: ("Conflict", "There was a conflict when trying to complete your request."),
    411: ("Length Required", "Length Required"),
    412: ("Precondition Failed", "A precondition for this request was not met."),
    416: ("Requested Range Not Satisfiable", "The Range requested is not available."),
    422: ("Unprocessable Entity", "Unable to process the contained instructions"),
    499: ("Client Disconnect", "The client was disconnected during request."),
    500: ("Internal Error", "The server has either erred or is incapable of performing the requested operation."),
    503: ("Service Unavailable", "The server is currently unavailable. Please try again at a later time."),
}


def swift_error_response(status, message=None, headers=None, method="GET"):
    """Swift's error: `message` as plain text, else Swift's page for the status."""
    if message is not None:
        body, content_type = message, "text/plain; charset=UTF-8"
    else:
        title, text = SWIFT_PAGES.get(status, (TITLES.get(status, "Error"), TITLES.get(status, "Error")))
        body, content_type = f"<html><h1>{title}</h1><p>{text}</p></html>", "text/html; charset=UTF-8"
    encoded = body.encode()
    response = HttpResponse(b"" if method == "HEAD" else encoded, status=status, content_type=content_type)
    if status in SWIFT_PAGES:
        response.reason_phrase = SWIFT_PAGES[status][0]  # 499 is Swift's own
    response["Content-Length"] = str(len(encoded))
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(request, status, message, kind=None, headers=None):
    if service_of(request.path) == "object-store":
        # Swift's own words for the failures every service shares (500, 503).
        return swift_error_response(status, message if status == 400 else None, headers, request.method)
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


def bad_request_view(request, exception=None):
    # Django's own 400s: a Host header not in ALLOWED_HOSTS, say.
    if isinstance(exception, DisallowedHost):
        return error_response(request, 400, "Bad request: the request's Host is not one this cloud answers to.")
    return error_response(request, 400, "Bad request.")


def not_found_view(request, exception=None):
    return error_response(request, 404, "The resource could not be found.")


def server_error_view(request):
    return error_response(request, 500, "An unexpected error prevented the server from fulfilling your request.")
