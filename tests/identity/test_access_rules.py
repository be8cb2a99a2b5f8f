"""Application credentials with access rules: the token they give may make
only the API calls the rules name, on every service; the rules are listed,
shown and deleted under the user, never while a credential still uses one."""
import json
import uuid

import pytest

from tests.identity.test_api import admin_token, make_user, password_auth, issue  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live


def app_credential_token(api, credential_id, secret):
    response = api.post("/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": credential_id, "secret": secret}}}})
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def test_a_token_of_a_credential_with_access_rules_makes_only_those_calls(api, make_user):
    user_id, name, password, project_id, project_name = make_user()
    token = issue(api, password_auth(name, password, project_name)).headers["X-Subject-Token"]
    rules = [{"service": "compute", "method": "GET", "path": "/v2.1/servers"},
             {"service": "compute", "method": "GET", "path": "/v2.1/servers/*/ips"},
             {"service": "image", "method": "GET", "path": "/v2/images/**"}]
    created = api.post(f"/identity/v3/users/{user_id}/application_credentials", token=token, json={
        "application_credential": {"name": "reader-app", "access_rules": rules}})
    assert created.status_code == 201, created.text
    credential = created.json()["application_credential"]
    assert [{k: v for k, v in rule.items() if k != "id"} for rule in credential["access_rules"]] == rules
    restricted = app_credential_token(api, credential["id"], credential["secret"])

    assert api.get("/compute/v2.1/servers", token=restricted).status_code == 200
    assert api.get(f"/compute/v2.1/servers/{uuid.uuid4()}/ips", token=restricted).status_code == 404  # allowed, none
    assert api.get(f"/image/v2/images/{uuid.uuid4()}", token=restricted).status_code == 404
    for method, path in (("GET", "/compute/v2.1/flavors"), ("POST", "/compute/v2.1/servers"),
                         ("GET", "/compute/v2.1/servers/detail"), ("GET", "/image/v2/images"),
                         ("GET", "/network/v2.0/networks"), ("GET", "/identity/v3/auth/projects"),
                         ("GET", f"/object-store/v1/AUTH_{project_id}")):
        refused = api.request(method, path, token=restricted, json={} if method == "POST" else None)
        assert refused.status_code == 401, (method, path, refused.status_code)
    # The same user's token without the credential is not restricted.
    assert api.get("/compute/v2.1/flavors", token=token).status_code == 200


def test_access_rules_are_listed_shown_and_deleted_only_once_unused(api, make_user, cloud, tmp_path):
    user_id, name, password, project_id, project_name = make_user()
    token = issue(api, password_auth(name, password, project_name)).headers["X-Subject-Token"]
    rule = {"service": "monitoring", "method": "GET", "path": "/v1/metrics"}
    env = {"OS_AUTH_URL": f"{cloud.url}/identity/v3", "OS_USERNAME": name, "OS_PASSWORD": password,
           "OS_PROJECT_NAME": project_name, "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
           "OS_IDENTITY_API_VERSION": "3", "OS_CLOUD": ""}
    created = cloud.openstack("application", "credential", "create", "--access-rules", json.dumps([rule]),
                              "monitor", "-f", "json", cloud="", env=env)
    rules = created.get("access_rules", created.get("Access Rules"))
    assert rules, created
    rules = json.loads(rules) if isinstance(rules, str) else rules
    rule_id = rules[0]["id"]
    # A second credential asking for the same rule shares it; one naming it by id too.
    second = api.post(f"/identity/v3/users/{user_id}/application_credentials", token=token, json={
        "application_credential": {"name": "monitor-2", "access_rules": [{"id": rule_id}]}}).json()
    assert second["application_credential"]["access_rules"][0]["id"] == rule_id

    base = f"/identity/v3/users/{user_id}/access_rules"
    listed = api.get(base, token=token).json()["access_rules"]
    assert [entry["id"] for entry in listed] == [rule_id]
    shown = api.get(f"{base}/{rule_id}", token=token).json()["access_rule"]
    assert {k: shown[k] for k in rule} == rule
    in_use = api.delete(f"{base}/{rule_id}", token=token)
    assert in_use.status_code == 403
    for credential in api.get(f"/identity/v3/users/{user_id}/application_credentials",
                              token=token).json()["application_credentials"]:
        assert api.delete(f"/identity/v3/users/{user_id}/application_credentials/{credential['id']}",
                          token=token).status_code == 204
    assert api.delete(f"{base}/{rule_id}", token=token).status_code == 204
    assert api.get(base, token=token).json()["access_rules"] == []

    other_id, other_name, other_password, _, other_project = make_user()
    other = issue(api, password_auth(other_name, other_password, other_project)).headers["X-Subject-Token"]
    assert api.get(base, token=other).status_code in (403, 404)
    for bad in ({"service": "compute", "method": "FETCH", "path": "/v2.1"},
                {"service": "compute", "method": "GET", "path": "v2.1/servers"},
                {"id": "no-such-rule"}, {"service": "", "method": "GET", "path": "/x"}):
        refused = api.post(f"/identity/v3/users/{user_id}/application_credentials", token=token, json={
            "application_credential": {"name": f"bad-{uuid.uuid4().hex[:6]}", "access_rules": [bad]}})
        assert refused.status_code == 400 and "access_rules[0]" in refused.text, (bad, refused.text)
