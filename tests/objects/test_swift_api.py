"""Swift v1 on the wire: accounts, containers, objects, as python-swiftclient
and raw HTTP see them from the live server."""
import hashlib
import os
import re
import socket
import time
import uuid
import xml.etree.ElementTree as ElementTree

import pytest

from tests.objects.conftest import stored_files

NOT_FOUND_PAGE = "<html><h1>Not Found</h1><p>The resource could not be found.</p></html>"


def new_name(kind="c"):
    return f"{kind}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def container(api, tokens, demo_account):
    name = new_name()
    assert api.put(f"{demo_account}/{name}", token=tokens["demo"]).status_code == 201
    return f"{demo_account}/{name}"


def test_account_counts_and_metadata(api, tokens, demo_account):
    before = api.head(demo_account, token=tokens["demo"])
    assert before.status_code == 204
    name = new_name()
    assert api.put(f"{demo_account}/{name}", token=tokens["demo"]).status_code == 201
    assert api.put(f"{demo_account}/{name}", token=tokens["demo"]).status_code == 202  # already there
    assert api.put(f"{demo_account}/{name}/o", token=tokens["demo"], data=b"12345").status_code == 201
    after = api.head(demo_account, token=tokens["demo"])
    for header, added in (("X-Account-Container-Count", 1), ("X-Account-Object-Count", 1),
                          ("X-Account-Bytes-Used", 5)):
        assert int(after.headers[header]) == int(before.headers[header]) + added
    assert api.post(demo_account, token=tokens["demo"], headers={"X-Account-Meta-Color": "blue"}).status_code == 204
    assert api.head(demo_account, token=tokens["demo"]).headers["X-Account-Meta-Color"] == "blue"
    listing = api.get(f"{demo_account}?format=json&prefix={name}", token=tokens["demo"]).json()
    assert [(c["name"], c["count"], c["bytes"]) for c in listing] == [(name, 1, 5)]


def test_container_metadata_set_and_removed(api, tokens, container):
    assert api.post(container, token=tokens["demo"], headers={"X-Container-Meta-Owner-Team": "storage"}).status_code == 204
    assert api.head(container, token=tokens["demo"]).headers["X-Container-Meta-Owner-Team"] == "storage"
    assert api.post(container, token=tokens["demo"],
                    headers={"X-Remove-Container-Meta-Owner-Team": "x"}).status_code == 204
    assert "X-Container-Meta-Owner-Team" not in api.head(container, token=tokens["demo"]).headers


def test_listing_with_prefix_delimiter_markers_and_formats(api, tokens, container):
    names = ["a/1", "a/2", "b", "c/x/1", "d"]
    for name in names:
        assert api.put(f"{container}/{name}", token=tokens["demo"], data=name.encode()).status_code == 201

    def listed(query, form="json"):
        response = api.get(f"{container}?format={form}&{query}", token=tokens["demo"])
        assert response.status_code in (200, 204), response.text
        return response

    assert [o["name"] for o in listed("").json()] == names
    assert [o.get("subdir", o.get("name")) for o in listed("delimiter=/").json()] == ["a/", "b", "c/", "d"]
    assert [o["name"] for o in listed("prefix=a/").json()] == ["a/1", "a/2"]
    assert [o.get("subdir") for o in listed("prefix=c/&delimiter=/").json()] == ["c/x/"]
    assert [o["name"] for o in listed("marker=a/2&end_marker=d").json()] == ["b", "c/x/1"]
    assert [o["name"] for o in listed("limit=2").json()] == ["a/1", "a/2"]
    assert [o.get("subdir", o.get("name")) for o in listed("delimiter=/&marker=a/").json()] == ["b", "c/", "d"]
    assert [o["name"] for o in listed("reverse=true&limit=2").json()] == ["d", "c/x/1"]
    entry = listed("prefix=b").json()[0]
    assert entry["hash"] == hashlib.md5(b"b").hexdigest() and entry["bytes"] == 1
    assert listed("", "plain").text.splitlines() == names
    assert listed("prefix=zzz", "plain").status_code == 204
    tree = ElementTree.fromstring(listed("delimiter=/", "xml").content)
    assert tree.tag == "container" and [e.findtext("name") for e in tree] == ["a/", "b", "c/", "d"]
    bad_limit = api.get(f"{container}?limit=10001", token=tokens["demo"])
    assert bad_limit.status_code == 412 and bad_limit.text == "Maximum limit is 10000"


def test_deleting_a_container_that_holds_objects_is_409(api, tokens, container):
    assert api.put(f"{container}/o", token=tokens["demo"], data=b"x").status_code == 201
    refused = api.delete(container, token=tokens["demo"])
    assert refused.status_code == 409
    assert refused.text == "<html><h1>Conflict</h1><p>There was a conflict when trying to complete your request.</p></html>"
    assert api.delete(f"{container}/o", token=tokens["demo"]).status_code == 204
    assert api.delete(container, token=tokens["demo"]).status_code == 204
    gone = api.head(container, token=tokens["demo"])
    assert gone.status_code == 404


def test_object_put_get_head_with_headers(api, tokens, container):
    body = os.urandom(100_000)
    put = api.put(f"{container}/dir/file.txt", token=tokens["demo"], data=body, headers={
        "X-Object-Meta-Color": "red", "Content-Disposition": 'attachment; filename="f.txt"',
        "ETag": hashlib.md5(body).hexdigest()})
    assert put.status_code == 201 and put.headers["ETag"] == hashlib.md5(body).hexdigest()
    got = api.get(f"{container}/dir/file.txt", token=tokens["demo"])
    assert got.status_code == 200 and got.content == body
    assert got.headers["Content-Type"] == "text/plain"  # guessed from the name
    assert got.headers["X-Object-Meta-Color"] == "red"
    assert got.headers["Content-Disposition"] == 'attachment; filename="f.txt"'
    head = api.head(f"{container}/dir/file.txt", token=tokens["demo"])
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(body) and not head.content
    typed = api.put(f"{container}/typed", token=tokens["demo"], data=b"{}",
                    headers={"Content-Type": "application/json"})
    assert typed.status_code == 201
    assert api.head(f"{container}/typed", token=tokens["demo"]).headers["Content-Type"] == "application/json"
    got = api.get(f"{container}/typed", token=tokens["demo"])
    assert got.content == b"{}" and got.headers["Content-Type"] == "application/json"
    assert "Content-Disposition" not in got.headers  # none was given


def test_range_and_conditional_requests(api, tokens, container):
    body = bytes(range(256)) * 40
    etag = api.put(f"{container}/r", token=tokens["demo"], data=body).headers["ETag"]
    part = api.get(f"{container}/r", token=tokens["demo"], headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == body[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(body)}"
    tail = api.get(f"{container}/r", token=tokens["demo"], headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == body[-5:]
    past = api.get(f"{container}/r", token=tokens["demo"], headers={"Range": f"bytes={len(body)}-"})
    assert past.status_code == 416
    assert api.get(f"{container}/r", token=tokens["demo"], headers={"If-None-Match": etag}).status_code == 304
    assert api.get(f"{container}/r", token=tokens["demo"], headers={"If-Match": "nope"}).status_code == 412
    assert api.get(f"{container}/r", token=tokens["demo"], headers={"If-Match": f'"{etag}"'}).status_code == 200
    modified = api.head(f"{container}/r", token=tokens["demo"]).headers["Last-Modified"]
    assert api.get(f"{container}/r", token=tokens["demo"],
                   headers={"If-Modified-Since": modified}).status_code == 304


def test_chunked_upload(api, tokens, container):
    pieces = [os.urandom(70_000) for _ in range(5)]
    response = api.put(f"{container}/chunked", token=tokens["demo"], data=iter(pieces))
    assert response.status_code == 201
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert api.get(f"{container}/chunked", token=tokens["demo"]).content == b"".join(pieces)


def test_post_replaces_metadata(api, tokens, container):
    api.put(f"{container}/m", token=tokens["demo"], data=b"m", headers={"X-Object-Meta-A": "1", "X-Object-Meta-B": "2"})
    assert api.post(f"{container}/m", token=tokens["demo"], headers={"X-Object-Meta-C": "3"}).status_code == 202
    headers = api.head(f"{container}/m", token=tokens["demo"]).headers
    assert headers["X-Object-Meta-C"] == "3" and "X-Object-Meta-A" not in headers
    assert api.post(f"{container}/missing", token=tokens["demo"]).status_code == 404


def test_copy_and_copy_from(api, tokens, container):
    api.put(f"{container}/src", token=tokens["demo"], data=b"source bytes", headers={"X-Object-Meta-K": "v"})
    target = container.rsplit("/", 1)[1]
    copied = api.request("COPY", f"{container}/src", token=tokens["demo"],
                         headers={"Destination": f"{target}/dst", "X-Object-Meta-New": "n"})
    assert copied.status_code == 201
    got = api.get(f"{container}/dst", token=tokens["demo"])
    assert got.content == b"source bytes"
    assert got.headers["X-Object-Meta-K"] == "v" and got.headers["X-Object-Meta-New"] == "n"
    assert api.put(f"{container}/dst2", token=tokens["demo"],
                   headers={"X-Copy-From": f"/{target}/src"}).status_code == 201
    assert api.get(f"{container}/dst2", token=tokens["demo"]).content == b"source bytes"
    assert api.put(f"{container}/dst3", token=tokens["demo"],
                   headers={"X-Copy-From": f"{target}/missing"}).status_code == 404


def test_delete_object(api, tokens, container):
    api.put(f"{container}/d", token=tokens["demo"], data=b"d")
    assert api.delete(f"{container}/d", token=tokens["demo"]).status_code == 204
    again = api.delete(f"{container}/d", token=tokens["demo"])
    assert again.status_code == 404 and again.text == NOT_FOUND_PAGE


def test_expiring_objects_vanish_and_the_reaper_frees_them(api, tokens, container, django_db_blocker):
    from objects import tasks

    put = api.put(f"{container}/soon", token=tokens["demo"], data=b"x" * 1000, headers={"X-Delete-After": "2"})
    assert put.status_code == 201
    at = int(api.head(f"{container}/soon", token=tokens["demo"]).headers["X-Delete-At"])
    assert at >= time.time() - 1
    files_before = len(stored_files())
    while time.time() <= at + 0.5:
        time.sleep(0.2)
    assert api.get(f"{container}/soon", token=tokens["demo"]).status_code == 404
    with django_db_blocker.unblock():
        assert tasks.reap_expired_objects() >= 1
    headers = api.head(container, token=tokens["demo"]).headers
    assert headers["X-Container-Object-Count"] == "0" and headers["X-Container-Bytes-Used"] == "0"
    assert len(stored_files()) == files_before - 1
    past = api.put(f"{container}/late", token=tokens["demo"], data=b"x", headers={"X-Delete-At": "1000"})
    assert past.status_code == 400 and past.text == "X-Delete-At in past"


def test_info_lists_capabilities(cloud):
    info = cloud.connect("stratus-demo").object_store.get_info()
    assert info.swift["max_object_name_length"] == 1024
    assert "sha256" in info.tempurl["allowed_digests"]
    assert "slo" in info and "bulk_delete" in info


TRANS_ID = re.compile(r"^tx[0-9a-f]{21}-[0-9a-f]{10}$")  # as Swift makes them, and Tempest matches


def test_every_answer_carries_a_swift_transaction_id(api, tokens, demo_account, container):
    token = tokens["demo"]
    name = container.rsplit("/", 1)[1]
    answers = {
        "account HEAD": api.head(demo_account, token=token),
        "account GET": api.get(demo_account, token=token),
        "container PUT": api.put(f"{container}-2", token=token),
        "container HEAD": api.head(container, token=token),
        "object PUT": api.put(f"{container}/o", token=token, data=b"o"),
        "container GET": api.get(container, token=token),
        "object GET": api.get(f"{container}/o", token=token),
        "object HEAD": api.head(f"{container}/o", token=token),
        "object COPY": api.request("COPY", f"{container}/o", token=token, headers={"Destination": f"{name}/o2"}),
        "conflict": api.delete(container, token=token),
        "not found": api.get(f"{container}/missing", token=token),
        "no token": api.get(f"{container}/o"),
        "bad limit": api.get(f"{container}?limit=x", token=token),
        "not allowed": api.request("PATCH", f"{container}/o", token=token),
        "NUL in the path": api.get(f"{container}/a%00b", token=token),
        "object DELETE": api.delete(f"{container}/o2", token=token),
        "info": api.get("/object-store/info"),
    }
    assert [answer.status_code for answer in answers.values()] == [
        204, 200, 201, 204, 201, 200, 200, 200, 201, 409, 404, 401, 412, 405, 400, 204, 200]
    seen = set()
    for what, answer in answers.items():
        trans_id = answer.headers.get("X-Trans-Id", "")
        assert TRANS_ID.match(trans_id), (what, trans_id)
        assert answer.headers["X-Openstack-Request-Id"] == trans_id, what
        assert abs(int(trans_id[-10:], 16) - time.time()) < 300, what
        seen.add(trans_id)
        # What Tempest's ExistsAllResponseHeaders asks of every answer (not
        # Content-Length of a 204, which HTTP forbids and gunicorn drops).
        assert {"Content-Type", "Date"} <= answer.headers.keys(), what
        assert answer.status_code == 204 or answer.headers["Content-Length"].isdigit(), what
    assert len(seen) == len(answers)
    for what in ("account HEAD", "account GET", "container HEAD", "container GET", "object GET", "object HEAD"):
        headers = answers[what].headers
        assert headers["Accept-Ranges"] == "bytes" and re.match(r"^\d+\.?\d*$", headers["X-Timestamp"]), what
    assert answers["object COPY"].headers["X-Copied-From"] == f"{name}/o"


def test_put_bodies_pipelined_on_one_connection(api, tokens, container):
    """Two PUTs sent back to back in one write on a kept-alive connection (the
    second request's head arrives with the first body's end), then a GET: each
    object holds exactly its own bytes and every answer comes back in order."""
    host, port = api.url.removeprefix("http://").rstrip("/").split(":")
    first, second = os.urandom(3 * 2**20 + 5), os.urandom(100)

    def put(name, body):
        return (f"PUT {container}/{name} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {tokens['demo']}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    get = f"GET {container}/two HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {tokens['demo']}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(put("one", first) + put("two", second) + get)
        reader = sock.makefile("rb")
        statuses = []
        for _ in range(3):
            statuses.append(reader.readline().split()[1])
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = reader.read(length)
    assert statuses == [b"201", b"201", b"200"]
    assert body == second
    assert api.get(f"{container}/one", token=tokens["demo"]).content == first
