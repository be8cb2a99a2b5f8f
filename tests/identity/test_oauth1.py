"""OS-OAUTH1: consumers, and the OAuth 1.0a delegation flow signed for
real with oauthlib's client (HMAC-SHA1) over HTTP against the live server:
request token, authorize, access token, then tokens acting as the user
with the delegated roles, revoked with the access token or the consumer."""
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.utils import timezone
from oauthlib import oauth1

from identity.models import OAuthRequestToken

from tests.identity.test_api import admin_token, issue, make_user, password_auth, unique  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live

OAUTH = "/identity/v3/OS-OAUTH1"
OAUTH_BODY = {"auth": {"identity": {"methods": ["oauth1"], "oauth1": {}}}}


def user_token(api, made, project=True):
    _, name, password, _, project_name = made
    response = issue(api, password_auth(name, password, project_name if project else None))
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def signed(api, cloud, method, path, client, json=None, headers=None):
    """`method` `path` signed by the oauthlib client in the Authorization header."""
    url = cloud.url + path
    _, signed_headers, _ = client.sign(url, http_method=method)
    return api.request(method, path, json=json, headers={**(headers or {}), **signed_headers})


def form(response):
    return {key: values[0] for key, values in parse_qs(response.text).items()}


@pytest.fixture
def consumer(api, admin_token):
    response = api.post(f"{OAUTH}/consumers", token=admin_token, json={"consumer": {"description": "photo printer"}})
    assert response.status_code == 201, response.text
    return response.json()["consumer"]


@pytest.fixture
def delegator(api, make_user, admin_token):
    """A user holding `member` and a second role on their project; (made, token, that role)."""
    made = make_user()
    role = api.post("/identity/v3/roles", token=admin_token, json={"role": {"name": unique("delegable")}}).json()["role"]
    assert api.put(f"/identity/v3/projects/{made[3]}/users/{made[0]}/roles/{role['id']}",
                   token=admin_token).status_code == 204
    return made, user_token(api, made), role


def request_token(api, cloud, consumer, project_id, secret=None):
    client = oauth1.Client(consumer["id"], client_secret=secret or consumer["secret"], callback_uri="oob")
    return signed(api, cloud, "POST", f"{OAUTH}/request_token", client,
                  headers={"Requested-Project-Id": project_id})


def authorize(api, token, request_key, roles):
    return api.put(f"{OAUTH}/authorize/{request_key}", token=token, json={"roles": roles})


def access_token(api, cloud, consumer, request, verifier):
    client = oauth1.Client(consumer["id"], client_secret=consumer["secret"], resource_owner_key=request["oauth_token"],
                           resource_owner_secret=request["oauth_token_secret"], verifier=verifier)
    return signed(api, cloud, "POST", f"{OAUTH}/access_token", client)


def oauth_token(api, cloud, consumer, access, consumer_secret=None):
    client = oauth1.Client(consumer["id"], client_secret=consumer_secret or consumer["secret"],
                           resource_owner_key=access["oauth_token"], resource_owner_secret=access["oauth_token_secret"])
    return signed(api, cloud, "POST", "/identity/v3/auth/tokens", client, json=OAUTH_BODY)


def delegate(api, cloud, consumer, delegator, roles):
    """The whole flow up to the access token: (request token, access token) forms."""
    made, token, _ = delegator
    response = request_token(api, cloud, consumer, made[3])
    assert response.status_code == 201, response.text
    assert response.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    request = form(response)
    response = authorize(api, token, request["oauth_token"], roles)
    assert response.status_code == 200, response.text
    verifier = response.json()["token"]["oauth_verifier"]
    response = access_token(api, cloud, consumer, request, verifier)
    assert response.status_code == 201, response.text
    return request, form(response), verifier


def validate(api, token, by):
    return api.get("/identity/v3/auth/tokens", token=by, headers={"X-Subject-Token": token})


def test_consumer_crud_is_admin_only_and_hides_the_secret(api, admin_token, consumer, make_user):
    assert consumer["secret"] and consumer["description"] == "photo printer"
    path = f"{OAUTH}/consumers/{consumer['id']}"
    shown = api.get(path, token=admin_token).json()["consumer"]
    assert "secret" not in shown and shown["links"]["self"].endswith(path)
    listed = api.get(f"{OAUTH}/consumers", token=admin_token).json()["consumers"]
    assert consumer["id"] in [row["id"] for row in listed] and all("secret" not in row for row in listed)

    updated = api.patch(path, token=admin_token, json={"consumer": {"description": "new"}})
    assert updated.status_code == 200 and updated.json()["consumer"]["description"] == "new"
    refused = api.patch(path, token=admin_token, json={"consumer": {"secret": "mine"}})
    assert refused.status_code == 400 and "secret" in refused.json()["error"]["message"]

    member = user_token(api, make_user())
    assert api.get(f"{OAUTH}/consumers", token=member).status_code == 403
    assert api.post(f"{OAUTH}/consumers", token=member, json={"consumer": {}}).status_code == 403

    assert api.delete(path, token=admin_token).status_code == 204
    assert api.get(path, token=admin_token).status_code == 404


def test_delegated_token_acts_as_the_user_with_the_delegated_roles_only(api, cloud, consumer, delegator):
    made, token, role = delegator
    _, access, _ = delegate(api, cloud, consumer, delegator, [{"name": role["name"]}])
    response = oauth_token(api, cloud, consumer, access)
    assert response.status_code == 201, response.text
    body = response.json()["token"]
    assert body["methods"] == ["oauth1"]
    assert body["user"]["id"] == made[0] and body["project"]["id"] == made[3]
    assert [r["name"] for r in body["roles"]] == [role["name"]]  # `member` was not delegated
    assert body["OS-OAUTH1"] == {"access_token_id": access["oauth_token"], "consumer_id": consumer["id"]}
    delegated = response.headers["X-Subject-Token"]
    assert validate(api, delegated, by=token).json()["token"]["OS-OAUTH1"]["consumer_id"] == consumer["id"]

    # The user sees the access token and its roles, without its secret.
    listed = api.get(f"/identity/v3/users/{made[0]}/OS-OAUTH1/access_tokens", token=token).json()["access_tokens"]
    assert [(row["id"], row["consumer_id"], row["project_id"], row["authorizing_user_id"]) for row in listed] == [
        (access["oauth_token"], consumer["id"], made[3], made[0])]
    assert access["oauth_token_secret"] not in str(listed)
    path = f"/identity/v3/users/{made[0]}/OS-OAUTH1/access_tokens/{access['oauth_token']}"
    roles = api.get(f"{path}/roles", token=token).json()["roles"]
    assert [r["id"] for r in roles] == [role["id"]]
    assert api.get(f"{path}/roles/{role['id']}", token=token).json()["role"]["name"] == role["name"]

    # A delegated token cannot be rescoped into a broader one, nor make
    # what would outlive the delegation or carry more roles than it.
    rescoped = issue(api, {"auth": {"identity": {"methods": ["token"], "token": {"id": delegated}},
                                    "scope": {"project": {"id": made[3]}}}})
    assert rescoped.status_code == 403
    assert api.post(f"/identity/v3/users/{made[0]}/application_credentials", token=delegated,
                    json={"application_credential": {"name": "wider"}}).status_code == 403
    assert api.post(f"/identity/v3/users/{made[0]}/credentials/OS-EC2", token=delegated,
                    json={"tenant_id": made[3]}).status_code == 403
    assert api.post("/identity/v3/OS-TRUST/trusts", token=delegated, json={"trust": {
        "trustor_user_id": made[0], "trustee_user_id": made[0], "project_id": made[3], "impersonation": False,
        "roles": [{"name": role["name"]}]}}).status_code == 403
    assert api.get(f"/identity/v3/users/{made[0]}/application_credentials", token=token).json()[
        "application_credentials"] == []


def test_deleting_the_access_token_revokes_its_tokens(api, cloud, consumer, delegator):
    made, token, role = delegator
    _, access, _ = delegate(api, cloud, consumer, delegator, [{"id": role["id"]}])
    delegated = oauth_token(api, cloud, consumer, access).headers["X-Subject-Token"]
    assert validate(api, delegated, by=token).status_code == 200
    path = f"/identity/v3/users/{made[0]}/OS-OAUTH1/access_tokens/{access['oauth_token']}"
    assert api.delete(path, token=token).status_code == 204
    assert validate(api, delegated, by=token).status_code == 404
    assert api.get("/identity/v3/auth/projects", token=delegated).status_code == 401
    assert oauth_token(api, cloud, consumer, access).status_code == 401
    assert api.get(path, token=token).status_code == 404


def test_deleting_the_consumer_revokes_its_tokens(api, cloud, admin_token, consumer, delegator):
    made, token, role = delegator
    _, access, _ = delegate(api, cloud, consumer, delegator, [{"id": role["id"]}])
    delegated = oauth_token(api, cloud, consumer, access).headers["X-Subject-Token"]
    assert api.delete(f"{OAUTH}/consumers/{consumer['id']}", token=admin_token).status_code == 204
    assert validate(api, delegated, by=token).status_code == 404
    assert api.get(f"/identity/v3/users/{made[0]}/OS-OAUTH1/access_tokens", token=token).json()["access_tokens"] == []
    assert oauth_token(api, cloud, consumer, access).status_code == 401


def test_forged_signatures_and_wrong_secrets_are_refused(api, cloud, consumer, delegator):
    made, token, role = delegator
    assert request_token(api, cloud, consumer, made[3], secret="not-the-secret").status_code == 401
    # A correctly signed header whose signature was then altered.
    client = oauth1.Client(consumer["id"], client_secret=consumer["secret"], callback_uri="oob")
    _, headers, _ = client.sign(cloud.url + f"{OAUTH}/request_token", http_method="POST")
    forged = headers["Authorization"].replace('oauth_signature="', 'oauth_signature="AAAA')
    response = api.post(f"{OAUTH}/request_token", headers={"Authorization": forged, "Requested-Project-Id": made[3]})
    assert response.status_code == 401
    # Signed for another URL.
    _, headers, _ = client.sign(cloud.url + f"{OAUTH}/access_token", http_method="POST")
    response = api.post(f"{OAUTH}/request_token", headers={**headers, "Requested-Project-Id": made[3]})
    assert response.status_code == 401
    # No signature at all, and an unknown consumer.
    assert api.post(f"{OAUTH}/request_token", headers={"Requested-Project-Id": made[3]}).status_code == 401
    stranger = {"id": "nobody", "secret": "x"}
    assert request_token(api, cloud, stranger, made[3]).status_code == 401
    # A replayed request (same nonce and timestamp) is refused the second time.
    _, headers, _ = client.sign(cloud.url + f"{OAUTH}/request_token", http_method="POST")
    first = api.post(f"{OAUTH}/request_token", headers={**headers, "Requested-Project-Id": made[3]})
    again = api.post(f"{OAUTH}/request_token", headers={**headers, "Requested-Project-Id": made[3]})
    assert first.status_code == 201 and again.status_code == 401

    # The access token signed with a wrong consumer secret, and a wrong verifier.
    request, access, _ = delegate(api, cloud, consumer, delegator, [{"id": role["id"]}])
    assert oauth_token(api, cloud, consumer, access, consumer_secret="wrong").status_code == 401
    forged_access = {**access, "oauth_token_secret": "wrong"}
    assert oauth_token(api, cloud, consumer, forged_access).status_code == 401
    response = request_token(api, cloud, consumer, made[3])
    fresh = form(response)
    assert authorize(api, token, fresh["oauth_token"], [{"id": role["id"]}]).status_code == 200
    assert access_token(api, cloud, consumer, fresh, "00000000").status_code == 401


def test_a_request_token_is_used_once_and_expires(api, cloud, consumer, delegator, committed_db):
    made, token, role = delegator
    request, _, verifier = delegate(api, cloud, consumer, delegator, [{"id": role["id"]}])
    assert access_token(api, cloud, consumer, request, verifier).status_code == 401  # used up
    assert authorize(api, token, request["oauth_token"], [{"id": role["id"]}]).status_code == 404

    # Not authorized yet: no access token for it.
    pending = form(request_token(api, cloud, consumer, made[3]))
    assert access_token(api, cloud, consumer, pending, "whatever").status_code == 401

    # Expired (its expiry pushed into the past, as time would), before and after authorizing.
    stale = form(request_token(api, cloud, consumer, made[3]))
    OAuthRequestToken.objects.filter(id=stale["oauth_token"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert authorize(api, token, stale["oauth_token"], [{"id": role["id"]}]).status_code == 401
    late = form(request_token(api, cloud, consumer, made[3]))
    verifier = authorize(api, token, late["oauth_token"], [{"id": role["id"]}]).json()["token"]["oauth_verifier"]
    OAuthRequestToken.objects.filter(id=late["oauth_token"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert access_token(api, cloud, consumer, late, verifier).status_code == 401


def test_authorizing_needs_the_roles_and_bad_input_is_a_400(api, cloud, admin_token, consumer, delegator, make_user):
    made, token, role = delegator
    request = form(request_token(api, cloud, consumer, made[3]))
    admin_role = api.get("/identity/v3/roles?name=admin", token=admin_token).json()["roles"][0]
    assert authorize(api, token, request["oauth_token"], [{"id": admin_role["id"]}]).status_code == 401
    other = make_user()
    assert authorize(api, user_token(api, other), request["oauth_token"], [{"id": role["id"]}]).status_code == 401
    for roles in ([], "member", [{"nothing": 1}], [3]):
        response = authorize(api, token, request["oauth_token"], roles)
        assert response.status_code == 400 and "roles" in response.json()["error"]["message"]
    assert authorize(api, token, "no-such-token", [{"id": role["id"]}]).status_code == 404
    missing = request_token(api, cloud, consumer, "no-such-project")
    assert missing.status_code == 404
    client = oauth1.Client(consumer["id"], client_secret=consumer["secret"], callback_uri="oob")
    response = signed(api, cloud, "POST", f"{OAUTH}/request_token", client)
    assert response.status_code == 400 and "Requested-Project-Id" in response.json()["error"]["message"]
    # The request token is still usable after these refusals.
    assert authorize(api, token, request["oauth_token"], [{"id": role["id"]}]).status_code == 200


def test_another_users_access_token_is_a_404(api, cloud, consumer, delegator, make_user):
    made, token, role = delegator
    _, access, _ = delegate(api, cloud, consumer, delegator, [{"id": role["id"]}])
    other = make_user()
    other_token = user_token(api, other)
    path = f"/identity/v3/users/{other[0]}/OS-OAUTH1/access_tokens/{access['oauth_token']}"
    assert api.get(path, token=other_token).status_code == 404
    assert api.get(f"{path}/roles", token=other_token).status_code == 404
    assert api.delete(path, token=other_token).status_code == 404
    # Someone else's listing is not theirs to read.
    mine = f"/identity/v3/users/{made[0]}/OS-OAUTH1/access_tokens"
    assert api.get(mine, token=other_token).status_code == 403
    assert api.delete(f"{mine}/{access['oauth_token']}", token=other_token).status_code == 403
    assert oauth_token(api, cloud, consumer, access).status_code == 201  # still working


def test_the_openstack_cli_runs_the_whole_delegation(api, cloud, delegator):
    """consumer create / show / list / set / delete, request token create and
    authorize, access token create, and a token issued with
    --os-auth-type v3oauth1 (keystoneauth's OAuth 1.0a plugin)."""
    made, token, role = delegator
    consumer = cloud.openstack("consumer", "create", "--description", "cli printer", "-f", "json")
    assert consumer["description"] == "cli printer" and consumer["secret"]
    assert cloud.openstack("consumer", "show", consumer["id"], "-f", "json")["description"] == "cli printer"
    assert consumer["id"] in [row["ID"] for row in cloud.openstack("consumer", "list", "-f", "json")]
    cloud.openstack("consumer", "set", "--description", "renamed", consumer["id"])
    assert cloud.openstack("consumer", "show", consumer["id"], "-f", "json")["description"] == "renamed"

    user_env = {"OS_AUTH_URL": f"{cloud.url}/identity/v3", "OS_USERNAME": made[1], "OS_PASSWORD": made[2],
                "OS_PROJECT_NAME": made[4], "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                "OS_IDENTITY_API_VERSION": "3"}
    request = cloud.openstack("request", "token", "create", "--consumer-key", consumer["id"],
                              "--consumer-secret", consumer["secret"], "--project", made[3], "-f", "json",
                              cloud="", env=user_env)
    authorized = cloud.openstack("request", "token", "authorize", "--request-key", request["key"],
                                 "--role", role["name"], "-f", "json", cloud="", env=user_env)
    access = cloud.openstack("access", "token", "create", "--consumer-key", consumer["id"],
                             "--consumer-secret", consumer["secret"], "--request-key", request["key"],
                             "--request-secret", request["secret"],
                             "--verifier", authorized["oauth_verifier"], "-f", "json", cloud="", env=user_env)
    oauth_env = {"OS_AUTH_URL": f"{cloud.url}/identity/v3", "OS_AUTH_TYPE": "v3oauth1",
                 "OS_CONSUMER_KEY": consumer["id"], "OS_CONSUMER_SECRET": consumer["secret"],
                 "OS_ACCESS_KEY": access["key"], "OS_ACCESS_SECRET": access["secret"],
                 "OS_IDENTITY_API_VERSION": "3"}
    issued = cloud.openstack("token", "issue", "-f", "json", cloud="", env=oauth_env)
    assert issued["project_id"] == made[3] and issued["user_id"] == made[0]
    body = validate(api, issued["id"], by=token).json()["token"]
    assert [r["name"] for r in body["roles"]] == [role["name"]]

    cloud.openstack("consumer", "delete", consumer["id"])
    assert validate(api, issued["id"], by=token).status_code == 404
