"""Who reaches which account: members their own, admin any, another project
403, anonymous callers only what a public-read ACL opens; temp URLs."""
import time
import uuid

import pytest
from swiftclient.utils import generate_temp_url


@pytest.fixture
def shared(api, tokens, demo_account):
    name = f"acl-{uuid.uuid4().hex[:8]}"
    path = f"{demo_account}/{name}"
    assert api.put(path, token=tokens["demo"]).status_code == 201
    assert api.put(f"{path}/doc", token=tokens["demo"], data=b"private words").status_code == 201
    return path


def test_another_projects_account_is_forbidden(api, tokens, shared, demo_account, other):
    _, other_token, _, _ = other
    for method, path in (("HEAD", demo_account), ("GET", demo_account), ("GET", shared),
                         ("GET", f"{shared}/doc"), ("PUT", f"{shared}/intruder"), ("DELETE", f"{shared}/doc"),
                         ("PUT", f"{demo_account}/new-container"), ("POST", demo_account),
                         ("GET", f"{demo_account}/no-such-container")):
        response = api.request(method, path, token=other_token, data=b"x" if method == "PUT" else None)
        assert response.status_code == 403, (method, path, response.status_code)
        if method != "HEAD":
            assert response.text == "<html><h1>Forbidden</h1><p>Access was denied to this resource.</p></html>"
    assert api.get(f"{shared}/doc", token=tokens["demo"]).content == b"private words"


def test_no_token_is_401_and_a_bad_token_too(api, shared):
    assert api.get(f"{shared}/doc").status_code == 401
    assert api.get(f"{shared}/doc", token="not-a-token").status_code == 401


def test_admin_reaches_any_account(api, tokens, shared):
    assert api.get(f"{shared}/doc", token=tokens["admin"]).content == b"private words"
    assert api.head(shared, token=tokens["admin"]).status_code == 204


def test_public_read_container_is_readable_without_a_token(api, tokens, shared):
    assert api.post(shared, token=tokens["demo"], headers={"X-Container-Read": ".r:*"}).status_code == 204
    try:
        assert api.get(f"{shared}/doc").content == b"private words"
        assert api.get(shared).status_code == 401  # listing needs .rlistings
        assert api.put(f"{shared}/anonymous", data=b"x").status_code == 401  # and writing is never public
        api.post(shared, token=tokens["demo"], headers={"X-Container-Read": ".r:*,.rlistings"})
        assert api.get(shared).text.splitlines() == ["doc"]
    finally:
        api.post(shared, token=tokens["demo"], headers={"X-Remove-Container-Read": "x"})
    assert api.get(f"{shared}/doc").status_code == 401


def test_write_acl_grants_another_project(api, tokens, shared, other):
    _, other_token, other_project, other_user = other
    api.post(shared, token=tokens["demo"], headers={"X-Container-Write": f"{other_project}:*",
                                                     "X-Container-Read": f"{other_project}:{other_user}"})
    try:
        assert api.put(f"{shared}/from-other", token=other_token, data=b"hello").status_code == 201
        assert api.get(f"{shared}/from-other", token=other_token).content == b"hello"
        assert api.delete(shared, token=other_token).status_code == 403  # the container stays the owner's
        assert "X-Container-Write" not in api.head(shared, token=other_token).headers
    finally:
        api.post(shared, token=tokens["demo"], headers={"X-Remove-Container-Write": "x",
                                                         "X-Remove-Container-Read": "x"})
    assert api.get(f"{shared}/from-other", token=other_token).status_code == 403
    bad = api.post(shared, token=tokens["demo"], headers={"X-Container-Write": ".r:*"})
    assert bad.status_code == 400 and "Referrers not allowed" in bad.text


def test_temp_url_get_works_then_expires(api, tokens, shared, cloud):
    key = uuid.uuid4().hex
    account = shared.rsplit("/", 1)[0]
    assert api.post(account, token=tokens["demo"], headers={"X-Account-Meta-Temp-URL-Key": key}).status_code == 204
    path = f"{shared}/doc"
    signed = generate_temp_url(path, 60, key, "GET")
    response = api.get(signed)
    assert response.status_code == 200 and response.content == b"private words"
    assert 'filename="doc"' in response.headers["Content-Disposition"]
    # Signed over the path from /v1/ on, as clients sign for Swift.
    short = generate_temp_url(path[path.index("/v1/"):], 60, key, "GET")
    assert api.get(f"{path}?{short.split('?', 1)[1]}").content == b"private words"
    assert api.put(signed, data=b"overwrite").status_code == 401  # a GET signature does not write
    assert api.get(signed.replace("temp_url_sig=", "temp_url_sig=0")).status_code == 401
    assert api.get(generate_temp_url(path, 60, "wrong-key", "GET")).status_code == 401
    soon = generate_temp_url(path, 1, key, "GET")
    expires = int(soon.rsplit("temp_url_expires=", 1)[1])
    while time.time() <= expires + 0.5:
        time.sleep(0.2)
    expired = api.get(soon)
    assert expired.status_code == 401 and expired.text == "Temp URL invalid"
