"""The dashboard's way to act: the REST API itself, called in-process with
the session's token. Every page goes through the same views, policy and
validation as the `openstack` CLI does, so the dashboard can never allow
what the API refuses (no second copy of the rules), and costs no HTTP
round trip."""
import io
import json
from urllib.parse import urlencode

from django.core.handlers.wsgi import WSGIRequest
from django.urls import Resolver404, resolve

# The newest behaviour each service offers (fields the pages show:
# instance-action events for their owners, the flavor inside a server).
API_VERSIONS = "compute 2.60, volume 3.0"

# Request headers taken from the browser's request, so that links the API
# builds point where the browser reached the dashboard.
FORWARDED = ("SERVER_NAME", "SERVER_PORT", "HTTP_HOST", "REMOTE_ADDR", "HTTP_X_FORWARDED_PROTO",
             "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_FOR")


class ApiFailure(Exception):
    """The API refused: its status and its own message, shown in place."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def error_message(status, data):
    """The message inside any service's error envelope."""
    if isinstance(data, dict):
        if isinstance(data.get("message"), str):
            return data["message"]
        for value in data.values():
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"]
    return f"The request failed ({status})."


class Result:
    def __init__(self, status, data, headers):
        self.status = status
        self.data = data
        self.headers = headers


class ApiClient:
    """Calls API views with `token` (None: anonymous, for logging in)."""

    def __init__(self, outer_request, token=None):
        self.outer = outer_request
        self.token = token

    def call(self, method, path, body=None, params=None, headers=None, content_type="application/json",
             stream=None, length=None):
        """`stream` (a file-like object of `length` bytes) is the body read
        as the API reads it, never held whole (image data); else `body` is
        sent as JSON."""
        try:
            match = resolve(path)
        except Resolver404:
            raise ApiFailure(404, "The resource could not be found.") from None
        if stream is None:
            payload = json.dumps(body).encode() if body is not None else b""
            stream, length = io.BytesIO(payload), len(payload)
        environ = {key: self.outer.META[key] for key in FORWARDED if key in self.outer.META}
        environ.update({
            "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "",
            "QUERY_STRING": urlencode(params or {}, doseq=True),
            "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(length),
            "wsgi.input": stream, "wsgi.url_scheme": self.outer.scheme,
            "HTTP_ACCEPT": "application/json", "HTTP_OPENSTACK_API_VERSION": API_VERSIONS,
        })
        environ.setdefault("SERVER_NAME", "localhost")
        environ.setdefault("SERVER_PORT", "80")
        if self.token:
            environ["HTTP_X_AUTH_TOKEN"] = self.token
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        request = WSGIRequest(environ)
        # What RequestIdMiddleware gives every request: actions record it.
        request.request_id = getattr(self.outer, "request_id", "req-dashboard")
        response = match.func(request, *match.args, **match.kwargs)
        data = getattr(response, "data", None)
        if data is None and response.get("Content-Type", "").startswith("application/json") and response.content:
            data = json.loads(response.content)
        if response.status_code >= 400:
            raise ApiFailure(response.status_code, error_message(response.status_code, data))
        return Result(response.status_code, data, response)

    def get(self, path, **params):
        return self.call("GET", path, params=params).data

    def post(self, path, body, **options):
        return self.call("POST", path, body=body, **options).data

    def put(self, path, body, **options):
        return self.call("PUT", path, body=body, **options).data

    def patch(self, path, body, **options):
        return self.call("PATCH", path, body=body, **options).data

    def delete(self, path, **options):
        return self.call("DELETE", path, **options).data
