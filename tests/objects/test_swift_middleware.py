"""What Swift's middleware adds to its API, as clients and Tempest see it:
archive extraction and bulk delete, account quotas set by a reseller
admin, temp URLs for a prefix, the healthcheck, and the headers a COPY, a
metadata POST and a large-object manifest answer with."""
import io
import json
import tarfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from swiftclient.utils import generate_temp_url


def new_name(kind="c"):
    return f"{kind}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def container(api, tokens, demo_account):
    name = new_name()
    assert api.put(f"{demo_account}/{name}", token=tokens["demo"]).status_code == 201
    return f"{demo_account}/{name}"


def archive(files, mode="w"):
    """A tar archive in memory of {path: bytes}, with their directories."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for directory in sorted({path.rsplit("/", 1)[0] for path in files if "/" in path}):
            entry = tarfile.TarInfo(directory)
            entry.type = tarfile.DIRTYPE
            tar.addfile(entry)
        for path, content in files.items():
            entry = tarfile.TarInfo(path)
            entry.size = len(content)
            tar.addfile(entry, io.BytesIO(content))
    return buffer.getvalue()


def test_an_archive_extracts_into_containers_and_bulk_delete_removes_them(api, tokens, demo_account):
    first, second = new_name("arch"), new_name("arch")
    body = archive({f"{first}/a.txt": b"alpha", f"{first}/deep/b.json": b"{}", f"{second}/c": b"gamma",
                    "top-level-file": b"no container"})
    response = api.put(f"{demo_account}?extract-archive=tar", token=tokens["demo"], data=body,
                       headers={"Accept": "application/json"})
    assert response.status_code == 200
    result = response.json()
    assert result["Number Files Created"] == 3 and result["Errors"] == [["top-level-file", "400 Bad Request"]]
    listed = api.get(f"{demo_account}/{first}?format=json", token=tokens["demo"]).json()
    assert [(item["name"], item["bytes"], item["content_type"]) for item in listed] == [
        ("a.txt", 5, "text/plain"), ("deep/b.json", 2, "application/json")]
    assert api.get(f"{demo_account}/{second}/c", token=tokens["demo"]).content == b"gamma"

    # Into one container, compressed; its paths are the objects' names.
    gz = archive({"x/1": b"one", "2": b"two"}, mode="w:gz")
    answer = api.put(f"{demo_account}/{second}?extract-archive=tar.gz", token=tokens["demo"], data=gz)
    assert answer.status_code == 200 and "Number Files Created: 2" in answer.text
    assert api.get(f"{demo_account}/{second}/x/1", token=tokens["demo"]).content == b"one"
    assert int(api.head(f"{demo_account}/{second}", token=tokens["demo"]).headers["X-Container-Object-Count"]) == 3

    # Swift's bulk delete by DELETE as by POST (what Tempest sends): objects, then their containers.
    paths = [f"{first}/a.txt", f"{first}/deep/b.json", first]
    deleted = api.delete(f"{demo_account}?bulk-delete", token=tokens["demo"], data="\n".join(paths),
                         headers={"Accept": "application/json", "Content-Type": "text/plain"})
    assert deleted.status_code == 200
    assert (deleted.json()["Number Deleted"], deleted.json()["Errors"]) == (3, [])
    assert api.head(f"{demo_account}/{first}", token=tokens["demo"]).status_code == 404
    # Anything else on the account stays refused.
    assert api.delete(demo_account, token=tokens["demo"]).status_code == 405
    assert api.put(demo_account, token=tokens["demo"]).status_code == 405


def test_a_bad_archive_is_the_bulk_error_and_another_projects_caller_writes_nothing(api, tokens, demo_account,
                                                                                    other):
    bad = api.put(f"{demo_account}?extract-archive=tar", token=tokens["demo"], data=b"not a tar at all" * 100,
                  headers={"Accept": "application/json"})
    assert bad.status_code == 200 and bad.json()["Response Status"] == "400 Bad Request"
    assert bad.json()["Response Body"].startswith("Invalid Tar File")
    assert api.put(f"{demo_account}?extract-archive=zip", token=tokens["demo"], data=b"").status_code == 400
    name = new_name("arch")
    _, other_token, _, _ = other
    refused = api.put(f"{demo_account}?extract-archive=tar", token=other_token,
                      data=archive({f"{name}/x": b"x"}), headers={"Accept": "application/json"})
    assert refused.json()["Errors"] == [[f"{name}/x", "403 Forbidden"]]
    assert api.head(f"{demo_account}/{name}", token=tokens["demo"]).status_code == 404
    assert api.put(f"{demo_account}?extract-archive=tar", data=archive({f"{name}/x": b"x"})).status_code == 401


@pytest.fixture(scope="module")
def reseller(cloud):
    """A user holding ResellerAdmin (the role bootstrap makes) in a project of its own: its token."""
    name = f"objects-reseller-{uuid.uuid4().hex[:8]}"
    project = cloud.openstack("project", "create", name, "-f", "json")["id"]
    user = cloud.openstack("user", "create", "--password", "s3cret", "--project", name, f"{name}-user",
                           "-f", "json")["id"]
    cloud.openstack("role", "add", "--project", name, "--user", user, "ResellerAdmin")
    response = requests.post(cloud.url + "/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"id": user, "password": "s3cret"}}},
        "scope": {"project": {"id": project}}}}, timeout=30)
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def test_a_reseller_admin_sets_account_quotas_that_bind_and_a_member_cannot(api, tokens, demo_account, reseller,
                                                                            container):
    for header in ("X-Account-Quota-Count", "X-Account-Quota-Bytes", "X-Account-Meta-Quota-Bytes"):
        assert api.post(demo_account, token=tokens["demo"], headers={header: "1"}).status_code == 403
    assert api.post(demo_account, token=reseller, headers={"X-Account-Quota-Count": "lots"}).status_code == 400
    used = api.head(demo_account, token=tokens["demo"]).headers
    objects, used_bytes = int(used["X-Account-Object-Count"]), int(used["X-Account-Bytes-Used"])
    assert api.post(demo_account, token=reseller, headers={"X-Account-Quota-Count": str(objects + 1),
                                                           "X-Account-Quota-Bytes": str(used_bytes + 10)}
                    ).status_code == 204
    try:
        head = api.head(demo_account, token=tokens["demo"]).headers
        assert (head["X-Account-Quota-Count"], head["X-Account-Quota-Bytes"]) == (str(objects + 1),
                                                                                  str(used_bytes + 10))
        assert api.put(f"{container}/big", token=tokens["demo"], data=b"x" * 11).status_code == 413
        assert api.put(f"{container}/one", token=tokens["demo"], data=b"x" * 4).status_code == 201
        over = api.put(f"{container}/two", token=tokens["demo"], data=b"")
        assert over.status_code == 413 and over.text == "Upload exceeds quota."
        assert api.put(f"{container}/one", token=tokens["demo"], data=b"x" * 9).status_code == 201  # replaces
        after = api.head(demo_account, token=tokens["demo"]).headers
        assert (int(after["X-Account-Object-Count"]), int(after["X-Account-Bytes-Used"])) == (objects + 1,
                                                                                            used_bytes + 9)
    finally:
        assert api.post(demo_account, token=reseller, headers={"X-Remove-Account-Quota-Count": "x",
                                                               "X-Account-Quota-Bytes": ""}).status_code == 204
    head = api.head(demo_account, token=tokens["demo"]).headers
    assert "X-Account-Quota-Count" not in head and "X-Account-Quota-Bytes" not in head
    assert api.put(f"{container}/two", token=tokens["demo"], data=b"").status_code == 201


def test_concurrent_writers_into_a_container_with_a_quota_never_pass_it(api, tokens, container):
    assert api.post(container, token=tokens["demo"], headers={"X-Container-Meta-Quota-Count": "10"}).status_code == 204

    def write(index):
        return api.put(f"{container}/o-{index}", token=tokens["demo"], data=b"x" * 100).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(write, range(24)))
    assert sorted(statuses) == [201] * 10 + [413] * 14
    headers = api.head(container, token=tokens["demo"]).headers
    assert (headers["X-Container-Object-Count"], headers["X-Container-Bytes-Used"]) == ("10", "1000")
    assert len(api.get(f"{container}?format=json", token=tokens["demo"]).json()) == 10


def test_a_temp_url_for_a_prefix_reaches_the_objects_under_it_only(api, tokens, container):
    key = uuid.uuid4().hex
    assert api.post(container, token=tokens["demo"], headers={"X-Container-Meta-Temp-URL-Key": key}).status_code == 204
    for name, content in (("public/a.txt", b"shared"), ("private.txt", b"kept")):
        assert api.put(f"{container}/{name}", token=tokens["demo"], data=content).status_code == 201
    short = container[container.index("/v1/"):]  # swiftclient signs Swift's own path for a prefix
    query = generate_temp_url(f"{short}/public", 60, key, "GET", prefix=True).split("?", 1)[1]
    assert "temp_url_prefix=public" in query
    assert api.get(f"{container}/public/a.txt?{query}").content == b"shared"
    assert api.get(f"{container}/private.txt?{query}").status_code == 401
    assert api.get(f"{container}/public/a.txt?{query.replace('prefix=public', 'prefix=pub')}").status_code == 401
    inline = generate_temp_url(f"{short}/private.txt", 60, key, "GET").split("?", 1)[1]
    response = api.get(f"{container}/private.txt?{inline}&inline")
    assert response.content == b"kept" and response.headers["Content-Disposition"] == "inline"
    named = api.get(f"{container}/private.txt?{inline}&inline&filename=notes.txt")
    assert named.headers["Content-Disposition"] == 'inline; filename="notes.txt"'


def test_the_healthcheck_answers_ok_without_a_token(api):
    response = api.get("/object-store/healthcheck")
    assert response.status_code == 200 and response.text == "OK"
    assert response.headers["X-Trans-Id"].startswith("tx")
    assert "bulk_upload" in api.get("/object-store/info").json()


def test_a_copy_answers_with_its_metadata_and_empty_values_are_kept(api, tokens, container):
    assert api.put(f"{container}/src", token=tokens["demo"], data=b"body",
                   headers={"X-Object-Meta-Src": "s", "X-Object-Meta-Blank": ""}).status_code == 201
    got = api.get(f"{container}/src", token=tokens["demo"])
    assert got.headers["X-Object-Meta-Blank"] == "" and got.headers["X-Object-Meta-Src"] == "s"
    copy = api.request("COPY", f"{container}/src", token=tokens["demo"],
                       headers={"Destination": f"{container.rsplit('/', 1)[1]}/dst", "X-Object-Meta-Test": "",
                                "X-Delete-After": "3600"})
    assert copy.status_code == 201
    assert (copy.headers["X-Object-Meta-Test"], copy.headers["X-Object-Meta-Src"]) == ("", "s")
    assert copy.headers["X-Copied-From-Account"].startswith("AUTH_") and "X-Delete-At" in copy.headers
    assert api.post(f"{container}/dst", token=tokens["demo"], headers={"X-Object-Meta-Only": ""}).status_code == 202
    head = api.head(f"{container}/dst", token=tokens["demo"]).headers
    assert head["X-Object-Meta-Only"] == "" and "X-Object-Meta-Src" not in head


def test_a_post_with_x_object_manifest_makes_a_dynamic_large_object(api, tokens, container):
    name = container.rsplit("/", 1)[1]
    for index, piece in enumerate((b"one-", b"two")):
        api.put(f"{container}/seg/{index}", token=tokens["demo"], data=piece)
    assert api.put(f"{container}/whole", token=tokens["demo"], data=b"").status_code == 201
    assert api.post(f"{container}/whole", token=tokens["demo"],
                    headers={"X-Object-Manifest": "no-slash"}).status_code == 400
    assert api.post(f"{container}/whole", token=tokens["demo"],
                    headers={"X-Object-Manifest": f"{name}/seg/"}).status_code == 202
    got = api.get(f"{container}/whole", token=tokens["demo"])
    assert got.content == b"one-two" and got.headers["X-Object-Manifest"] == f"{name}/seg/"
    assert got.headers["ETag"].startswith('"')
    # A POST without it leaves a plain (empty) object, as in Swift.
    assert api.post(f"{container}/whole", token=tokens["demo"], headers={"X-Object-Meta-A": "b"}).status_code == 202
    assert api.get(f"{container}/whole", token=tokens["demo"]).content == b""


def test_a_static_manifest_put_answers_its_last_modified(api, tokens, container):
    name = container.rsplit("/", 1)[1]
    api.put(f"{container}/s1", token=tokens["demo"], data=b"abc")
    manifest = [{"path": f"/{name}/s1"}]
    response = api.put(f"{container}/m?multipart-manifest=put", token=tokens["demo"], data=json.dumps(manifest))
    assert response.status_code == 201 and response.headers["Last-Modified"].endswith("GMT")


def test_deleting_an_expired_object_not_yet_reaped_removes_it(api, tokens, container):
    assert api.put(f"{container}/brief", token=tokens["demo"], data=b"x",
                   headers={"X-Delete-At": str(int(time.time()) + 2)}).status_code == 201
    time.sleep(3)
    assert api.delete(f"{container}/brief", token=tokens["demo"]).status_code == 404
    assert api.get(f"{container}?format=json", token=tokens["demo"]).json() == []
    assert api.delete(container, token=tokens["demo"]).status_code == 204
