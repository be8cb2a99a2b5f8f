"""S3 uploads whose body comes `aws-chunked`: each chunk signed in a chain
from the request's signature (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, with or
without a signed trailer), or unsigned with a checksum trailer as botocore
frames it over TLS (STREAMING-UNSIGNED-PAYLOAD-TRAILER). botocore signs the
request; the chunks are signed here as AWS documents it, since no client
in this venv signs chunks."""
import base64
import hashlib
import hmac
import io
import os
import uuid
import zlib

import pytest
import requests
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from tests.objects.conftest import stored_files
from tests.objects.conftest import error_of

SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def crc32_of(body):
    return base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()


class ChunkSigner:
    """Signs the request with botocore (its generic SigV4, which signs the
    x-amz-content-sha256 given), then its chunks in a chain from the
    request's signature."""

    def __init__(self, keys, request):
        SigV4Auth(Credentials(*keys), "s3", "RegionOne").add_auth(request)
        authorization = request.headers["Authorization"]
        self.previous = authorization.rsplit("Signature=", 1)[1]
        self.amz_date = request.headers["X-Amz-Date"]
        self.scope = authorization.split("Credential=", 1)[1].split(",")[0].split("/", 1)[1]
        key = f"AWS4{keys[1]}".encode()
        for part in self.scope.split("/"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self.key = key

    def sign(self, kind, *digests):
        to_sign = "\n".join([kind, self.amz_date, self.scope, self.previous, *digests])
        self.previous = hmac.new(self.key, to_sign.encode(), hashlib.sha256).hexdigest()
        return self.previous

    def chunk(self, data):
        signature = self.sign("AWS4-HMAC-SHA256-PAYLOAD", EMPTY_SHA256, hashlib.sha256(data).hexdigest())
        return f"{len(data):x};chunk-signature={signature}\r\n".encode() + data + b"\r\n"

    def trailer(self, lines):
        canonical = "".join(f"{name}:{value}\n" for name, value in lines)
        signature = self.sign("AWS4-HMAC-SHA256-TRAILER", hashlib.sha256(canonical.encode()).hexdigest())
        return "".join(f"{name}:{value}\r\n" for name, value in lines) + \
            f"x-amz-trailer-signature:{signature}\r\n\r\n"


def chunked_put(cloud, keys, path, pieces, form=SIGNED, tamper=None, decoded_length=None, crc32=None):
    """PUTs `pieces` as signed chunks; `tamper(index, encoded chunk)` may
    change a chunk after it is signed."""
    body = b"".join(pieces)
    headers = {"Content-Encoding": "aws-chunked", "X-Amz-Content-SHA256": form,
               "X-Amz-Decoded-Content-Length": str(len(body) if decoded_length is None else decoded_length)}
    if form == SIGNED_TRAILER:
        headers["X-Amz-Trailer"] = "x-amz-checksum-crc32"
    request = AWSRequest(method="PUT", url=f"{cloud.url}/object-store/s3/{path}", headers=headers)
    signer = ChunkSigner(keys, request)
    encoded = []
    for index, piece in enumerate([*pieces, b""]):
        chunk = signer.chunk(piece)
        encoded.append(tamper(index, chunk) if tamper else chunk)
    if form == SIGNED_TRAILER:
        encoded[-1] = encoded[-1][:-2]  # the trailer follows the last chunk's header
        encoded.append(signer.trailer([("x-amz-checksum-crc32", crc32 or crc32_of(body))]).encode())
    return requests.put(request.url, data=b"".join(encoded), headers=dict(request.headers.items()), timeout=60)


@pytest.fixture
def bucket(s3):
    name = f"chunked-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


def code_of(response):
    return response.text.split("<Code>")[1].split("<")[0] if "<Code>" in response.text else response.text


def test_signed_chunks_upload_and_read_back(cloud, keys, s3, bucket):
    pieces = [os.urandom(64 * 1024), os.urandom(64 * 1024), os.urandom(1234)]
    response = chunked_put(cloud, keys, f"{bucket}/signed", pieces)
    assert response.status_code == 200, response.text
    body = b"".join(pieces)
    assert response.headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="signed")
    assert got["Body"].read() == body and got["ContentLength"] == len(body)
    assert "ContentEncoding" not in got  # how the body came, not what the object is
    trailed = chunked_put(cloud, keys, f"{bucket}/trailed", pieces, form=SIGNED_TRAILER)
    assert trailed.status_code == 200, trailed.text
    assert s3.get_object(Bucket=bucket, Key="trailed")["Body"].read() == body


def test_botocore_framed_unsigned_trailer_upload(cloud, keys, s3, bucket):
    body = os.urandom(300_000)

    def put(key, crc32_class=Crc32Checksum):
        headers = {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(body)),
                   "X-Amz-Trailer": "x-amz-checksum-crc32"}
        request = AWSRequest(method="PUT", url=f"{cloud.url}/object-store/s3/{bucket}/{key}", headers=headers)
        # What botocore's checksum handler sets for a trailer (it does so over https only).
        request.context["checksum"] = {"request_algorithm": {"in": "trailer", "algorithm": "crc32",
                                                             "name": "x-amz-checksum-crc32"}}
        S3SigV4Auth(Credentials(*keys), "s3", "RegionOne").add_auth(request)
        assert request.headers["X-Amz-Content-SHA256"] == UNSIGNED_TRAILER
        framed = AwsChunkedWrapper(io.BytesIO(body), checksum_cls=crc32_class,
                                   checksum_name="x-amz-checksum-crc32", chunk_size=64 * 1024).read()
        return requests.put(request.url, data=framed, headers=dict(request.headers.items()), timeout=60)

    assert put("framed").status_code == 200
    assert s3.get_object(Bucket=bucket, Key="framed")["Body"].read() == body

    class WrongCrc32(Crc32Checksum):
        def digest(self):
            return b"\0\0\0\0"

    refused = put("wrong-crc", WrongCrc32)
    assert refused.status_code == 400 and code_of(refused) == "BadDigest"
    assert error_of(s3.head_object, Bucket=bucket, Key="wrong-crc")[1] == 404


def test_a_bad_chunk_signature_is_403_and_stores_nothing(cloud, keys, s3, bucket):
    pieces = [os.urandom(70_000), os.urandom(70_000)]
    files = stored_files()

    def flip_signature(index, chunk):
        if index != 1:
            return chunk
        header, rest = chunk.split(b"\r\n", 1)
        return header[:-1] + (b"0" if header[-1:] != b"0" else b"1") + b"\r\n" + rest

    def swap_data(index, chunk):  # the signature of other bytes than those sent
        return chunk[:-3] + bytes([chunk[-3] ^ 1]) + chunk[-2:] if index == 0 else chunk

    for tamper in (flip_signature, swap_data):
        response = chunked_put(cloud, keys, f"{bucket}/tampered", pieces, tamper=tamper)
        assert response.status_code == 403 and code_of(response) == "SignatureDoesNotMatch", tamper.__name__
    bad_trailer = chunked_put(cloud, keys, f"{bucket}/tampered", pieces, form=SIGNED_TRAILER,
                              tamper=lambda index, chunk: chunk, crc32="AAAAAA==")
    assert bad_trailer.status_code == 400 and code_of(bad_trailer) == "BadDigest"
    short = chunked_put(cloud, keys, f"{bucket}/tampered", pieces, decoded_length=sum(map(len, pieces)) + 1)
    assert short.status_code == 400 and code_of(short) == "IncompleteBody"
    assert error_of(s3.head_object, Bucket=bucket, Key="tampered")[1] == 404
    assert stored_files() == files  # nothing half-written

    headers = {"Content-Encoding": "aws-chunked", "X-Amz-Content-SHA256": SIGNED}
    request = AWSRequest(method="PUT", url=f"{cloud.url}/object-store/s3/{bucket}/no-length", headers=headers)
    encoded = ChunkSigner(keys, request).chunk(b"")
    missing = requests.put(request.url, data=encoded + b"\r\n", headers=dict(request.headers.items()), timeout=30)
    assert missing.status_code == 411 and code_of(missing) == "MissingContentLength"


def test_an_upload_part_may_come_chunked(cloud, keys, s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts")["UploadId"]
    pieces = [os.urandom(5 * 2**20), os.urandom(100)]
    response = chunked_put(cloud, keys, f"{bucket}/parts?partNumber=1&uploadId={upload}", pieces)
    assert response.status_code == 200, response.text
    s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": response.headers["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="parts")["Body"].read() == b"".join(pieces)
