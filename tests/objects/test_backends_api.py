"""The main Swift and S3 behaviours on each object store back end: the
live server (filesystem) and a second API server on the same database whose
data goes to Ceph RADOS (the shared `ceph_conf` cluster; skipped with the
reason when Ceph cannot start). A few representative round trips, not the
whole API twice."""
import hashlib
import json
import os
import uuid

import boto3
import pytest
import requests

from objects.models import Object
from tests.images.conftest import start_api, stop
from tests.objects.conftest import CONFIG

MiB = 2**20
STRIPE = 4 * MiB  # objects.stores.rados.STRIPE: bodies below cross it


@pytest.fixture(scope="module", params=["filesystem", "rados"])
def backend(request, cloud, tmp_path_factory):
    """(name, API url, ceph.conf or None)."""
    if request.param == "filesystem":
        yield "filesystem", cloud.url, None
        return
    ceph_conf = request.getfixturevalue("ceph_conf")
    server, url = start_api(tmp_path_factory.mktemp("rados-api"), threads=4, STRATUS_OBJECT_STORE="rados",
                            STRATUS_OBJECT_RADOS_CEPH_CONF=ceph_conf)
    yield "rados", url, ceph_conf
    stop([server])


@pytest.fixture(scope="module")
def swift_account(backend, demo_account, tokens):
    session = requests.Session()
    session.headers["X-Auth-Token"] = tokens["demo"]
    return session, backend[1] + demo_account


@pytest.fixture(scope="module")
def s3(cloud, backend):
    made = cloud.openstack("ec2", "credentials", "create", "-f", "json", cloud="stratus-demo")
    return boto3.client("s3", endpoint_url=f"{backend[1]}/object-store/s3", aws_access_key_id=made["access"],
                        aws_secret_access_key=made["secret"], region_name="RegionOne", config=CONFIG)


def data_key(django_db_blocker, account, container, name):
    with django_db_blocker.unblock():
        return Object.objects.get(container__account_id=account, container__name=container, name=name).data_key


def held_by_rados(ceph_conf, key):
    """Whether the RADOS pool holds the key's data (its head and first stripe)."""
    import rados

    with rados.Rados(conffile=ceph_conf) as cluster, cluster.open_ioctx("objects") as ioctx:
        found = []
        for name in (key, f"{key}.00000000"):
            try:
                ioctx.stat(name)
                found.append(True)
            except rados.ObjectNotFound:
                found.append(False)
    assert found[0] == found[1], found
    return found[0]


def check_where_held(backend, key):
    """The data is in the back end the server was started with."""
    from objects.stores.filesystem import FilesystemStore
    from django.conf import settings

    name, _, ceph_conf = backend
    on_disk = FilesystemStore(settings.OBJECT_DIR).path(key).exists()
    if name == "rados":
        assert held_by_rados(ceph_conf, key) and not on_disk
    else:
        assert on_disk


def check_freed(backend, key):
    from objects.stores.filesystem import FilesystemStore
    from django.conf import settings

    name, _, ceph_conf = backend
    assert not FilesystemStore(settings.OBJECT_DIR).path(key).exists()
    if name == "rados":
        assert not held_by_rados(ceph_conf, key)


def test_swift_put_get_range_list_copy_delete(backend, swift_account, demo_account, django_db_blocker):
    session, account = swift_account
    container = f"be-{uuid.uuid4().hex[:8]}"
    assert session.put(f"{account}/{container}").status_code == 201
    body = os.urandom(STRIPE + 300_000)
    put = session.put(f"{account}/{container}/dir/big", data=body, headers={"X-Object-Meta-Kind": "big"})
    assert put.status_code == 201 and put.headers["ETag"] == hashlib.md5(body).hexdigest()
    assert session.put(f"{account}/{container}/small", data=b"small").status_code == 201
    key = data_key(django_db_blocker, demo_account.rsplit("AUTH_", 1)[1], container, "dir/big")
    check_where_held(backend, key)

    got = session.get(f"{account}/{container}/dir/big")
    assert got.status_code == 200 and got.content == body and got.headers["X-Object-Meta-Kind"] == "big"
    start = STRIPE - 10  # across the first stripe's end
    part = session.get(f"{account}/{container}/dir/big", headers={"Range": f"bytes={start}-{start + 19}"})
    assert part.status_code == 206 and part.content == body[start:start + 20]
    listing = session.get(f"{account}/{container}?format=json&delimiter=/").json()
    assert [item.get("subdir", item.get("name")) for item in listing] == ["dir/", "small"]
    head = session.head(f"{account}/{container}")
    assert head.headers["X-Container-Object-Count"] == "2"
    assert int(head.headers["X-Container-Bytes-Used"]) == len(body) + 5

    copied = session.put(f"{account}/{container}/copy", headers={"X-Copy-From": f"{container}/dir/big"})
    assert copied.status_code == 201
    assert session.get(f"{account}/{container}/copy").content == body
    copy_key = data_key(django_db_blocker, demo_account.rsplit("AUTH_", 1)[1], container, "copy")
    assert copy_key != key
    check_where_held(backend, copy_key)

    for name in ("dir/big", "copy", "small"):
        assert session.delete(f"{account}/{container}/{name}").status_code == 204
    assert session.get(f"{account}/{container}/dir/big").status_code == 404
    check_freed(backend, key)
    check_freed(backend, copy_key)
    assert session.delete(f"{account}/{container}").status_code == 204


def test_swift_static_large_object(backend, swift_account):
    session, account = swift_account
    container = f"be-slo-{uuid.uuid4().hex[:8]}"
    session.put(f"{account}/{container}")
    segments = [os.urandom(MiB + 17), os.urandom(2 * MiB), os.urandom(1000)]
    manifest = []
    for index, segment in enumerate(segments):
        assert session.put(f"{account}/{container}/seg/{index}", data=segment).status_code == 201
        manifest.append({"path": f"/{container}/seg/{index}", "etag": hashlib.md5(segment).hexdigest(),
                         "size_bytes": len(segment)})
    assert session.put(f"{account}/{container}/whole?multipart-manifest=put",
                       data=json.dumps(manifest)).status_code == 201
    whole = b"".join(segments)
    got = session.get(f"{account}/{container}/whole")
    assert got.status_code == 200 and got.content == whole and got.headers["X-Static-Large-Object"] == "True"
    start = MiB  # across the first segment's end
    part = session.get(f"{account}/{container}/whole", headers={"Range": f"bytes={start}-{start + 99}"})
    assert part.status_code == 206 and part.content == whole[start:start + 100]
    deleted = session.delete(f"{account}/{container}/whole?multipart-manifest=delete")
    assert deleted.status_code == 200
    assert session.get(f"{account}/{container}?format=json").json() == []


def test_s3_put_get_range_list_copy_delete(backend, s3, demo_account, swift_account, django_db_blocker):
    bucket = f"be-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(STRIPE + 12345)
    put = s3.put_object(Bucket=bucket, Key="a/one", Body=body, Metadata={"color": "blue"})
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    s3.put_object(Bucket=bucket, Key="b", Body=b"bee")
    key = data_key(django_db_blocker, demo_account.rsplit("AUTH_", 1)[1], bucket, "a/one")
    check_where_held(backend, key)
    got = s3.get_object(Bucket=bucket, Key="a/one")
    assert got["Body"].read() == body and got["Metadata"] == {"color": "blue"}
    start = STRIPE - 5
    ranged = s3.get_object(Bucket=bucket, Key="a/one", Range=f"bytes={start}-{start + 9}")
    assert ranged["Body"].read() == body[start:start + 10]
    listed = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["a/"]
    assert [o["Key"] for o in listed["Contents"]] == ["b"]
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "a/one"})
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == body
    # What S3 wrote, Swift reads from the same back end.
    session, account = swift_account
    assert session.get(f"{account}/{bucket}/a/one").content == body
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in ("a/one", "b", "copy")]})
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    check_freed(backend, key)
    s3.delete_bucket(Bucket=bucket)


def test_s3_multipart_upload(backend, s3, demo_account, django_db_blocker):
    bucket = f"be-mp-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(777)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=number, Body=part)["ETag"]
             for number, part in enumerate(parts, 1)]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": number, "ETag": etag} for number, etag in enumerate(etags, 1)]})
    joined = hashlib.md5(b"".join(bytes.fromhex(etag.strip('"')) for etag in etags)).hexdigest()
    assert done["ETag"] == f'"{joined}-3"'
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(parts)
    key = data_key(django_db_blocker, demo_account.rsplit("AUTH_", 1)[1], bucket, "mp")
    check_where_held(backend, key)
    s3.delete_object(Bucket=bucket, Key="mp")
    check_freed(backend, key)
    s3.delete_bucket(Bucket=bucket)
