"""The dashboard's way to act: the REST API itself, called in-process with
the session's token (cloud.inprocess). Every page goes through the same
views, policy and validation as the `openstack` CLI does, so the dashboard
can never allow what the API refuses."""
from cloud import inprocess
from cloud.inprocess import error_message

# The newest behaviour each service offers (fields the pages show:
# instance-action events for their owners, the flavor inside a server).
API_VERSIONS = "compute 2.60, volume 3.0"


class ApiFailure(Exception):
    """The API refused: its status and its own message, shown in place."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class ApiClient:
    """Calls API views with `token` (None: anonymous, for logging in)."""

    def __init__(self, outer_request, token=None):
        self.outer = outer_request
        self.token = token

    def call(self, method, path, body=None, params=None, headers=None, content_type="application/json",
             stream=None, length=None):
        """`stream` of `length` bytes is the body as it is read (image data),
        else `body` goes as JSON (cloud.inprocess.call)."""
        result = inprocess.call(self.outer, method, path, self.token, body, params,
                                {"OpenStack-API-Version": API_VERSIONS, **(headers or {})}, content_type, stream,
                                length)
        if result.status >= 400:
            raise ApiFailure(result.status, error_message(result.status, result.data))
        return result

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
