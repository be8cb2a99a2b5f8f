"""`role assignment list --effective` reads a flat number of queries, however
many groups, members and assignments there are."""
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from identity.models import Group, Project, Role, RoleAssignment, User


def add_groups(role, project, groups, members_each):
    """`groups` new groups of `members_each` new users, each group granted `role` on `project`,
    and one direct grant per group to a user of its own. Returns a member's id."""
    member_id = None
    for _ in range(groups):
        tag = uuid.uuid4().hex[:8]
        group = Group.objects.create(name=f"g-{tag}", domain_id="default")
        users = User.objects.bulk_create([User(name=f"u-{tag}-{index}", domain_id="default")
                                          for index in range(members_each)])
        group.users.add(*users)
        RoleAssignment.objects.create(role=role, group=group, project=project)
        RoleAssignment.objects.create(role=role, user=User.objects.create(name=f"d-{tag}", domain_id="default"),
                                      project=project)
        member_id = users[0].id
    return member_id


@pytest.mark.django_db
def test_effective_assignments_query_count_does_not_grow(cloud):
    client = Client()
    token = cloud.token("stratus")
    role = Role.objects.create(name=f"qc-{uuid.uuid4().hex[:8]}")
    project = Project.objects.create(name=f"qc-{uuid.uuid4().hex[:8]}", domain_id="default")

    def listed(query):
        client.get("/identity/v3/auth/catalog", HTTP_X_AUTH_TOKEN=token)  # revocations loaded: not counted
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/identity/v3/role_assignments?role.id={role.id}&{query}",
                                  HTTP_X_AUTH_TOKEN=token)
        assert response.status_code == 200, response.content
        return len(captured), response.json()["role_assignments"]

    member = add_groups(role, project, groups=2, members_each=2)
    few, rows = listed("effective&include_names")
    assert len(rows) == 2 * 2 + 2 and all("user" in row and "group" not in row for row in rows)
    assert sum("membership" in row["links"] for row in rows) == 4
    few_for_user, rows = listed(f"effective&include_names&user.id={member}")
    assert [row["user"]["id"] for row in rows] == [member]

    member = add_groups(role, project, groups=20, members_each=5)
    many, rows = listed("effective&include_names")
    assert len(rows) == (2 * 2 + 2) + (20 * 5 + 20)
    many_for_user, rows = listed(f"effective&include_names&user.id={member}")
    assert [row["user"]["id"] for row in rows] == [member]
    assert rows[0]["user"]["domain"]["name"] == "Default"

    assert (few, few_for_user) == (many, many_for_user), ((few, many), (few_for_user, many_for_user))
