"""Project trees: a project cannot become the child of its own descendant."""
import threading
import uuid

import pytest
from django.db import connection

from identity.models import Project
from tests.identity.admin_forms import operator_client, post_change_form

pytestmark = pytest.mark.live


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin_token(cloud):
    return cloud.token("stratus")


@pytest.fixture
def tree(api, admin_token):
    """Projects a <- b <- c (c's parent is b, b's is a)."""
    made = {}
    parent = None
    for name in ("a", "b", "c"):
        body = {"name": unique(name)}
        if parent:
            body["parent_id"] = parent
        response = api.post("/identity/v3/projects", token=admin_token, json={"project": body})
        assert response.status_code == 201, response.text
        made[name] = parent = response.json()["project"]["id"]
    return made


def test_a_parent_among_the_projects_descendants_is_a_400(api, admin_token, tree):
    for new_parent in (tree["c"], tree["b"], tree["a"]):
        response = api.patch(f"/identity/v3/projects/{tree['a']}", token=admin_token,
                             json={"project": {"parent_id": new_parent}})
        assert response.status_code == 400, response.text
        assert "'parent_id'" in response.json()["error"]["message"]
    shown = api.get(f"/identity/v3/projects/{tree['a']}", token=admin_token).json()["project"]
    assert shown["parent_id"] == "default"  # still top-level: nothing was written

    # Moving within the tree the right way still works.
    response = api.patch(f"/identity/v3/projects/{tree['c']}", token=admin_token,
                         json={"project": {"parent_id": tree["a"]}})
    assert response.status_code == 200 and response.json()["project"]["parent_id"] == tree["a"]


def test_the_django_admin_refuses_the_cycle_too(api, admin_token, tree, committed_db):
    client = operator_client()
    response = post_change_form(client, f"/admin/identity/project/{tree['a']}/change/", {"parent": tree["c"]})
    assert response.status_code == 200  # the form again, with the error
    assert b"cannot be its own parent" in response.content
    assert Project.objects.get(id=tree["a"]).parent_id is None


def test_token_issue_into_a_tree_with_a_cycle_written_behind_the_api_ends(api, admin_token, tree, committed_db):
    """Even a cycle written straight into the database cannot make token
    issue loop: it ends (401, no role) instead of hanging."""
    with connection.cursor() as cursor:  # raw SQL: the models refuse to write it
        cursor.execute("UPDATE identity_project SET parent_id = %s WHERE id = %s", [tree["c"], tree["a"]])
    try:
        response = api.post("/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["token"], "token": {"id": admin_token}},
            "scope": {"project": {"id": tree["b"]}}}})
        assert response.status_code == 401
    finally:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE identity_project SET parent_id = NULL WHERE id = %s", [tree["a"]])


def test_two_moves_that_make_a_cycle_together_never_both_pass(api, admin_token):
    """A under B and B under A at the same moment: each is fine alone, so
    only one may win; the other is the cycle's 400."""
    for _ in range(8):
        first, second = (api.post("/identity/v3/projects", token=admin_token,
                                  json={"project": {"name": unique(name)}}).json()["project"]["id"]
                         for name in ("x", "y"))
        start, answers = threading.Barrier(2), {}

        def move(child, parent):
            start.wait()
            answers[child] = api.patch(f"/identity/v3/projects/{child}", token=admin_token,
                                       json={"project": {"parent_id": parent}}).status_code

        threads = [threading.Thread(target=move, args=pair) for pair in ((first, second), (second, first))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers.values()) == [200, 400], answers
        parents = {pid: api.get(f"/identity/v3/projects/{pid}", token=admin_token).json()["project"]["parent_id"]
                   for pid in (first, second)}
        assert not (parents[first] == second and parents[second] == first), "a cycle was written"
