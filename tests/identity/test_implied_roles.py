"""Implied roles (role inference rules) as Keystone's: the API, tokens that
carry what a role implies, effective role assignments, domain-specific
roles acting only through what they imply, and revocation when a rule
goes (the real CLI where it covers them)."""
import uuid

import pytest

pytestmark = pytest.mark.live


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def admin_token(cloud):
    return cloud.token("stratus")


@pytest.fixture
def setup(api, admin_token):
    def post(path, body):
        response = api.post(path, token=admin_token, json=body)
        assert response.status_code == 201, response.text
        return next(iter(response.json().values()))

    project = post("/identity/v3/projects", {"project": {"name": unique("p")}})
    password = uuid.uuid4().hex
    user = post("/identity/v3/users", {"user": {"name": unique("u"), "password": password}})
    prior, implied, further = (post("/identity/v3/roles", {"role": {"name": unique(n)}})
                               for n in ("prior", "implied", "further"))
    assert api.put(f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{prior['id']}",
                   token=admin_token).status_code == 204
    return {"project": project, "user": user, "password": password, "prior": prior, "implied": implied,
            "further": further}


def issue(api, setup):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": setup["user"]["id"], "password": setup["password"]}}},
        "scope": {"project": {"id": setup["project"]["id"]}}}}
    response = api.post("/identity/v3/auth/tokens", json=body)
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"], {role["name"] for role in response.json()["token"]["roles"]}


def effective_role_ids(api, admin_token, setup):
    response = api.get("/identity/v3/role_assignments", token=admin_token, params={
        "effective": "", "user.id": setup["user"]["id"], "scope.project.id": setup["project"]["id"]})
    return sorted(row["role"]["id"] for row in response.json()["role_assignments"])


def test_cli_makes_a_role_imply_another_and_tokens_carry_both(cloud, api, admin_token, setup):
    prior, implied, further = setup["prior"], setup["implied"], setup["further"]
    created = cloud.openstack("implied", "role", "create", prior["id"], "--implied-role", implied["id"], "-f", "json")
    assert created["prior_role"] == prior["id"] and created["implies"] == implied["id"]
    api.put(f"/identity/v3/roles/{implied['id']}/implies/{further['id']}", token=admin_token)
    rows = cloud.openstack("implied", "role", "list", "-f", "json")
    assert [row["Implied Role ID"] for row in rows if row["Prior Role ID"] == prior["id"]] == [implied["id"]]

    # Transitively: prior gives implied, implied gives further.
    _, roles = issue(api, setup)
    assert {prior["name"], implied["name"], further["name"]} <= roles
    assignments = api.get("/identity/v3/role_assignments", token=admin_token, params={
        "effective": "", "user.id": setup["user"]["id"], "scope.project.id": setup["project"]["id"]}).json()
    by_role = {row["role"]["id"]: row for row in assignments["role_assignments"]}
    assert sorted(by_role) == sorted([prior["id"], implied["id"], further["id"]])
    assert by_role[implied["id"]]["links"]["prior_role"].endswith(f"/roles/{prior['id']}")
    assert by_role[further["id"]]["links"]["prior_role"].endswith(f"/roles/{implied['id']}")

    # Taking the rule away takes the roles away, and the tokens that carried them.
    token, _ = issue(api, setup)
    cloud.openstack("implied", "role", "delete", prior["id"], "--implied-role", implied["id"])
    assert api.get("/identity/v3/auth/tokens", token=admin_token, headers={"X-Subject-Token": token}).status_code \
        == 404
    _, roles = issue(api, setup)
    assert implied["name"] not in roles and further["name"] not in roles
    assert effective_role_ids(api, admin_token, setup) == [prior["id"]]


def test_inference_rule_bodies(cloud, api, admin_token, setup):
    prior, implied, further = setup["prior"], setup["implied"], setup["further"]
    rule = f"/identity/v3/roles/{prior['id']}/implies/{implied['id']}"
    assert api.head(rule, token=admin_token).status_code == 404
    created = api.put(rule, token=admin_token)
    assert created.status_code == 201
    body = created.json()["role_inference"]
    assert body["prior_role"]["id"] == prior["id"] and body["implies"]["name"] == implied["name"]
    assert body["implies"]["links"]["self"].endswith(f"/roles/{implied['id']}")
    assert api.head(rule, token=admin_token).status_code == 204
    assert api.get(rule, token=admin_token).json() == created.json()
    api.put(f"/identity/v3/roles/{prior['id']}/implies/{further['id']}", token=admin_token)
    listed = api.get(f"/identity/v3/roles/{prior['id']}/implies", token=admin_token).json()["role_inference"]
    assert sorted(role["id"] for role in listed["implies"]) == sorted([implied["id"], further["id"]])
    every = api.get("/identity/v3/role_inferences", token=admin_token).json()["role_inferences"]
    mine = next(entry for entry in every if entry["prior_role"]["id"] == prior["id"])
    assert len(mine["implies"]) == 2

    # No cycles, not itself, never admin; missing roles are 404s.
    cycle = api.put(f"/identity/v3/roles/{implied['id']}/implies/{prior['id']}", token=admin_token)
    assert cycle.status_code == 400 and "cycle" in cycle.json()["error"]["message"]
    assert api.put(f"/identity/v3/roles/{prior['id']}/implies/{prior['id']}", token=admin_token).status_code == 400
    admin_role = api.get("/identity/v3/roles?name=admin", token=admin_token).json()["roles"][0]
    assert api.put(f"/identity/v3/roles/{prior['id']}/implies/{admin_role['id']}",
                   token=admin_token).status_code == 403
    missing = api.put(f"/identity/v3/roles/{prior['id']}/implies/nope", token=admin_token)
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "Could not find role: nope."
    assert api.delete(rule, token=admin_token).status_code == 204
    assert api.get(rule, token=admin_token).status_code == 404
    # Only admins write rules; members read them.
    demo = cloud.token("stratus-demo")
    assert api.put(rule, token=demo).status_code == 403
    assert api.get(f"/identity/v3/roles/{prior['id']}/implies", token=demo).status_code == 200


def test_a_domain_specific_role_acts_only_through_what_it_implies(api, admin_token, setup):
    domain = api.post("/identity/v3/domains", token=admin_token,
                      json={"domain": {"name": unique("d")}}).json()["domain"]
    domain_role = api.post("/identity/v3/roles", token=admin_token, json={"role": {
        "name": unique("dr"), "domain_id": domain["id"]}}).json()["role"]
    user, project = setup["user"], setup["project"]
    assert api.put(f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{domain_role['id']}",
                   token=admin_token).status_code == 204
    _, roles = issue(api, setup)
    assert domain_role["name"] not in roles
    assert effective_role_ids(api, admin_token, setup) == [setup["prior"]["id"]]
    # A global role cannot imply a domain-specific one; the other way it gives the global role.
    refused = api.put(f"/identity/v3/roles/{setup['implied']['id']}/implies/{domain_role['id']}", token=admin_token)
    assert refused.status_code == 403
    assert api.put(f"/identity/v3/roles/{domain_role['id']}/implies/{setup['further']['id']}",
                   token=admin_token).status_code == 201
    _, roles = issue(api, setup)
    assert setup["further"]["name"] in roles and domain_role["name"] not in roles
    assert effective_role_ids(api, admin_token, setup) == sorted([setup["prior"]["id"], setup["further"]["id"]])


def test_bootstrap_makes_keystones_roles(api, admin_token):
    names = {role["name"] for role in api.get("/identity/v3/roles", token=admin_token).json()["roles"]}
    assert {"admin", "manager", "member", "reader", "service"} <= names
