"""POST /v3/ec2tokens: a request signed with an ec2 key (by botocore, the
signer of the AWS clients: Signature Version 4 in the header, EC2's query
Signature Version 2) is checked against the key's secret and gets a token
on the key's project, as services behind keystonemiddleware's ec2_token ask.
Only services and admins may ask, as Keystone's since CVE-2025-65073."""
import hashlib
import time
from datetime import datetime, timedelta, timezone
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import SigV2Auth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import Api
from tests.identity.test_api import admin_token, issue, make_user, password_auth, unique  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live

EC2_URL = "http://ec2.example:8788/services/Cloud"
QUERY = {"Action": "DescribeInstances", "Version": "2016-11-15", "Filter.1.Name": "tag:role",
         "Filter.1.Value.1": "web server"}


@pytest.fixture(scope="module")
def service_token(cloud):
    """A token of a user with the `service` role, as a service's (the EC2
    API's, the object store's) that forwards signed requests."""
    api, admin = Api(cloud.url), cloud.token("stratus")
    name, password = unique("service-user"), unique("pw")
    user = api.post("/identity/v3/users", token=admin, json={"user": {"name": name, "password": password}}).json()
    project = api.get("/identity/v3/projects?name=service", token=admin).json()["projects"][0]
    role = api.get("/identity/v3/roles?name=service", token=admin).json()["roles"][0]
    assert api.put(f"/identity/v3/projects/{project['id']}/users/{user['user']['id']}/roles/{role['id']}",
                   token=admin).status_code == 204
    return issue(api, password_auth(name, password, "service")).headers["X-Subject-Token"]


@pytest.fixture
def keyholder(api, make_user):
    """(user id, project id, the user's token, access key, secret) of a member's new ec2 key."""
    user_id, name, password, project_id, project_name = make_user()
    token = issue(api, password_auth(name, password, project_name)).headers["X-Subject-Token"]
    made = api.post(f"/identity/v3/users/{user_id}/credentials/OS-EC2", token=token, json={"tenant_id": project_id})
    assert made.status_code == 201, made.text
    return user_id, project_id, token, made.json()["credential"]["access"], made.json()["credential"]["secret"]


def signed_v4(access, secret, when=None, params=QUERY):
    request = AWSRequest(method="GET", url=EC2_URL, params=dict(params))
    auth = SigV4Auth(Credentials(access, secret), "ec2", "RegionOne")
    if when is None:
        auth.add_auth(request)
    else:  # botocore signs at its clock's "now": a stale request is one signed with the clock set back
        with mock.patch("botocore.auth.get_current_datetime", lambda *a, **k: when.replace(tzinfo=None)):
            auth.add_auth(request)
    headers = dict(request.headers.items())
    headers["Host"] = urlsplit(EC2_URL).netloc
    signature = headers["Authorization"].partition("Signature=")[2]
    return {"access": access, "signature": signature, "host": urlsplit(EC2_URL).netloc, "verb": "GET",
            "path": urlsplit(EC2_URL).path, "params": dict(params), "headers": headers,
            "body_hash": hashlib.sha256(b"").hexdigest()}


def presigned_v4(access, secret, params=QUERY):
    """A presigned URL's query (X-Amz-Credential, X-Amz-Signature, ...)."""
    request = AWSRequest(method="GET", url=EC2_URL, params=dict(params))
    SigV4QueryAuth(Credentials(access, secret), "ec2", "RegionOne", expires=300).add_auth(request)
    sent = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
    return {"access": access, "signature": sent["X-Amz-Signature"], "host": urlsplit(EC2_URL).netloc,
            "verb": "GET", "path": urlsplit(EC2_URL).path, "params": sent,
            "headers": {"Host": urlsplit(EC2_URL).netloc}, "body_hash": hashlib.sha256(b"").hexdigest()}


def signed_v2(access, secret, params=QUERY):
    request = AWSRequest(method="GET", url=EC2_URL, params=dict(params))
    SigV2Auth(Credentials(access, secret)).add_auth(request)
    sent = dict(request.params)
    signature = sent.pop("Signature")
    return {"access": access, "signature": signature, "host": urlsplit(EC2_URL).netloc, "verb": "GET",
            "path": urlsplit(EC2_URL).path, "params": sent, "headers": {}}


def ec2token(api, token, credentials, key="credentials"):
    return api.post("/identity/v3/ec2tokens", token=token, json={key: credentials})


@pytest.mark.parametrize("sign", [signed_v4, presigned_v4, signed_v2], ids=["v4", "v4-presigned", "v2"])
def test_a_signed_request_gets_a_token_on_the_keys_project(api, service_token, keyholder, sign):
    user_id, project_id, _, access, secret = keyholder
    response = ec2token(api, service_token, sign(access, secret))
    assert response.status_code == 200, response.text
    body = response.json()["token"]
    assert body["methods"] == ["ec2credential"]
    assert body["user"]["id"] == user_id and body["project"]["id"] == project_id
    assert [role["name"] for role in body["roles"]] == ["member"]
    assert {entry["type"] for entry in body["catalog"]} >= {"compute", "identity"}
    token = response.headers["X-Subject-Token"]
    assert api.get("/compute/v2.1/servers", token=token).status_code == 200
    # keystonemiddleware's older spelling of the body works too.
    assert ec2token(api, service_token, sign(access, secret), key="ec2Credentials").status_code == 200


@pytest.mark.parametrize("sign", [signed_v4, presigned_v4, signed_v2], ids=["v4", "v4-presigned", "v2"])
def test_a_wrong_or_tampered_signature_is_a_401(api, service_token, keyholder, sign):
    _, _, _, access, secret = keyholder
    assert ec2token(api, service_token, sign(access, "not-the-secret")).status_code == 401
    tampered = sign(access, secret)
    tampered["params"] = {**tampered["params"], "Action": "TerminateInstances"}
    refused = ec2token(api, service_token, tampered)
    assert refused.status_code == 401 and "X-Subject-Token" not in refused.headers
    other_path = sign(access, secret)
    other_path["path"] = "/services/Admin"
    assert ec2token(api, service_token, other_path).status_code == 401
    assert ec2token(api, service_token, sign("AKIDNOSUCHKEY", secret)).status_code == 401


def test_a_stale_signature_is_refused(api, service_token, keyholder):
    _, _, _, access, secret = keyholder
    stale = signed_v4(access, secret, when=datetime.now(timezone.utc) - timedelta(minutes=20))
    assert stale["headers"]["X-Amz-Date"] < datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    refused = ec2token(api, service_token, stale)
    assert refused.status_code == 401 and "expired" in refused.json()["error"]["message"]
    fresh = signed_v4(access, secret, when=datetime.now(timezone.utc) - timedelta(minutes=2))
    assert ec2token(api, service_token, fresh).status_code == 200


def test_a_key_stops_working_when_its_user_loses_the_project_or_is_disabled(api, service_token, keyholder,
                                                                             admin_token):
    user_id, project_id, _, access, secret = keyholder
    member = api.get("/identity/v3/roles?name=member", token=admin_token).json()["roles"][0]["id"]
    assert api.delete(f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{member}",
                      token=admin_token).status_code == 204
    assert ec2token(api, service_token, signed_v4(access, secret)).status_code == 401
    assert api.put(f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{member}",
                   token=admin_token).status_code == 204
    assert ec2token(api, service_token, signed_v4(access, secret)).status_code == 200
    assert api.patch(f"/identity/v3/users/{user_id}", token=admin_token,
                     json={"user": {"enabled": False}}).status_code == 200
    assert ec2token(api, service_token, signed_v4(access, secret)).status_code == 401


def test_only_services_and_admins_may_ask(api, service_token, keyholder, admin_token):
    _, _, member_token, access, secret = keyholder
    signed = signed_v4(access, secret)
    assert ec2token(api, None, signed).status_code == 401
    # Whoever holds a presigned URL holds a signature: it must not buy them a token.
    assert ec2token(api, member_token, signed).status_code == 403
    assert ec2token(api, admin_token, signed).status_code == 200
    assert ec2token(api, service_token, signed).status_code == 200


def test_a_deleted_key_signs_nothing(api, service_token, keyholder):
    user_id, _, token, access, secret = keyholder
    assert api.delete(f"/identity/v3/users/{user_id}/credentials/OS-EC2/{access}", token=token).status_code == 204
    assert ec2token(api, service_token, signed_v2(access, secret)).status_code == 401


@pytest.mark.parametrize("body, status", [
    (None, 400),
    ({}, 400),
    ({"credentials": "x"}, 400),
    ({"credentials": {"signature": "abc"}}, 401),
    ({"credentials": {"access": "abc"}}, 401),
    ({"credentials": {"access": "abc", "signature": "abc", "params": []}}, 400),
])
def test_malformed_bodies_are_4xx(api, service_token, body, status):
    response = api.post("/identity/v3/ec2tokens", token=service_token, json=body)
    assert response.status_code == status, response.text


def test_a_signature_version_other_than_2_or_4_is_refused(api, service_token, keyholder):
    _, _, _, access, secret = keyholder
    old = signed_v2(access, secret)
    old["params"]["SignatureVersion"] = "1"
    assert ec2token(api, service_token, old).status_code == 401


def test_an_ec2_key_made_with_an_application_credential_keeps_its_roles(api, service_token, keyholder, admin_token):
    user_id, project_id, token, _, _ = keyholder
    reader = api.get("/identity/v3/roles?name=reader", token=admin_token).json()["roles"][0]["id"]
    assert api.put(f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{reader}",
                   token=admin_token).status_code == 204
    token = api.post("/identity/v3/auth/tokens", json={"auth": {"identity": {"methods": ["token"], "token": {
        "id": token}}, "scope": {"project": {"id": project_id}}}}).headers["X-Subject-Token"]
    credential = api.post(f"/identity/v3/users/{user_id}/application_credentials", token=token, json={
        "application_credential": {"name": f"reader-{time.time_ns()}", "roles": [{"name": "reader"}]}}).json()
    credential = credential["application_credential"]
    app_token = api.post("/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": credential["id"], "secret": credential["secret"]}}}}).headers[
        "X-Subject-Token"]
    made = api.post(f"/identity/v3/users/{user_id}/credentials/OS-EC2", token=app_token,
                    json={"tenant_id": project_id}).json()["credential"]
    response = ec2token(api, service_token, signed_v4(made["access"], made["secret"]))
    assert response.status_code == 200, response.text
    assert [role["name"] for role in response.json()["token"]["roles"]] == ["reader"]
    assert api.delete(f"/identity/v3/users/{user_id}/application_credentials/{credential['id']}",
                      token=token).status_code == 204
    assert ec2token(api, service_token, signed_v4(made["access"], made["secret"])).status_code == 401


def test_an_ec2_key_made_with_a_trusts_token_gets_tokens_of_the_trust(api, service_token, make_user, admin_token):
    """As Keystone's: the key is bound to the trust, and its tokens are the
    trust's (its roles only, a use spent each), until the trust goes."""
    trustor_id, trustor_name, trustor_password, project_id, project_name = make_user()
    trustee_id, trustee_name, trustee_password, other_project, _ = make_user()
    reader = api.get("/identity/v3/roles?name=reader", token=admin_token).json()["roles"][0]["id"]
    assert api.put(f"/identity/v3/projects/{project_id}/users/{trustor_id}/roles/{reader}",
                   token=admin_token).status_code == 204
    trustor_token = issue(api, password_auth(trustor_name, trustor_password, project_name)).headers["X-Subject-Token"]
    trust = api.post("/identity/v3/OS-TRUST/trusts", token=trustor_token, json={"trust": {
        "trustor_user_id": trustor_id, "trustee_user_id": trustee_id, "project_id": project_id,
        "impersonation": False, "roles": [{"name": "reader"}], "remaining_uses": 3}}).json()["trust"]
    trust_token = api.post("/identity/v3/auth/tokens", json={"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"id": trustee_id, "password": trustee_password}}},
        "scope": {"OS-TRUST:trust": {"id": trust["id"]}}}}).headers["X-Subject-Token"]
    # Keys for another project than the trust's are refused.
    assert api.post(f"/identity/v3/users/{trustee_id}/credentials/OS-EC2", token=trust_token,
                    json={"tenant_id": other_project}).status_code == 403
    made = api.post(f"/identity/v3/users/{trustee_id}/credentials/OS-EC2", token=trust_token,
                    json={"tenant_id": project_id})
    assert made.status_code == 201, made.text
    assert made.json()["credential"]["trust_id"] == trust["id"]
    access, secret = made.json()["credential"]["access"], made.json()["credential"]["secret"]

    response = ec2token(api, service_token, signed_v4(access, secret))
    assert response.status_code == 200, response.text
    body = response.json()["token"]
    assert body["OS-TRUST:trust"]["id"] == trust["id"] and body["user"]["id"] == trustee_id
    assert body["project"]["id"] == project_id and [role["name"] for role in body["roles"]] == ["reader"]
    assert body["methods"] == ["ec2credential"]
    # One use went to the trust token above and one to this: one is left.
    assert ec2token(api, service_token, signed_v4(access, secret)).status_code == 200
    used_up = ec2token(api, service_token, signed_v4(access, secret))
    assert used_up.status_code == 401 and "uses" in used_up.json()["error"]["message"]
    assert api.delete(f"/identity/v3/OS-TRUST/trusts/{trust['id']}", token=trustor_token).status_code == 204
    assert ec2token(api, service_token, signed_v4(access, secret)).status_code == 401
