"""POST /v3/s3tokens, what Swift's s3api/s3token middleware calls: the
access key, the S3 request's string to sign (base64) and its signature,
made by botocore's S3 signers (Signature Version 4 and S3's Version 2); a
right signature gets the key's user a token body on the key's project,
with the same rules as /v3/ec2tokens. Only services and admins may ask."""
import base64
from urllib.parse import urlsplit

import pytest
from botocore.auth import HmacV1Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.identity.test_api import admin_token, issue, make_user, password_auth  # noqa: F401  (fixtures)
from tests.identity.test_ec2tokens import keyholder, service_token  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live

S3_URL = "http://s3.example:8080/bucket/some%20object?acl"


class StringToSignKept(S3SigV4Auth):
    """botocore's S3 signer, keeping the string it signed (what the S3 API
    rebuilds from the request and sends)."""

    def string_to_sign(self, request, canonical_request):
        self.signed = super().string_to_sign(request, canonical_request)
        return self.signed


def signed_v4(access, secret, service="s3"):
    """(string to sign, signature) of a GET signed with Signature Version 4."""
    request = AWSRequest(method="GET", url=S3_URL, headers={"Host": urlsplit(S3_URL).netloc})
    auth = StringToSignKept(Credentials(access, secret), service, "RegionOne")
    auth.add_auth(request)
    return auth.signed, request.headers["Authorization"].partition("Signature=")[2]


def signed_v2(access, secret):
    """(string to sign, signature) of a GET signed with S3's Version 2."""
    request = AWSRequest(method="GET", url=S3_URL)
    auth = HmacV1Auth(Credentials(access, secret))
    auth.add_auth(request)
    string_to_sign = auth.canonical_string(request.method, urlsplit(request.url), request.headers)
    return string_to_sign, request.headers["Authorization"].rpartition(":")[2]


def s3token(api, token, access, string_to_sign, signature):
    return api.post("/identity/v3/s3tokens", token=token, json={"credentials": {
        "access": access, "token": base64.urlsafe_b64encode(string_to_sign.encode()).decode(),
        "signature": signature}})


@pytest.mark.parametrize("sign", [signed_v4, signed_v2])
def test_a_signed_s3_request_gets_the_keys_token_body(api, keyholder, service_token, sign):
    user_id, project_id, _, access, secret = keyholder
    response = s3token(api, service_token, access, *sign(access, secret))
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert token["user"]["id"] == user_id and token["project"]["id"] == project_id
    assert token["methods"] == ["ec2credential"]
    assert [role["name"] for role in token["roles"]] == ["member"]
    assert "X-Subject-Token" not in response.headers  # a token body only, as Keystone's


@pytest.mark.parametrize("sign", [signed_v4, signed_v2])
def test_a_wrong_or_tampered_signature_or_unknown_key_is_a_401(api, keyholder, service_token, sign):
    _, _, _, access, secret = keyholder
    string_to_sign, signature = sign(access, secret)
    assert s3token(api, service_token, access, *sign(access, "not-the-secret")).status_code == 401
    tampered = string_to_sign[:-1] + ("0" if string_to_sign[-1] != "0" else "1")
    assert s3token(api, service_token, access, tampered, signature).status_code == 401
    assert s3token(api, service_token, "no-such-key", string_to_sign, signature).status_code == 401
    assert s3token(api, service_token, access, string_to_sign, signature).status_code == 200


def test_a_v4_scope_for_another_service_is_refused(api, keyholder, service_token):
    _, _, _, access, secret = keyholder
    refused = s3token(api, service_token, access, *signed_v4(access, secret, service="ec2"))
    assert refused.status_code == 401


def test_only_services_and_admins_may_ask(api, keyholder, service_token, admin_token):
    _, _, member_token, access, secret = keyholder
    signed = signed_v4(access, secret)
    assert s3token(api, None, access, *signed).status_code == 401
    # Whoever holds a presigned URL holds a signature: it must not buy them a token.
    assert s3token(api, member_token, access, *signed).status_code == 403
    assert s3token(api, admin_token, access, *signed).status_code == 200


def test_a_key_of_a_disabled_user_gets_nothing(api, keyholder, service_token, admin_token):
    user_id, _, _, access, secret = keyholder
    assert api.patch(f"/identity/v3/users/{user_id}", token=admin_token,
                     json={"user": {"enabled": False}}).status_code == 200
    assert s3token(api, service_token, access, *signed_v4(access, secret)).status_code == 401


@pytest.mark.parametrize("body, field", [
    ({}, "credentials"),
    ({"credentials": "x"}, "credentials"),
    ({"credentials": {"token": "eA==", "signature": "s"}}, "credentials.access"),
    ({"credentials": {"access": "a", "signature": "s"}}, "credentials.token"),
    ({"credentials": {"access": "a", "token": "eA=="}}, "credentials.signature"),
    ({"credentials": {"access": "a", "token": 3, "signature": "s"}}, "credentials.token"),
    ({"credentials": {"access": "a", "token": "not base64!", "signature": "s"}}, "credentials.token"),
])
def test_malformed_bodies_are_a_400_naming_the_field(api, service_token, body, field):
    response = api.post("/identity/v3/s3tokens", token=service_token, json=body)
    assert response.status_code == 400, response.text
    assert f"'{field}'" in response.json()["error"]["message"]
