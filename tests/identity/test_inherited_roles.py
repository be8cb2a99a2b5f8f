"""OS-INHERIT: roles granted on a domain or a project to the projects below
it, on the wire, in tokens and in effective role assignments (the real CLI
where it covers them)."""
import uuid

import pytest

pytestmark = pytest.mark.live


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def admin_token(cloud):
    return cloud.token("stratus")


@pytest.fixture
def tree(api, admin_token):
    """A domain, a parent project with a child, a user who is a member of
    both, a group with the user in it and a role to inherit."""
    def post(path, body):
        response = api.post(path, token=admin_token, json=body)
        assert response.status_code == 201, response.text
        return next(iter(response.json().values()))

    domain = post("/identity/v3/domains", {"domain": {"name": unique("dom")}})
    parent = post("/identity/v3/projects", {"project": {"name": unique("parent"), "domain_id": domain["id"]}})
    child = post("/identity/v3/projects", {"project": {"name": unique("child"), "domain_id": domain["id"],
                                                       "parent_id": parent["id"]}})
    password = uuid.uuid4().hex
    user = post("/identity/v3/users", {"user": {"name": unique("user"), "domain_id": domain["id"],
                                                "password": password}})
    group = post("/identity/v3/groups", {"group": {"name": unique("group"), "domain_id": domain["id"]}})
    assert api.put(f"/identity/v3/groups/{group['id']}/users/{user['id']}", token=admin_token).status_code == 204
    member = api.get("/identity/v3/roles?name=member", token=admin_token).json()["roles"][0]
    for project in (parent, child):
        assert api.put(f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{member['id']}",
                       token=admin_token).status_code == 204
    role = post("/identity/v3/roles", {"role": {"name": unique("inherited")}})
    return {"domain": domain, "parent": parent, "child": child, "user": user, "password": password,
            "group": group, "role": role}


def token_roles(api, tree, project):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": tree["user"]["id"], "password": tree["password"]}}}, "scope": {"project": {"id": project["id"]}}}}
    response = api.post("/identity/v3/auth/tokens", json=body)
    assert response.status_code == 201, response.text
    return {role["name"] for role in response.json()["token"]["roles"]}


def effective(api, admin_token, tree, project):
    response = api.get("/identity/v3/role_assignments", token=admin_token, params={
        "effective": "", "user.id": tree["user"]["id"], "scope.project.id": project["id"],
        "role.id": tree["role"]["id"]})
    assert response.status_code == 200
    return response.json()["role_assignments"]


def test_cli_grants_a_role_inherited_by_a_projects_subtree(cloud, api, admin_token, tree):
    user, role, parent, child = tree["user"], tree["role"], tree["parent"], tree["child"]
    cloud.openstack("role", "add", "--project", parent["id"], "--user", user["id"], "--inherited", role["id"])
    grant = f"/identity/v3/OS-INHERIT/projects/{parent['id']}/users/{user['id']}/roles"
    assert api.head(f"{grant}/{role['id']}/inherited_to_projects", token=admin_token).status_code == 204
    listed = api.get(f"{grant}/inherited_to_projects", token=admin_token).json()["roles"]
    assert [row["id"] for row in listed] == [role["id"]]
    # Not a direct grant on the project itself.
    assert api.head(f"/identity/v3/projects/{parent['id']}/users/{user['id']}/roles/{role['id']}",
                    token=admin_token).status_code == 404

    # The child's tokens carry it, the parent's do not.
    assert role["name"] in token_roles(api, tree, child)
    assert role["name"] not in token_roles(api, tree, parent)
    on_child = effective(api, admin_token, tree, child)
    assert len(on_child) == 1 and on_child[0]["scope"] == {"project": {"id": child["id"]}}
    assert on_child[0]["links"]["assignment"].endswith(f"{grant}/{role['id']}/inherited_to_projects")
    assert effective(api, admin_token, tree, parent) == []
    rows = cloud.openstack("role", "assignment", "list", "--effective", "--project", child["id"], "--user",
                           user["id"], "--role", role["id"], "-f", "json")
    assert [row["Project"] for row in rows] == [child["id"]]

    cloud.openstack("role", "remove", "--project", parent["id"], "--user", user["id"], "--inherited", role["id"])
    assert api.head(f"{grant}/{role['id']}/inherited_to_projects", token=admin_token).status_code == 404
    assert effective(api, admin_token, tree, child) == []
    assert role["name"] not in token_roles(api, tree, child)


def test_a_groups_role_inherited_from_a_domain(api, admin_token, tree):
    group, role, domain = tree["group"], tree["role"], tree["domain"]
    grant = f"/identity/v3/OS-INHERIT/domains/{domain['id']}/groups/{group['id']}/roles"
    assert api.put(f"{grant}/{role['id']}/inherited_to_projects", token=admin_token).status_code == 204
    assert [row["id"] for row in api.get(f"{grant}/inherited_to_projects", token=admin_token).json()["roles"]] \
        == [role["id"]]
    # Every project of the domain inherits it, through the group.
    for project in (tree["parent"], tree["child"]):
        assert role["name"] in token_roles(api, tree, project)
        rows = effective(api, admin_token, tree, project)
        assert len(rows) == 1 and rows[0]["scope"] == {"project": {"id": project["id"]}}
        assert rows[0]["links"]["membership"].endswith(f"/groups/{group['id']}/users/{tree['user']['id']}")
    # Not a role on the domain itself; the plain list shows the grant as inherited.
    plain = api.get("/identity/v3/role_assignments", token=admin_token,
                    params={"scope.domain.id": domain["id"], "role.id": role["id"]}).json()["role_assignments"]
    assert [row["scope"] for row in plain] == [{"domain": {"id": domain["id"]}, "OS-INHERIT:inherited_to": "projects"}]
    assert api.delete(f"{grant}/{role['id']}/inherited_to_projects", token=admin_token).status_code == 204
    assert effective(api, admin_token, tree, tree["child"]) == []
    missing = api.put(f"/identity/v3/OS-INHERIT/projects/nope/groups/{group['id']}/roles/{role['id']}"
                      "/inherited_to_projects", token=admin_token)
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "Could not find project: nope."
