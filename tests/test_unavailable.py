"""A backing service that does not answer while a request runs (Redis,
the broker, the database) is a 503 in the service's own error format with
Retry-After, not a 500: the client may try again."""
import json

import pytest
import redis.exceptions
from django.db import OperationalError
from django.test import RequestFactory
from kombu.exceptions import OperationalError as BrokerError

from cloud.middleware import ApiErrorMiddleware


@pytest.mark.parametrize("path, error, envelope, what", [
    ("/compute/v2.1/servers", redis.exceptions.ConnectionError("refused"), "serviceUnavailable", "the cache"),
    ("/image/v2/images", BrokerError("refused"), None, "the message broker"),
    ("/identity/v3/auth/tokens", OperationalError("could not connect"), "error", "the database"),
])
def test_an_unavailable_backend_is_a_503_in_the_services_format(path, error, envelope, what):
    request = RequestFactory().get(path)
    request.request_id = "req-test"
    response = ApiErrorMiddleware(lambda request: None).process_exception(request, error)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = json.loads(response.content)
    text = json.dumps(body)
    assert what in text and "Try again" in text
    if envelope:
        assert envelope in body


def test_other_errors_stay_500s():
    request = RequestFactory().get("/compute/v2.1/servers")
    request.request_id = "req-test"
    response = ApiErrorMiddleware(lambda request: None).process_exception(request, KeyError("x"))
    assert response.status_code == 500
