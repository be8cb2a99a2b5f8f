"""Query counts that must not grow with the rows: the server-group list
(in-process through Django's test client) and the reconciler."""
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compute import conf, tasks
from compute.models import ComputeNode, Instance, Migration, ServerGroup, TaskState, VmState, flavor_snapshot

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


@pytest.mark.django_db
def test_the_reconciler_reads_nodes_and_resizes_once_not_per_stuck_instance():
    """The stuck instances' nodes and resizes are read with them; the
    writes that move each one on are per instance by nature."""
    node = ComputeNode.objects.create(host=f"rc-{uuid.uuid4().hex[:6]}", hypervisor_uri="test:///default",
                                      hypervisor_hostname="rc", vcpus=64, memory_mb=65536, local_gb=1000,
                                      heartbeat_at=timezone.now())
    long_ago = timezone.now() - timedelta(seconds=2 * conf.TASK_STATE_DEADLINE)

    def add_stuck(count):
        made = []
        for task_state in (TaskState.DELETING, TaskState.POWERING_OFF, TaskState.RESIZE_PREP):
            made += [Instance(name=f"rc-{task_state}-{index}", project_id="rc", user_id="u", flavor_id_at_boot="42",
                              flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, host=node.host, node=node,
                              vm_state=VmState.ACTIVE, task_state=task_state, updated_at=long_ago)
                     for index in range(count)]
        Instance.objects.bulk_create(made)
        for instance in made:
            if instance.task_state == TaskState.RESIZE_PREP:
                Migration.objects.create(instance=instance, project_id="rc", user_id="u", source_compute=node.host,
                                         source_node=node.host, old_flavor=flavor_snapshot(instance),
                                         new_flavor=flavor_snapshot(instance), old_vm_state=VmState.ACTIVE)
        return made

    def related_reads():
        with CaptureQueriesContext(connection) as captured:
            outcome = tasks.reconcile()
        reads = [query["sql"] for query in captured.captured_queries
                 if 'FROM "compute_computenode"' in query["sql"] or 'FROM "compute_migration"' in query["sql"]]
        return len(reads), outcome["stuck"]

    tasks.reconcile()  # whatever earlier tests left stuck is moved on first
    add_stuck(2)
    few, moved = related_reads()
    assert moved == 6
    add_stuck(10)
    many, moved = related_reads()
    assert moved == 30
    assert many == few, (few, many)
    states = set(Instance.objects.filter(project_id="rc").values_list("vm_state", "task_state"))
    assert states == {(VmState.ERROR, None), (VmState.ACTIVE, None)}
