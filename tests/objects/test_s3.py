"""The S3 API as boto3 sees it from the live server, over the same objects
Swift serves: keys are EC2 credentials made with `openstack ec2 credentials
create`."""
import hashlib
import io
import os
import re
import socket
import uuid
from datetime import datetime, timedelta, timezone

import boto3
import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.objects.conftest import client, error_of, stored_files

MiB = 2**20


@pytest.fixture
def bucket(s3):
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def swift_path(account, bucket, key=""):
    return f"{account}/{bucket}/{key}" if key else f"{account}/{bucket}"


def test_bucket_create_head_list_delete(s3, bucket):
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert error_of(s3.create_bucket, Bucket=bucket) == ("BucketAlreadyOwnedByYou", 409)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert error_of(s3.delete_bucket, Bucket=bucket) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)
    assert error_of(s3.head_bucket, Bucket=bucket)[1] == 404
    assert error_of(s3.delete_bucket, Bucket=bucket) == ("NoSuchBucket", 404)
    assert error_of(s3.list_objects_v2, Bucket=bucket) == ("NoSuchBucket", 404)
    for bad in ("Upper-Case", "ab", "a_b", "-dash-first", "x" * 64, "10.0.0.1"):
        assert error_of(s3.create_bucket, Bucket=bad) == ("InvalidBucketName", 400), bad


def test_put_get_head_delete_with_metadata_range_and_conditions(s3, bucket):
    body = os.urandom(300_000)
    put = s3.put_object(Bucket=bucket, Key="dir/file.bin", Body=body, ContentType="application/x-test",
                        Metadata={"color": "blue"}, ContentDisposition="attachment")
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/file.bin")
    assert got["Body"].read() == body and got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"color": "blue"} and got["ContentDisposition"] == "attachment"
    head = s3.head_object(Bucket=bucket, Key="dir/file.bin")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    ranged = s3.get_object(Bucket=bucket, Key="dir/file.bin", Range="bytes=100-199")
    assert ranged["Body"].read() == body[100:200] and ranged["ContentRange"] == f"bytes 100-199/{len(body)}"
    assert s3.get_object(Bucket=bucket, Key="dir/file.bin", Range="bytes=-10")["Body"].read() == body[-10:]
    assert error_of(s3.get_object, Bucket=bucket, Key="dir/file.bin", Range="bytes=999999-") == ("InvalidRange", 416)
    assert error_of(s3.get_object, Bucket=bucket, Key="dir/file.bin", IfNoneMatch=put["ETag"])[1] == 304
    assert error_of(s3.get_object, Bucket=bucket, Key="dir/file.bin", IfMatch='"0000"') == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="dir/file.bin", IfMatch=put["ETag"])["ContentLength"] == len(body)
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    assert error_of(s3.get_object, Bucket=bucket, Key="dir/file.bin", IfModifiedSince=later)[1] == 304
    assert error_of(s3.get_object, Bucket=bucket, Key="nothing") == ("NoSuchKey", 404)
    assert error_of(s3.head_object, Bucket=bucket, Key="nothing")[1] == 404
    s3.delete_object(Bucket=bucket, Key="dir/file.bin")
    s3.delete_object(Bucket=bucket, Key="dir/file.bin")  # S3 deletes what is not there, too
    assert error_of(s3.get_object, Bucket=bucket, Key="dir/file.bin") == ("NoSuchKey", 404)


def test_list_v2_with_delimiter_and_pagination_and_v1_markers(s3, bucket):
    names = ["a/1", "a/2", "b", "c/x/1", "d+e %f", "e"]
    for name in names:
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode())
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == names and listed["KeyCount"] == 6
    rolled = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["a/", "c/"]
    assert [o["Key"] for o in rolled["Contents"]] == ["b", "d+e %f", "e"]
    assert [p["Prefix"] for p in s3.list_objects_v2(Bucket=bucket, Prefix="c/", Delimiter="/")["CommonPrefixes"]] \
        == ["c/x/"]
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/", PaginationConfig={
        "PageSize": 2}))
    assert len(pages) == 3 and pages[0]["IsTruncated"] and not pages[-1]["IsTruncated"]
    seen = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])] + \
        [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert sorted(seen) == ["a/", "b", "c/", "d+e %f", "e"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, StartAfter="b")["Contents"]] == names[3:]
    v1 = s3.list_objects(Bucket=bucket, Marker="a/2", MaxKeys=2)
    assert [o["Key"] for o in v1["Contents"]] == ["b", "c/x/1"] and v1["IsTruncated"]
    assert s3.list_objects_v2(Bucket=bucket, MaxKeys=0)["KeyCount"] == 0
    assert error_of(s3.list_objects_v2, Bucket=bucket, ContinuationToken="%%%") == ("InvalidArgument", 400)


def test_multipart_upload_of_64_mib_in_8_mib_parts(demo_account, cloud, api, tokens, s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big", Metadata={"kind": "multi"})["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload]
    whole, parts = hashlib.md5(), []
    for number in range(1, 9):
        chunk = os.urandom(8 * MiB)
        whole.update(chunk)
        etag = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=number, Body=chunk)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    listed = s3.list_parts(Bucket=bucket, Key="big", UploadId=upload)
    assert [p["PartNumber"] for p in listed["Parts"]] == list(range(1, 9))
    assert all(p["Size"] == 8 * MiB for p in listed["Parts"])
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload,
                                        MultipartUpload={"Parts": parts})
    digests = b"".join(bytes.fromhex(p["ETag"].strip('"')) for p in parts)
    assert done["ETag"] == f'"{hashlib.md5(digests).hexdigest()}-8"'
    head = s3.head_object(Bucket=bucket, Key="big")
    assert head["ContentLength"] == 64 * MiB and head["Metadata"] == {"kind": "multi"}
    read = hashlib.md5()
    for chunk in s3.get_object(Bucket=bucket, Key="big")["Body"].iter_chunks(MiB):
        read.update(chunk)
    assert read.hexdigest() == whole.hexdigest()
    # Swift reads the same object.
    response = api.get(swift_path(demo_account, bucket, "big"), token=tokens["demo"], stream=True)
    swift_md5 = hashlib.md5()
    for chunk in response.iter_content(MiB):
        swift_md5.update(chunk)
    assert response.status_code == 200 and swift_md5.hexdigest() == whole.hexdigest()
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert error_of(s3.list_parts, Bucket=bucket, Key="big", UploadId=upload) == ("NoSuchUpload", 404)


def test_multipart_refusals_copy_part_abort_and_reaper(s3, bucket, django_db_blocker):
    assert error_of(s3.upload_part, Bucket=bucket, Key="k", UploadId="f" * 32, PartNumber=1, Body=b"x") \
        == ("NoSuchUpload", 404)
    assert error_of(s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId="nope",
                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]}) == ("NoSuchUpload", 404)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    assert error_of(s3.upload_part, Bucket=bucket, Key="k", UploadId=upload, PartNumber=0, Body=b"x") \
        == ("InvalidArgument", 400)
    small = [s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=n, Body=b"tiny")["ETag"]
             for n in (1, 2)]
    assert error_of(s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": small[0]}, {"PartNumber": 2, "ETag": small[1]}]}) \
        == ("EntityTooSmall", 400)
    assert error_of(s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 3, "ETag": small[0]}]}) == ("InvalidPart", 400)
    assert error_of(s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 2, "ETag": small[1]}, {"PartNumber": 1, "ETag": small[0]}]}) \
        == ("InvalidPartOrder", 400)
    assert error_of(s3.head_object, Bucket=bucket, Key="k")[1] == 404  # nothing half-written
    # A part copied from a range of an object.
    source = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    copied = s3.upload_part_copy(Bucket=bucket, Key="k", UploadId=upload, PartNumber=1,
                                 CopySource={"Bucket": bucket, "Key": "source"},
                                 CopySourceRange=f"bytes=0-{5 * MiB - 1}")["CopyPartResult"]["ETag"]
    assert copied == f'"{hashlib.md5(source[:5 * MiB]).hexdigest()}"'
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": copied}, {"PartNumber": 2, "ETag": small[1]}]})
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == source[:5 * MiB] + b"tiny"
    # Aborting frees the parts' data; so does the reaper for a stale upload.
    before = set(stored_files())
    aborted = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="gone", UploadId=aborted, PartNumber=1, Body=b"part")
    assert len(set(stored_files()) - before) == 1
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=aborted)
    assert set(stored_files()) - before == set()
    assert error_of(s3.abort_multipart_upload, Bucket=bucket, Key="gone", UploadId=aborted) == ("NoSuchUpload", 404)
    stale = s3.create_multipart_upload(Bucket=bucket, Key="stale")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="stale", UploadId=stale, PartNumber=1, Body=b"part")
    from objects import multipart

    with django_db_blocker.unblock():
        assert multipart.reap_stale(older_than_seconds=0) >= 1
    assert set(stored_files()) - before == set()
    assert error_of(s3.list_parts, Bucket=bucket, Key="stale", UploadId=stale) == ("NoSuchUpload", 404)


def test_deleting_a_bucket_frees_its_unfinished_uploads(demo_account, cloud, api, tokens, s3):
    before = set(stored_files())
    for delete in ("s3", "swift"):
        name = f"up-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(Bucket=name)
        upload = s3.create_multipart_upload(Bucket=name, Key="k")["UploadId"]
        s3.upload_part(Bucket=name, Key="k", UploadId=upload, PartNumber=1, Body=b"part")
        assert len(set(stored_files()) - before) == 1
        if delete == "s3":
            s3.delete_bucket(Bucket=name)
        else:
            assert api.delete(swift_path(demo_account, name), token=tokens["demo"]).status_code == 204
        assert set(stored_files()) - before == set(), delete


def test_presigned_get_and_put(s3, bucket):
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "signed"}, ExpiresIn=300)
    assert requests.put(put_url, data=b"through a link", timeout=30).status_code == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "signed"}, ExpiresIn=300)
    got = requests.get(get_url, timeout=30)
    assert got.status_code == 200 and got.content == b"through a link"
    tampered = requests.get(get_url.replace("signed?", "signed2?"), timeout=30)
    assert tampered.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in tampered.content
    unsigned = requests.get(get_url.split("?")[0], timeout=30)
    assert unsigned.status_code == 403 and b"<Code>AccessDenied</Code>" in unsigned.content


def test_copy_object_and_delete_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="original", Body=b"copy me", Metadata={"a": "1"}, ContentType="text/plain")
    s3.copy_object(Bucket=bucket, Key="same", CopySource={"Bucket": bucket, "Key": "original"})
    same = s3.get_object(Bucket=bucket, Key="same")
    assert same["Body"].read() == b"copy me" and same["Metadata"] == {"a": "1"} and same["ContentType"] == "text/plain"
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=f"{bucket}/original", MetadataDirective="REPLACE",
                   Metadata={"b": "2"})
    assert s3.head_object(Bucket=bucket, Key="replaced")["Metadata"] == {"b": "2"}
    assert error_of(s3.copy_object, Bucket=bucket, Key="original", CopySource=f"{bucket}/original") \
        == ("InvalidRequest", 400)
    assert error_of(s3.copy_object, Bucket=bucket, Key="x", CopySource=f"{bucket}/missing") == ("NoSuchKey", 404)
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "original"}, {"Key": "same"},
                                                                   {"Key": "never-there"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["never-there", "original", "same"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["replaced"]


def test_s3_and_swift_read_each_others_objects(demo_account, cloud, api, tokens, s3, bucket):
    s3.put_object(Bucket=bucket, Key="from-s3", Body=b"written by s3", Metadata={"origin": "s3"})
    read = api.get(swift_path(demo_account, bucket, "from-s3"), token=tokens["demo"])
    assert read.status_code == 200 and read.content == b"written by s3"
    assert read.headers["X-Object-Meta-Origin"] == "s3"
    assert api.put(swift_path(demo_account, bucket, "from-swift"), token=tokens["demo"], data=b"written by swift",
                   headers={"X-Object-Meta-Origin": "swift"}).status_code == 201
    got = s3.get_object(Bucket=bucket, Key="from-swift")
    assert got["Body"].read() == b"written by swift" and got["Metadata"] == {"origin": "swift"}
    container = f"sw-{uuid.uuid4().hex[:10]}"
    assert api.put(swift_path(demo_account, container), token=tokens["demo"]).status_code == 201
    assert container in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_canned_acl_public_read(demo_account, cloud, api, s3):
    name = f"pub-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name, ACL="public-read")
    s3.put_object(Bucket=name, Key="open", Body=b"for anyone")
    anonymous = requests.get(f"{cloud.url}/object-store/s3/{name}/open", timeout=30)
    assert anonymous.status_code == 200 and anonymous.content == b"for anyone"
    assert api.get(swift_path(demo_account, name, "open")).content == b"for anyone"  # no token either
    grants = s3.get_bucket_acl(Bucket=name)["Grants"]
    assert {g["Permission"] for g in grants} == {"FULL_CONTROL", "READ"}
    s3.put_bucket_acl(Bucket=name, ACL="private")
    assert requests.get(f"{cloud.url}/object-store/s3/{name}/open", timeout=30).status_code == 403
    assert api.get(swift_path(demo_account, name, "open")).status_code == 401


def test_another_projects_bucket_is_not_reachable(cloud, s3, bucket, other):
    s3.put_object(Bucket=bucket, Key="mine", Body=b"private")
    _, _, other_project, other_user = other
    made = cloud.openstack("ec2", "credentials", "create", "--project", other_project, "--user", other_user,
                           "-f", "json")
    theirs = client(cloud, made["access"], made["secret"])
    assert error_of(theirs.get_object, Bucket=bucket, Key="mine") == ("NoSuchBucket", 404)
    assert error_of(theirs.put_object, Bucket=bucket, Key="mine", Body=b"x") == ("NoSuchBucket", 404)
    assert error_of(theirs.delete_bucket, Bucket=bucket) == ("NoSuchBucket", 404)
    assert bucket not in [b["Name"] for b in theirs.list_buckets()["Buckets"]]
    theirs.create_bucket(Bucket=bucket)  # their own, of the same name
    assert theirs.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert s3.get_object(Bucket=bucket, Key="mine")["Body"].read() == b"private"
    # A key acts with its user's roles: without one on the project, nothing.
    cloud.openstack("role", "remove", "--project", other_project, "--user", other_user, "member")
    assert error_of(theirs.list_objects_v2, Bucket=bucket) == ("AccessDenied", 403)


def test_wrong_secret_and_unknown_key(cloud, keys, bucket):
    assert error_of(client(cloud, keys[0], "wrong").list_buckets) == ("SignatureDoesNotMatch", 403)
    assert error_of(client(cloud, keys[0], "wrong").get_object, Bucket=bucket, Key="k") \
        == ("SignatureDoesNotMatch", 403)
    assert error_of(client(cloud, "AKIANOSUCHKEY", "x").list_buckets) == ("InvalidAccessKeyId", 403)


def signed_request(cloud, keys, method, path, body, headers):
    request = AWSRequest(method=method, url=f"{cloud.url}{path}", data=body, headers=headers)
    S3SigV4Auth(Credentials(*keys), "s3", "RegionOne").add_auth(request)
    return request


def test_bad_input_changes_nothing(cloud, keys, s3, bucket):
    assert error_of(s3.put_object, Bucket=bucket, Key="k" * 1025, Body=b"x") == ("KeyTooLongError", 400)
    wrong_md5 = "1B2M2Y8AsgTpgAmY7PhCfg=="  # the MD5 of no bytes
    assert error_of(s3.put_object, Bucket=bucket, Key="digest", Body=b"not empty", ContentMD5=wrong_md5) \
        == ("BadDigest", 400)
    assert error_of(s3.put_object, Bucket=bucket, Key="digest", Body=b"x", ContentMD5="bm90IGFuIG1kNQ==") \
        == ("InvalidDigest", 400)
    assert error_of(s3.head_object, Bucket=bucket, Key="digest")[1] == 404
    # A body that differs from the one signed.
    request = signed_request(cloud, keys, "PUT", f"/object-store/s3/{bucket}/swapped", b"signed", {})
    response = requests.put(request.url, data=b"other!", headers=dict(request.headers.items()), timeout=30)
    assert response.status_code == 400 and b"XAmzContentSHA256Mismatch" in response.content
    # A Content-Length that promises more than the client sends.
    request = signed_request(cloud, keys, "PUT", f"/object-store/s3/{bucket}/short", b"",
                             {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    host, port = cloud.url.split("//")[1].split(":")
    lines = [f"PUT /object-store/s3/{bucket}/short HTTP/1.1", f"Host: {host}:{port}", "Content-Length: 1000",
             "Connection: close"] + \
        [f"{name}: {value}" for name, value in request.headers.items() if name.lower() != "content-length"]
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b"only ten b")
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert b"<Code>IncompleteBody</Code>" in answer, answer[:300]
    assert error_of(s3.head_object, Bucket=bucket, Key="short")[1] == 404
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert error_of(s3.list_objects_v2, Bucket=bucket, MaxKeys=-1) == ("InvalidArgument", 400)
    assert error_of(s3.get_bucket_versioning, Bucket=bucket) == ("NotImplemented", 501)


def test_default_client_settings_with_checksums(cloud, keys, bucket):
    """boto3 as it comes (CRC32 checksums on uploads and DeleteObjects)."""
    plain = boto3.client("s3", endpoint_url=f"{cloud.url}/object-store/s3", aws_access_key_id=keys[0],
                         aws_secret_access_key=keys[1], region_name="RegionOne")
    plain.put_object(Bucket=bucket, Key="a", Body=b"abc")
    plain.upload_fileobj(io.BytesIO(b"x" * 100), bucket, "b")
    plain.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}]})
    assert plain.get_object(Bucket=bucket, Key="b")["Body"].read() == b"x" * 100
    assert error_of(plain.put_object, Bucket=bucket, Key="c", Body=b"abc", ChecksumCRC32="AAAAAA==") \
        == ("BadDigest", 400)
    assert [o["Key"] for o in plain.list_objects_v2(Bucket=bucket)["Contents"]] == ["b"]


def test_signature_version_2(cloud, keys, bucket):
    old = boto3.client("s3", endpoint_url=f"{cloud.url}/object-store/s3", aws_access_key_id=keys[0],
                       aws_secret_access_key=keys[1], region_name="RegionOne",
                       config=Config(signature_version="s3", s3={"addressing_style": "path"},
                                     request_checksum_calculation="when_required"))
    old.put_object(Bucket=bucket, Key="v2 key", Body=b"old client", ContentType="text/plain")
    assert old.get_object(Bucket=bucket, Key="v2 key")["Body"].read() == b"old client"
    assert [o["Key"] for o in old.list_objects(Bucket=bucket)["Contents"]] == ["v2 key"]
    upload = old.create_multipart_upload(Bucket=bucket, Key="parts")["UploadId"]
    etag = old.upload_part(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=1, Body=b"p")["ETag"]
    old.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload,
                                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    url = old.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "v2 key"}, ExpiresIn=60)
    assert requests.get(url, timeout=30).content == b"old client"
    wrong = boto3.client("s3", endpoint_url=f"{cloud.url}/object-store/s3", aws_access_key_id=keys[0],
                         aws_secret_access_key="wrong", region_name="RegionOne",
                         config=Config(signature_version="s3", s3={"addressing_style": "path"}))
    assert error_of(wrong.list_objects, Bucket=bucket) == ("SignatureDoesNotMatch", 403)


def test_every_answer_carries_request_ids(cloud, keys, s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="ids", Body=b"x")["ResponseMetadata"]
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=bucket, Key="missing")
    missing = raised.value.response
    anonymous = requests.get(f"{cloud.url}/object-store/s3/", timeout=30)
    assert anonymous.status_code == 403
    ids = []
    for headers, body_id in ((put["HTTPHeaders"], None),
                             (missing["ResponseMetadata"]["HTTPHeaders"], missing["ResponseMetadata"]["RequestId"]),
                             ({k.lower(): v for k, v in anonymous.headers.items()},
                              anonymous.text.split("<RequestId>")[1].split("<")[0])):
        request_id = headers["x-amz-request-id"]
        assert re.match(r"^tx[0-9a-f]{21}-[0-9a-f]{10}$", request_id)
        assert headers["x-amz-id-2"] == headers["x-trans-id"] == headers["x-openstack-request-id"] == request_id
        if body_id is not None:  # the error body names the same request
            assert body_id == request_id
        ids.append(request_id)
    assert len(set(ids)) == 3 and put["RequestId"] == ids[0]
