"""Keystone's projects acting as domains: `is_domain: true` on
/v3/projects makes a domain, which /v3/projects then shows, changes and
deletes as a project (for cloud admins; it is nobody else's to see). The
`openstack` CLI has no option for it: raw HTTP."""
import pytest

from tests.identity.test_api import admin_token, issue, make_user, password_auth, unique  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live

PROJECTS = "/identity/v3/projects"


def test_a_project_acting_as_a_domain_is_a_domain(api, admin_token):
    name = unique("acting")
    created = api.post(PROJECTS, token=admin_token, json={"project": {
        "name": name, "description": "a domain made as a project", "domain_id": None, "is_domain": True}})
    assert created.status_code == 201, created.text
    project = created.json()["project"]
    assert project["is_domain"] is True and project["domain_id"] is None and project["parent_id"] is None
    assert project["name"] == name and project["enabled"] is True
    assert project["links"]["self"].endswith(f"/v3/projects/{project['id']}")
    domain = api.get(f"/identity/v3/domains/{project['id']}", token=admin_token)
    assert domain.status_code == 200 and domain.json()["domain"]["name"] == name

    listed = api.get(f"{PROJECTS}?is_domain=true", token=admin_token).json()["projects"]
    assert project["id"] in [p["id"] for p in listed] and all(p["is_domain"] for p in listed)
    assert "default" in [p["id"] for p in listed]
    assert project["id"] not in [p["id"] for p in api.get(PROJECTS, token=admin_token).json()["projects"]]
    assert api.get(f"{PROJECTS}/{project['id']}", token=admin_token).json()["project"] == project

    # Projects go in it as in any domain.
    inner = api.post(PROJECTS, token=admin_token, json={"project": {"name": "inner", "domain_id": project["id"]}})
    assert inner.status_code == 201 and inner.json()["project"]["parent_id"] == project["id"]

    # Disabled, then deleted, through /v3/projects, with what is in it.
    assert api.delete(f"{PROJECTS}/{project['id']}", token=admin_token).status_code == 403  # still enabled
    disabled = api.patch(f"{PROJECTS}/{project['id']}", token=admin_token, json={"project": {"enabled": False}})
    assert disabled.status_code == 200 and disabled.json()["project"]["enabled"] is False
    assert api.get(f"/identity/v3/domains/{project['id']}", token=admin_token).json()["domain"]["enabled"] is False
    assert api.delete(f"{PROJECTS}/{project['id']}", token=admin_token).status_code == 204
    assert api.get(f"/identity/v3/domains/{project['id']}", token=admin_token).status_code == 404
    assert api.get(f"{PROJECTS}/{inner.json()['project']['id']}", token=admin_token).status_code == 404


@pytest.mark.parametrize("change, field", [
    ({"is_domain": "true"}, "is_domain"),
    ({"is_domain": True, "domain_id": "default"}, "domain_id"),
    ({"is_domain": True, "parent_id": "default"}, "parent_id"),
    ({"is_domain": True, "name": "x" * 65}, "name"),
])
def test_bad_projects_acting_as_domains_are_400s(api, admin_token, change, field):
    response = api.post(PROJECTS, token=admin_token, json={"project": {"name": unique("bad"), **change}})
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["message"]


def test_a_name_taken_by_a_domain_is_a_409(api, admin_token):
    assert api.post(PROJECTS, token=admin_token, json={"project": {"name": "Default", "is_domain": True}}) \
        .status_code == 409


def test_only_cloud_admins_see_or_make_domains_through_projects(api, admin_token, make_user):
    _, name, password, _, project_name = make_user("admin")  # admin of their own project only
    token = issue(api, password_auth(name, password, project_name)).headers["X-Subject-Token"]
    assert api.post(PROJECTS, token=token, json={"project": {"name": unique("mine"), "is_domain": True}}) \
        .status_code == 403
    assert api.get(f"{PROJECTS}/default", token=token).status_code == 404
    assert api.patch(f"{PROJECTS}/default", token=token, json={"project": {"enabled": False}}).status_code == 403
    assert api.get("/identity/v3/domains/default", token=admin_token).json()["domain"]["enabled"] is True
