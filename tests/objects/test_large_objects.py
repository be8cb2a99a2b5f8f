"""Static and dynamic large objects, bulk delete and quotas, with
python-swiftclient's `swift` CLI where it has a command for them."""
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

SWIFT = str(Path(sys.executable).parent / "swift")


def swift(cloud, token, account, *args):
    command = [SWIFT, "--os-storage-url", cloud.url + account, "--os-auth-token", token, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command} failed:\n{result.stderr}"
    return result.stdout


def test_swift_cli_uploads_a_static_large_object_that_downloads_identical(cloud, api, tokens, demo_account,
                                                                          tmp_path):
    container = f"slo-{uuid.uuid4().hex[:8]}"
    payload = os.urandom(20 * 2**20 + 12345)
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    swift(cloud, tokens["demo"], demo_account, "upload", "--use-slo", "--segment-size", str(4 * 2**20),
          "--object-name", "big.bin", container, str(source))
    head = api.head(f"{demo_account}/{container}/big.bin", token=tokens["demo"])
    assert head.headers["X-Static-Large-Object"] == "True"
    assert int(head.headers["Content-Length"]) == len(payload)
    segments = api.get(f"{demo_account}/{container}_segments?format=json", token=tokens["demo"]).json()
    assert len(segments) == 6
    assert head.headers["ETag"] == '"%s"' % hashlib.md5("".join(s["hash"] for s in segments).encode()).hexdigest()
    target = tmp_path / "downloaded.bin"
    swift(cloud, tokens["demo"], demo_account, "download", container, "big.bin", "-o", str(target))
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(payload).digest()
    # A range across a segment boundary.
    start = 4 * 2**20 - 10
    part = api.get(f"{demo_account}/{container}/big.bin", token=tokens["demo"],
                   headers={"Range": f"bytes={start}-{start + 19}"})
    assert part.status_code == 206 and part.content == payload[start:start + 20]
    manifest = api.get(f"{demo_account}/{container}/big.bin?multipart-manifest=get", token=tokens["demo"]).json()
    assert [item["bytes"] for item in manifest] == [s["bytes"] for s in segments]
    # Deleting it with the CLI takes its segments too.
    swift(cloud, tokens["demo"], demo_account, "delete", container, "big.bin")
    assert api.get(f"{demo_account}/{container}_segments", token=tokens["demo"]).status_code == 204
    assert api.head(f"{demo_account}/{container}/big.bin", token=tokens["demo"]).status_code == 404


def test_a_manifest_naming_a_wrong_or_missing_segment_is_refused(api, tokens, demo_account):
    container = f"{demo_account}/slo-bad-{uuid.uuid4().hex[:8]}"
    api.put(container, token=tokens["demo"])
    api.put(f"{container}/seg1", token=tokens["demo"], data=b"one")
    name = container.rsplit("/", 1)[1]
    manifest = [{"path": f"/{name}/seg1", "etag": hashlib.md5(b"not one").hexdigest(), "size_bytes": 3},
                {"path": f"/{name}/nothing", "etag": None, "size_bytes": None}]
    response = api.put(f"{container}/big?multipart-manifest=put", token=tokens["demo"], data=json.dumps(manifest))
    assert response.status_code == 400
    assert f"/{name}/seg1, Etag Mismatch" in response.text and f"/{name}/nothing, 404 Not Found" in response.text
    assert api.put(f"{container}/big?multipart-manifest=put", token=tokens["demo"],
                   data=b"not json").status_code == 400
    assert api.head(f"{container}/big", token=tokens["demo"]).status_code == 404


def test_dynamic_large_object_joins_its_segments_by_prefix(api, tokens, demo_account):
    container = f"{demo_account}/dlo-{uuid.uuid4().hex[:8]}"
    name = container.rsplit("/", 1)[1]
    api.put(container, token=tokens["demo"])
    for index, piece in enumerate((b"alpha-", b"beta-", b"gamma")):
        api.put(f"{container}/parts/{index:03d}", token=tokens["demo"], data=piece)
    assert api.put(f"{container}/whole", token=tokens["demo"], data=b"",
                   headers={"X-Object-Manifest": f"{name}/parts/"}).status_code == 201
    got = api.get(f"{container}/whole", token=tokens["demo"])
    assert got.content == b"alpha-beta-gamma" and got.headers["X-Object-Manifest"] == f"{name}/parts/"
    api.put(f"{container}/parts/003", token=tokens["demo"], data=b"!")
    assert api.get(f"{container}/whole", token=tokens["demo"]).content == b"alpha-beta-gamma!"


def test_bulk_delete(api, tokens, demo_account):
    container = f"{demo_account}/bulk-{uuid.uuid4().hex[:8]}"
    name = container.rsplit("/", 1)[1]
    api.put(container, token=tokens["demo"])
    for index in range(3):
        api.put(f"{container}/o{index}", token=tokens["demo"], data=b"x")
    body = "\n".join([f"/{name}/o0", f"/{name}/o1", f"/{name}/o2", f"/{name}/missing", f"/{name}"])
    response = api.post(f"{demo_account}?bulk-delete", token=tokens["demo"], data=body,
                        headers={"Accept": "application/json", "Content-Type": "text/plain"})
    assert response.status_code == 200
    result = response.json()
    assert (result["Number Deleted"], result["Number Not Found"], result["Errors"]) == (4, 1, [])
    assert api.head(container, token=tokens["demo"]).status_code == 404


def test_container_quota_refuses_what_does_not_fit(api, tokens, demo_account):
    container = f"{demo_account}/quota-{uuid.uuid4().hex[:8]}"
    api.put(container, token=tokens["demo"], headers={"X-Container-Meta-Quota-Bytes": "10",
                                                      "X-Container-Meta-Quota-Count": "2"})
    assert api.put(f"{container}/a", token=tokens["demo"], data=b"12345678").status_code == 201
    over = api.put(f"{container}/b", token=tokens["demo"], data=b"12345")
    assert over.status_code == 413 and over.text == "Upload exceeds quota."
    assert api.put(f"{container}/b", token=tokens["demo"], data=b"12").status_code == 201
    assert api.put(f"{container}/c", token=tokens["demo"], data=b"").status_code == 413  # the count
    headers = api.head(container, token=tokens["demo"]).headers
    assert (headers["X-Container-Object-Count"], headers["X-Container-Bytes-Used"]) == ("2", "10")


def test_only_an_admin_sets_an_account_quota(api, tokens, demo_account):
    assert api.post(demo_account, token=tokens["demo"],
                    headers={"X-Account-Meta-Quota-Bytes": "1"}).status_code == 403
    assert api.post(demo_account, token=tokens["admin"],
                    headers={"X-Account-Meta-Quota-Bytes": str(2**50)}).status_code == 204
    try:
        assert api.head(demo_account, token=tokens["demo"]).headers["X-Account-Meta-Quota-Bytes"] == str(2**50)
    finally:
        api.post(demo_account, token=tokens["admin"], headers={"X-Remove-Account-Meta-Quota-Bytes": "x"})
