"""Multi-factor authentication as Keystone's: a user's
multi_factor_auth_rules option, the totp method (passcodes of a `totp`
credential), and the 401 with an auth receipt when the methods given meet
no rule, which a second request completes. Through the API, keystoneauth1
(what openstacksdk and the CLI authenticate with) and the `openstack` CLI."""
import base64
import hashlib
import hmac
import os
import struct
import time

import pytest

from tests.identity.test_api import admin_token, issue, make_user, password_auth  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live

RECEIPT = "Openstack-Auth-Receipt"


def passcode(secret, at=None):
    """RFC 6238's passcode of a base32 secret (6 digits, 30 s, SHA-1)."""
    key = base64.b32decode(secret)
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 10**6:06d}"


@pytest.fixture
def mfa_user(api, admin_token, make_user):
    """A member whose rule is password and totp, with a totp secret:
    (user id, name, password, project name, secret)."""
    user_id, name, password, _, project_name = make_user()
    secret = base64.b32encode(os.urandom(20)).decode()
    made = api.post("/identity/v3/credentials", token=admin_token, json={"credential": {
        "type": "totp", "user_id": user_id, "blob": secret}})
    assert made.status_code == 201, made.text
    set_options(api, admin_token, user_id, multi_factor_auth_enabled=True,
                multi_factor_auth_rules=[["password", "totp"]])
    return user_id, name, password, project_name, secret


def set_options(api, admin_token, user_id, **options):
    response = api.patch(f"/identity/v3/users/{user_id}", token=admin_token, json={"user": {"options": options}})
    assert response.status_code == 200, response.text
    return response.json()["user"]


def totp_method(name, code):
    return {"user": {"name": name, "domain": {"name": "Default"}, "passcode": code}}


def both(name, password, code, project=None):
    body = password_auth(name, password, project)
    body["auth"]["identity"]["methods"] = ["password", "totp"]
    body["auth"]["identity"]["totp"] = totp_method(name, code)
    return body


def totp_only(name, code, project=None):
    body = password_auth(name, "unused", project)
    body["auth"]["identity"] = {"methods": ["totp"], "totp": totp_method(name, code)}
    return body


def test_one_method_of_a_rule_is_a_401_with_a_receipt_the_next_request_completes(api, mfa_user):
    user_id, name, password, project, secret = mfa_user
    partial = issue(api, password_auth(name, password, project))
    assert partial.status_code == 401 and "X-Subject-Token" not in partial.headers
    receipt = partial.headers[RECEIPT]
    body = partial.json()
    assert body["required_auth_methods"] == [["password", "totp"]]
    assert body["receipt"]["methods"] == ["password"]
    assert body["receipt"]["user"] == {"id": user_id, "name": name, "domain": {"id": "default", "name": "Default"}}
    assert body["receipt"]["expires_at"] > body["receipt"]["issued_at"]

    done = api.post("/identity/v3/auth/tokens", json=totp_only(name, passcode(secret), project),
                    headers={RECEIPT: receipt})
    assert done.status_code == 201, done.text
    token = done.json()["token"]
    assert set(token["methods"]) == {"password", "totp"} and token["project"]["name"] == project
    # The token made so is rescoped without the rules asked again.
    rescoped = issue(api, {"auth": {"identity": {"methods": ["token"], "token": {
        "id": done.headers["X-Subject-Token"]}}}})
    assert rescoped.status_code == 201 and "totp" in rescoped.json()["token"]["methods"]


def test_every_method_of_a_rule_in_one_request(api, mfa_user):
    _, name, password, project, secret = mfa_user
    token = issue(api, both(name, password, passcode(secret), project))
    assert token.status_code == 201, token.text
    assert set(token.json()["token"]["methods"]) == {"password", "totp"}
    # The previous 30-second window's passcode still passes (a clock a little behind), not older ones.
    assert issue(api, both(name, password, passcode(secret, time.time() - 30), project)).status_code == 201
    assert issue(api, both(name, password, passcode(secret, time.time() - 95), project)).status_code == 401
    # totp alone is the other half: a receipt, no token.
    alone = issue(api, totp_only(name, passcode(secret), project))
    assert alone.status_code == 401 and alone.json()["receipt"]["methods"] == ["totp"]


def test_wrong_factors_and_forged_receipts_are_refused(api, mfa_user):
    _, name, password, project, secret = mfa_user
    wrong = "000000" if passcode(secret) != "000000" else "111111"
    assert issue(api, both(name, password, wrong, project)).status_code == 401
    assert RECEIPT not in issue(api, both(name, "wrong", passcode(secret), project)).headers
    assert issue(api, both(name, password, "12ab56", project)).status_code == 401
    receipt = issue(api, password_auth(name, password, project)).headers[RECEIPT]
    for forged in (receipt[:-4] + "AAAA", "garbage", receipt.replace("g", "h", 1)):
        refused = api.post("/identity/v3/auth/tokens", json=totp_only(name, passcode(secret), project),
                           headers={RECEIPT: forged})
        assert refused.status_code == 401 and "X-Subject-Token" not in refused.headers
    # A receipt is no token.
    assert api.get("/identity/v3/auth/tokens", token=receipt, headers={"X-Subject-Token": receipt}).status_code == 401
    # Nor is a token a receipt.
    token = issue(api, both(name, password, passcode(secret))).headers["X-Subject-Token"]
    refused = api.post("/identity/v3/auth/tokens", json=totp_only(name, passcode(secret), project),
                       headers={RECEIPT: token})
    assert refused.status_code == 401


def test_a_receipt_of_another_user_does_not_complete(api, admin_token, mfa_user, make_user):
    _, name, password, project, secret = mfa_user
    other_id, other_name, other_password, _, _ = make_user()
    set_options(api, admin_token, other_id, multi_factor_auth_rules=[["password", "totp"]])
    others = issue(api, password_auth(other_name, other_password)).headers[RECEIPT]
    refused = api.post("/identity/v3/auth/tokens", json=totp_only(name, passcode(secret), project),
                       headers={RECEIPT: others})
    assert refused.status_code == 401 and RECEIPT not in refused.headers


def test_rules_off_or_naming_methods_not_offered_do_not_lock_out(api, admin_token, mfa_user):
    user_id, name, password, project, _ = mfa_user
    set_options(api, admin_token, user_id, multi_factor_auth_enabled=False)
    assert issue(api, password_auth(name, password, project)).status_code == 201
    # As Keystone: a method this cloud does not offer is left out of the rule.
    set_options(api, admin_token, user_id, multi_factor_auth_enabled=True,
                multi_factor_auth_rules=[["password", "kerberos"]])
    assert issue(api, password_auth(name, password, project)).status_code == 201
    set_options(api, admin_token, user_id, multi_factor_auth_rules=[["password", "totp"], ["application_credential"]])
    assert issue(api, password_auth(name, password, project)).json()["required_auth_methods"] == [
        ["password", "totp"], ["application_credential"]]


def test_keystoneauth_asks_for_the_missing_method_and_authenticates_with_both(cloud, mfa_user):
    from keystoneauth1 import exceptions, session
    from keystoneauth1.identity import v3

    _, name, password, project, secret = mfa_user
    url = f"{cloud.url}/identity/v3"
    common = {"username": name, "user_domain_name": "Default", "project_name": project,
              "project_domain_name": "Default"}
    with pytest.raises(exceptions.MissingAuthMethods) as missing:
        session.Session(auth=v3.Password(url, password=password, **common)).get_token()
    assert missing.value.methods == ["password"]
    assert missing.value.required_auth_methods == [["password", "totp"]]
    assert missing.value.receipt
    auth = v3.MultiFactor(url, auth_methods=["v3password", "v3totp"], password=password,
                          passcode=passcode(secret), **common)
    assert session.Session(auth=auth).get_token()


def test_the_cli_sets_the_rules_and_a_password_alone_then_fails(cloud, make_user):
    user_id, name, password, _, project = make_user()
    cloud.openstack("user", "set", "--enable-multi-factor-auth", "--multi-factor-auth-rule", "password,totp",
                    user_id)
    shown = cloud.openstack("user", "show", user_id, "-f", "json")
    assert shown["options"] == {"multi_factor_auth_enabled": True, "multi_factor_auth_rules": [["password", "totp"]]}
    env = {"OS_AUTH_URL": f"{cloud.url}/identity/v3", "OS_USERNAME": name, "OS_PASSWORD": password,
           "OS_PROJECT_NAME": project, "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
           "OS_IDENTITY_API_VERSION": "3"}
    failed = cloud.cli.run(["token", "issue"], env={**os.environ, **env}, timeout=120)
    assert failed.returncode != 0 and "[['password', 'totp']]" in failed.stderr, failed.stderr
    cloud.openstack("user", "set", "--disable-multi-factor-auth", user_id)
    issued = cloud.cli.run(["token", "issue", "-f", "json"], env={**os.environ, **env}, timeout=120)
    assert issued.returncode == 0, issued.stderr
