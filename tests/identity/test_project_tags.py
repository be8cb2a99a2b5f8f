"""Project tags as Keystone's: the tags of a project set through the
project or /v3/projects/{id}/tags[/{tag}], and the ?tags= filters (the real
CLI where it covers them)."""
import uuid

import pytest

pytestmark = pytest.mark.live


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def admin_token(cloud):
    return cloud.token("stratus")


def test_cli_sets_tags_and_lists_projects_by_them(cloud):
    blue, red = unique("blue"), unique("red")
    first, second = unique("p"), unique("p")
    cloud.openstack("project", "create", "--tag", blue, "--tag", red, first, "-f", "json")
    cloud.openstack("project", "create", "--tag", blue, second, "-f", "json")
    assert sorted(cloud.openstack("project", "show", first, "-f", "json")["tags"]) == sorted([blue, red])
    names = lambda *args: sorted(row["Name"] for row in cloud.openstack("project", "list", *args, "-f", "json"))
    assert names("--tags", f"{blue},{red}") == [first]
    assert names("--tags-any", f"{red},{blue}") == sorted([first, second])
    assert first not in names("--not-tags", f"{blue},{red}") and second in names("--not-tags", f"{blue},{red}")
    assert names("--not-tags-any", blue) == [n for n in names() if n not in (first, second)]
    cloud.openstack("project", "set", "--remove-tag", red, first)
    assert cloud.openstack("project", "show", first, "-f", "json")["tags"] == [blue]


def test_tags_of_one_project(api, admin_token):
    project = api.post("/identity/v3/projects", token=admin_token,
                       json={"project": {"name": unique("p")}}).json()["project"]
    tags = f"/identity/v3/projects/{project['id']}/tags"
    added = api.put(f"{tags}/first", token=admin_token)
    assert added.status_code == 201 and added.content == b"" and added.headers["Location"].endswith(f"{tags}/first")
    assert api.head(f"{tags}/first", token=admin_token).status_code == 204
    replaced = api.put(tags, token=admin_token, json={"tags": ["a", "b", "c"]})
    assert replaced.status_code == 200 and sorted(replaced.json()["tags"]) == ["a", "b", "c"]
    assert sorted(api.get(tags, token=admin_token).json()["tags"]) == ["a", "b", "c"]
    assert api.get(f"{tags}/first", token=admin_token).status_code == 404
    assert api.delete(f"{tags}/a", token=admin_token).status_code == 204
    gone = api.get(f"{tags}/a", token=admin_token)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == 404
    assert api.delete(tags, token=admin_token).status_code == 204
    assert api.get(tags, token=admin_token).json()["tags"] == []
    assert api.get(f"/identity/v3/projects/{project['id']}", token=admin_token).json()["project"]["tags"] == []


def test_bad_tags_are_400s_that_change_nothing(api, admin_token):
    project = api.post("/identity/v3/projects", token=admin_token,
                       json={"project": {"name": unique("p"), "tags": ["kept"]}}).json()["project"]
    tags = f"/identity/v3/projects/{project['id']}/tags"
    for body in ({"tags": ["a/b"]}, {"tags": ["a,b"]}, {"tags": [""]}, {"tags": ["x" * 256]},
                 {"tags": [str(n) for n in range(81)]}, {"tags": "flat"}, {}):
        response = api.put(tags, token=admin_token, json=body)
        assert response.status_code == 400, (body, response.text)
        assert "'tags'" in response.json()["error"]["message"]
    assert api.put(f"{tags}/a,b", token=admin_token).status_code == 400
    patched = api.patch(f"/identity/v3/projects/{project['id']}", token=admin_token,
                        json={"project": {"tags": ["a/b"]}})
    assert patched.status_code == 400 and "'tags'" in patched.json()["error"]["message"]
    assert api.get(tags, token=admin_token).json()["tags"] == ["kept"]


def test_a_member_reads_its_projects_tags_but_does_not_change_them(cloud, api, admin_token):
    token = cloud.token("stratus-demo")
    project_id = api.get("/identity/v3/auth/tokens", token=token,
                         headers={"X-Subject-Token": token}).json()["token"]["project"]["id"]
    assert api.get(f"/identity/v3/projects/{project_id}/tags", token=token).status_code == 200
    assert api.put(f"/identity/v3/projects/{project_id}/tags/mine", token=token).status_code == 403
    assert api.put(f"/identity/v3/projects/{project_id}/tags", token=token, json={"tags": []}).status_code == 403
    admin_project = api.get("/identity/v3/projects?name=admin", token=admin_token).json()["projects"][0]["id"]
    assert api.get(f"/identity/v3/projects/{admin_project}/tags", token=token).status_code == 404
