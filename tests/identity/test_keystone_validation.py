"""Bodies checked as Keystone checks them: name lengths, references to
resources that do not exist, attributes Keystone keeps, legacy endpoint
regions, regions made with the id the caller chose, expiry times shown as
given."""
import datetime
import uuid

import pytest

pytestmark = pytest.mark.live


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def admin_token(cloud):
    return cloud.token("stratus")


def test_a_domain_or_project_name_over_64_characters_is_a_400(cloud, api, admin_token):
    failed = cloud.openstack("domain", "create", "d" * 65, expect_fail=True)
    assert "400" in failed.stderr and "'name'" in failed.stderr
    for collection, member in (("domains", "domain"), ("projects", "project")):
        response = api.post(f"/identity/v3/{collection}", token=admin_token, json={member: {"name": "a" * 65}})
        assert response.status_code == 400
        assert "'name'" in response.json()["error"]["message"]
        assert api.get(f"/identity/v3/{collection}?name={'a' * 65}", token=admin_token).json()[collection] == []
        name = unique("n").ljust(64, "x")
        created = api.post(f"/identity/v3/{collection}", token=admin_token, json={member: {"name": name}})
        assert created.status_code == 201 and created.json()[member]["name"] == name


def test_references_to_missing_domains_and_parents_are_404(cloud, api, admin_token):
    failed = cloud.openstack("user", "create", "--domain", "no-such-domain", unique("u"), expect_fail=True)
    assert "no-such-domain" in failed.stderr
    for collection, member in (("users", "user"), ("projects", "project"), ("groups", "group")):
        before = len(api.get(f"/identity/v3/{collection}", token=admin_token).json()[collection])
        response = api.post(f"/identity/v3/{collection}", token=admin_token,
                            json={member: {"name": unique("n"), "domain_id": "missing-domain"}})
        assert response.status_code == 404, response.text
        assert response.json()["error"]["message"] == "Could not find domain: missing-domain."
        assert len(api.get(f"/identity/v3/{collection}", token=admin_token).json()[collection]) == before
    orphan = api.post("/identity/v3/projects", token=admin_token,
                      json={"project": {"name": unique("p"), "parent_id": "missing-parent"}})
    assert orphan.status_code == 404 and orphan.json()["error"]["message"] == "Could not find project: missing-parent."


def test_attributes_keystone_does_not_know_are_kept(api, admin_token):
    project = api.post("/identity/v3/projects", token=admin_token,
                       json={"project": {"name": unique("p")}}).json()["project"]
    created = api.post("/identity/v3/users", token=admin_token, json={"user": {
        "name": unique("u"), "project_id": project["id"], "team": "blue"}})
    assert created.status_code == 201
    user = created.json()["user"]
    assert user["project_id"] == project["id"] and user["team"] == "blue"
    updated = api.patch(f"/identity/v3/users/{user['id']}", token=admin_token,
                        json={"user": {"team": "red", "id": user["id"]}}).json()["user"]
    assert updated["team"] == "red" and updated["project_id"] == project["id"]
    shown = api.get(f"/identity/v3/users/{user['id']}", token=admin_token).json()["user"]
    assert shown["team"] == "red" and shown["project_id"] == project["id"]
    # A known attribute is never shadowed by a kept one.
    assert shown["domain_id"] == "default"


def test_legacy_endpoint_region_is_made_with_the_endpoint_and_only_then(api, admin_token):
    service = api.post("/identity/v3/services", token=admin_token,
                       json={"service": {"type": unique("t"), "name": unique("s")}}).json()["service"]
    region = unique("region")
    refused = api.post("/identity/v3/endpoints", token=admin_token, json={"endpoint": {
        "service_id": service["id"], "interface": "sideways", "url": "http://x", "region": region}})
    assert refused.status_code == 400 and "interface" in refused.json()["error"]["message"]
    assert api.get(f"/identity/v3/regions/{region}", token=admin_token).status_code == 404
    created = api.post("/identity/v3/endpoints", token=admin_token, json={"endpoint": {
        "service_id": service["id"], "interface": "public", "url": "http://x", "region": region}})
    assert created.status_code == 201, created.text
    assert created.json()["endpoint"]["region_id"] == created.json()["endpoint"]["region"] == region
    assert api.get(f"/identity/v3/regions/{region}", token=admin_token).status_code == 200
    # region_id itself must name a region that exists.
    missing = api.post("/identity/v3/endpoints", token=admin_token, json={"endpoint": {
        "service_id": service["id"], "interface": "public", "url": "http://x", "region_id": unique("nowhere")}})
    assert missing.status_code == 400 and "region_id" in missing.json()["error"]["message"]


def test_put_makes_a_region_with_the_callers_id(api, admin_token):
    region = unique("r")
    created = api.put(f"/identity/v3/regions/{region}", token=admin_token,
                      json={"region": {"description": "chosen id"}})
    assert created.status_code == 201
    assert created.json()["region"]["id"] == region and created.json()["region"]["description"] == "chosen id"
    assert api.get(f"/identity/v3/regions/{region}", token=admin_token).json()["region"]["id"] == region
    again = api.put(f"/identity/v3/regions/{region}", token=admin_token, json={"region": {}})
    assert again.status_code == 409 and again.json()["error"]["title"] == "Conflict"


def test_application_credential_expiry_is_shown_as_given(cloud, api):
    token = cloud.token("stratus-demo")
    user_id = api.get("/identity/v3/auth/tokens", token=token,
                      headers={"X-Subject-Token": token}).json()["token"]["user"]["id"]
    expires = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).replace(tzinfo=None)
    created = api.post(f"/identity/v3/users/{user_id}/application_credentials", token=token, json={
        "application_credential": {"name": unique("ac"), "expires_at": expires.isoformat()}})
    assert created.status_code == 201
    assert created.json()["application_credential"]["expires_at"] == expires.isoformat()
    credential_id = created.json()["application_credential"]["id"]
    shown = api.get(f"/identity/v3/users/{user_id}/application_credentials/{credential_id}", token=token)
    assert shown.json()["application_credential"]["expires_at"] == expires.isoformat()


def test_enabled_is_a_json_boolean(api, admin_token):
    service = api.post("/identity/v3/services", token=admin_token,
                       json={"service": {"type": unique("t")}}).json()["service"]
    for collection, member, body in (
            ("endpoints", "endpoint", {"service_id": service["id"], "interface": "public", "url": "http://x"}),
            ("projects", "project", {"name": unique("p")}), ("domains", "domain", {"name": unique("d")}),
            ("users", "user", {"name": unique("u")}), ("services", "service", {"type": unique("t")})):
        for value in ("True", "False", 1):
            response = api.post(f"/identity/v3/{collection}", token=admin_token,
                                json={member: {**body, "enabled": value}})
            assert response.status_code == 400, (collection, value, response.text)
            assert "'enabled'" in response.json()["error"]["message"]
        created = api.post(f"/identity/v3/{collection}", token=admin_token, json={member: {**body, "enabled": False}})
        assert created.status_code == 201 and created.json()[member]["enabled"] is False
        updated = api.patch(f"/identity/v3/{collection}/{created.json()[member]['id']}", token=admin_token,
                            json={member: {"enabled": "True"}})
        assert updated.status_code == 400


def test_a_rescoped_token_says_it_came_from_a_token(api):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"name": "Default"}, "password": "stratus-demo"}}}}}
    unscoped = api.post("/identity/v3/auth/tokens", json=body)
    assert unscoped.json()["token"]["methods"] == ["password"]
    rescoped = api.post("/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped.headers["X-Subject-Token"]}},
        "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}})
    assert rescoped.status_code == 201
    token = rescoped.json()["token"]
    assert token["methods"] == ["password", "token"] and token["expires_at"] == unscoped.json()["token"]["expires_at"]
    validated = api.get("/identity/v3/auth/tokens", token=rescoped.headers["X-Subject-Token"],
                        headers={"X-Subject-Token": rescoped.headers["X-Subject-Token"]})
    assert validated.json()["token"]["methods"] == ["password", "token"]


def test_an_application_credential_may_have_a_role_granted_since_the_token(cloud, api, admin_token):
    token = cloud.token("stratus-demo")
    me = api.get("/identity/v3/auth/tokens", token=token, headers={"X-Subject-Token": token}).json()["token"]
    role = api.post("/identity/v3/roles", token=admin_token, json={"role": {"name": unique("r")}}).json()["role"]
    path = f"/identity/v3/users/{me['user']['id']}/application_credentials"
    refused = api.post(path, token=token, json={"application_credential": {
        "name": unique("ac"), "roles": [{"id": role["id"]}]}})
    assert refused.status_code == 400 and "roles[0]" in refused.json()["error"]["message"]
    assert api.put(f"/identity/v3/projects/{me['project']['id']}/users/{me['user']['id']}/roles/{role['id']}",
                   token=admin_token).status_code == 204
    created = api.post(path, token=token, json={"application_credential": {
        "name": unique("ac"), "roles": [{"id": role["id"]}]}})
    assert created.status_code == 201, created.text
    assert [r["id"] for r in created.json()["application_credential"]["roles"]] == [role["id"]]
