"""Query counts that must not grow with the rows: the server-group list
(in-process through Django's test client) and the reconciler."""
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from compute.models import Instance, ServerGroup, VmState

pytestmark = pytest.mark.live

V = {"HTTP_OPENSTACK_API_VERSION": "compute 2.60"}


@pytest.fixture(scope="module")
def admin_token(cloud):
    return cloud.token("stratus")


def project_of(client, token):
    return client.get("/identity/v3/auth/tokens", HTTP_X_AUTH_TOKEN=token,
                      HTTP_X_SUBJECT_TOKEN=token).json()["token"]["project"]["id"]


@pytest.mark.django_db
def test_server_group_list_query_count_does_not_grow_with_groups(admin_token):
    client = Client()
    headers = {"HTTP_X_AUTH_TOKEN": admin_token, **V}
    project_id = project_of(client, admin_token)
    ServerGroup.objects.filter(project_id=project_id).delete()

    def add(count, prefix):
        for index in range(count):
            group = ServerGroup.objects.create(name=f"{prefix}-{index}", project_id=project_id, user_id="u",
                                               policy="anti-affinity")
            Instance.objects.bulk_create([
                Instance(name=f"{prefix}-{index}-{member}", project_id=project_id, user_id="u",
                         flavor_id_at_boot="42", flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1,
                         server_group=group, vm_state=VmState.ACTIVE, deleted=member == 2)
                for member in range(3)])

    def queries():
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/compute/v2.1/os-server-groups", **headers)
        assert response.status_code == 200
        return len(captured), response.json()["server_groups"]

    queries()  # the token is validated once, then cached
    add(2, "sg-a")
    few, listed = queries()
    assert len(listed) == 2
    add(20, "sg-b")
    many, listed = queries()
    assert len(listed) == 22
    assert many == few, (few, many)
    # Deleted members are not listed.
    assert all(len(group["members"]) == 2 for group in listed)
    by_name = {group["name"]: group for group in listed}
    expected = {str(pk) for pk in Instance.objects.filter(name__startswith="sg-b-3-", deleted=False)
                .values_list("pk", flat=True)}
    assert set(by_name["sg-b-3"]["members"]) == expected
