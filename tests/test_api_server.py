"""The API server's request path shared by every service (cloud/server.py,
cloud/middleware.py): kept-alive connections, the Host check and the
headers of API responses and browser pages."""
import http.client
import time
from urllib.parse import urlsplit

THREADS = 2 * 4  # the `cloud` fixture's gunicorn: 2 workers of 4 threads


def connect(cloud):
    parts = urlsplit(cloud.url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)


def get(connection, path, headers=None):
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    return response, response.read()


def test_idle_kept_alive_connections_beyond_the_threads_are_all_answered_on_the_same_connections(cloud):
    # Each answered connection stays open; a thread waits on it only briefly,
    # so connections left idle (more than there are threads) hold none.
    connections = [connect(cloud) for _ in range(THREADS + 4)]
    sockets = []
    for connection in connections:
        response, _ = get(connection, "/identity/v3")
        assert response.status == 200
        assert response.getheader("Connection", "").lower() != "close"
        sockets.append(connection.sock)
    time.sleep(0.1)
    started = time.monotonic()
    for connection, sock in zip(reversed(connections), reversed(sockets)):
        response, body = get(connection, "/identity/v3")
        assert response.status == 200 and b'"v3.' in body
        assert connection.sock is sock  # answered on the kept-alive connection, not a new one
    assert time.monotonic() - started < 10
    # Back-to-back calls on one connection are answered as well.
    for _ in range(50):
        response, _ = get(connections[0], "/identity/v3")
        assert response.status == 200
    for connection in connections:
        connection.close()


def test_api_responses_carry_content_length_and_nosniff_but_not_the_browser_page_headers(cloud):
    connection = connect(cloud)
    response, body = get(connection, "/compute/v2.1/")
    assert response.status in (200, 401)
    assert int(response.getheader("Content-Length")) == len(body)
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("Referrer-Policy") is None
    assert response.getheader("X-Openstack-Request-Id", "").startswith("req-")
    connection.close()


def test_an_api_request_naming_a_host_the_cloud_does_not_answer_to_is_a_400_in_the_api_format(cloud):
    connection = connect(cloud)
    response, body = get(connection, "/identity/v3", headers={"Host": "evil.example"})
    assert response.status == 400
    assert b'"error"' in body and b"Host" in body
    connection.close()


def test_browser_pages_keep_the_security_headers_and_the_host_check(cloud):
    connection = connect(cloud)
    response, _ = get(connection, "/dashboard/login/")
    assert response.status in (200, 302)
    assert response.getheader("Referrer-Policy") == "same-origin"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    response, _ = get(connection, "/dashboard/login/", headers={"Host": "evil.example"})
    assert response.status == 400
    connection.close()
