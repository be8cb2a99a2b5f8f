"""Bad requests get Swift's status and words, and leave nothing written:
no row, no data file, no temporary file, counts as they were."""
import hashlib
import socket
import uuid
from urllib.parse import urlsplit

import pytest

from tests.objects.conftest import stored_files, temporary_files


@pytest.fixture
def container(api, tokens, demo_account):
    path = f"{demo_account}/bad-{uuid.uuid4().hex[:8]}"
    assert api.put(path, token=tokens["demo"]).status_code == 201
    return path


def raw_request(cloud, head, body=b""):
    """Sends a request as written, then closes the sending side: the answer."""
    address = urlsplit(cloud.url)
    request = f"{head}Host: {address.netloc}\r\nConnection: close\r\n\r\n".encode() + body
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def unchanged(api, tokens, container, files_before):
    headers = api.head(container, token=tokens["demo"]).headers
    assert headers["X-Container-Object-Count"] == "0" and headers["X-Container-Bytes-Used"] == "0"
    assert api.get(container, token=tokens["demo"]).status_code == 204  # an empty listing
    assert stored_files() == files_before
    assert temporary_files() == []


def test_empty_names(api, tokens, demo_account):
    no_container = api.put(f"{demo_account}/", token=tokens["demo"])
    assert no_container.status_code == 405
    assert api.put(f"{demo_account}//object", token=tokens["demo"], data=b"x").status_code == 404


def test_names_too_long(api, tokens, demo_account, container):
    long_object = api.put(f"{container}/{'o' * 1025}", token=tokens["demo"], data=b"x")
    assert long_object.status_code == 400
    assert long_object.text == "Object name length of 1025 longer than 1024"
    # The limit counts bytes of UTF-8, not characters.
    wide = api.put(f"{container}/{'é' * 513}", token=tokens["demo"], data=b"x")
    assert wide.status_code == 400 and wide.text == "Object name length of 1026 longer than 1024"
    assert api.put(f"{container}/{'o' * 1024}", token=tokens["demo"], data=b"x").status_code == 201
    long_container = api.put(f"{demo_account}/{'c' * 257}", token=tokens["demo"])
    assert long_container.status_code == 400
    assert long_container.text == "Container name length of 257 longer than 256"


def test_container_name_with_a_slash_makes_no_container(api, tokens, demo_account):
    parent = f"slash-{uuid.uuid4().hex[:8]}"
    response = api.put(f"{demo_account}/{parent}%2Fchild", token=tokens["demo"])
    # The slash ends the container's name: this is an object PUT into a
    # container that does not exist (and has no length).
    assert response.status_code == 404
    names = api.get(f"{demo_account}?prefix={parent}", token=tokens["demo"])
    assert names.status_code == 204


def test_wrong_etag_is_422_and_leaves_nothing(api, tokens, container):
    files_before = stored_files()
    response = api.put(f"{container}/o", token=tokens["demo"], data=b"the data",
                       headers={"ETag": hashlib.md5(b"other data").hexdigest()})
    assert response.status_code == 422
    assert response.text == "<html><h1>Unprocessable Entity</h1><p>Unable to process the contained instructions</p></html>"
    assert api.head(f"{container}/o", token=tokens["demo"]).status_code == 404
    unchanged(api, tokens, container, files_before)


def test_a_body_shorter_than_its_content_length_leaves_nothing(api, tokens, container, cloud):
    files_before = stored_files()
    # The client goes away mid-body.
    answer = raw_request(cloud, f"PUT {container}/short HTTP/1.1\r\nX-Auth-Token: {tokens['demo']}\r\n"
                                f"Content-Length: 100000\r\n", b"x" * 5000)
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 499 Client Disconnect"
    assert api.head(f"{container}/short", token=tokens["demo"]).status_code == 404
    unchanged(api, tokens, container, files_before)


def test_missing_length_and_bad_headers(api, tokens, container, cloud):
    files_before = stored_files()
    no_length = raw_request(cloud, f"PUT {container}/o HTTP/1.1\r\nX-Auth-Token: {tokens['demo']}\r\n")
    assert no_length.startswith(b"HTTP/1.1 411 Length Required")
    long_meta = api.put(f"{container}/o", token=tokens["demo"], data=b"x",
                        headers={"X-Object-Meta-" + "n" * 129: "v"})
    assert long_meta.status_code == 400 and long_meta.text.startswith("Metadata name too long")
    long_value = api.put(f"{container}/o", token=tokens["demo"], data=b"x", headers={"X-Object-Meta-N": "v" * 257})
    assert long_value.status_code == 400 and long_value.text.startswith("Metadata value longer than 256")
    far = api.put(f"{container}/far", token=tokens["demo"], data=b"x", headers={"X-Delete-At": "9" * 30})
    assert far.status_code == 201
    assert api.head(f"{container}/far", token=tokens["demo"]).headers["X-Delete-At"] == "9999999999"
    api.delete(f"{container}/far", token=tokens["demo"])
    long_type = api.put(f"{container}/typed", token=tokens["demo"], data=b"x",
                        headers={"Content-Type": "text/plain; x=" + "y" * 1000})
    assert long_type.status_code == 201
    api.delete(f"{container}/typed", token=tokens["demo"])
    bad_expiry = api.put(f"{container}/o", token=tokens["demo"], data=b"x", headers={"X-Delete-After": "soon"})
    assert bad_expiry.status_code == 400 and bad_expiry.text == "Non-integer X-Delete-After"
    bad_quota = api.post(container, token=tokens["demo"], headers={"X-Container-Meta-Quota-Bytes": "lots"})
    assert bad_quota.status_code == 400 and bad_quota.text == "Invalid bytes quota."
    bad_delimiter = api.get(f"{container}?delimiter=ab", token=tokens["demo"])
    assert bad_delimiter.status_code == 412 and bad_delimiter.text == "Bad delimiter"
    bad_limit = api.get(f"{container}?limit=many", token=tokens["demo"])
    assert bad_limit.status_code == 412
    bad_copy = api.request("COPY", f"{container}/o", token=tokens["demo"], headers={"Destination": "nowhere"})
    assert bad_copy.status_code == 412
    nul = api.get(f"{container}?prefix=a%00b", token=tokens["demo"])
    assert nul.status_code == 400
    unchanged(api, tokens, container, files_before)


def test_unknown_methods_are_405(api, tokens, demo_account, container):
    assert api.request("PATCH", f"{container}/o", token=tokens["demo"]).status_code == 405
    assert api.delete(demo_account, token=tokens["demo"]).status_code == 405


def test_account_names_up_to_swifts_limit(api, tokens):
    long_account = f"/object-store/v1/AUTH_{'p' * 200}"
    assert api.post(long_account, token=tokens["admin"], headers={"X-Account-Meta-Kind": "long"}).status_code == 204
    assert api.head(long_account, token=tokens["admin"]).headers["X-Account-Meta-Kind"] == "long"
    too_long = api.head(f"/object-store/v1/AUTH_{'p' * 260}", token=tokens["admin"])
    assert too_long.status_code == 400
