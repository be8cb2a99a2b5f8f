"""Calling one of the project's own REST APIs in-process, with a caller's
token: the dashboard acts this way, and so do Nova's proxy APIs (to
networks, security groups, floating IPs and volumes), as Nova calls
Neutron and Cinder. The call goes through the same views, policy and
validation as a client's request, so no rule has a second copy, and it
costs no HTTP round trip."""
import io
import json
from urllib.parse import urlencode

from django.core.handlers.wsgi import WSGIRequest
from django.urls import Resolver404, resolve

# Request headers taken from the outer request, so that links the called
# API builds point where the client reached the cloud.
FORWARDED = ("SERVER_NAME", "SERVER_PORT", "HTTP_HOST", "REMOTE_ADDR", "HTTP_X_FORWARDED_PROTO",
             "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_FOR")


class Result:
    def __init__(self, status, data, headers):
        self.status = status
        self.data = data
        self.headers = headers


def error_message(status, data):
    """The message inside any service's error envelope."""
    if isinstance(data, dict):
        if isinstance(data.get("message"), str):
            return data["message"]
        for value in data.values():
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"]
    return f"The request failed ({status})."


def call(outer, method, path, token=None, body=None, params=None, headers=None, content_type="application/json",
         stream=None, length=None):
    """The Result of `method path` as the view answering it gives it (a
    404 Result when no view does). `outer` is the request being served.
    `stream` (a file-like object of `length` bytes) is the body, read as the
    view reads it and never held whole (image data); else `body` goes as JSON."""
    try:
        match = resolve(path)
    except Resolver404:
        return Result(404, {"message": "The resource could not be found."}, {})
    if stream is None:
        payload = json.dumps(body).encode() if body is not None else b""
        stream, length = io.BytesIO(payload), len(payload)
    environ = {key: outer.META[key] for key in FORWARDED if key in outer.META}
    environ.update({
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "",
        "QUERY_STRING": urlencode(params or {}, doseq=True),
        "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(length),
        "wsgi.input": stream, "wsgi.url_scheme": outer.scheme,
        "HTTP_ACCEPT": "application/json",
    })
    environ.setdefault("SERVER_NAME", "localhost")
    environ.setdefault("SERVER_PORT", "80")
    if token:
        environ["HTTP_X_AUTH_TOKEN"] = token
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    request = WSGIRequest(environ)
    # What RequestIdMiddleware gives every request: actions record it.
    request.request_id = getattr(outer, "request_id", None) or "req-inprocess"
    response = match.func(request, *match.args, **match.kwargs)
    data = getattr(response, "data", None)
    if data is None and response.get("Content-Type", "").startswith("application/json") and response.content:
        data = json.loads(response.content)
    return Result(response.status_code, data, response)
