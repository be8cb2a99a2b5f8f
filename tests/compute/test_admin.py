"""The operator's tools: the admin site's reset-state and disable-node
actions, and os-resetState through the CLI."""
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.forms import MultiWidget
from django.test import Client
from django.utils import timezone

from compute.models import ComputeNode, Instance, Service, TaskState, VmState
from tests.compute.pipeline import upload_tiny_image

pytestmark = pytest.mark.live


@pytest.fixture
def operator(db):
    user = get_user_model().objects.create_superuser("operator", "op@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_admin_site_resets_a_stuck_instance_and_disables_a_node(operator):
    node = ComputeNode.objects.create(host=f"adm-{uuid.uuid4().hex[:6]}", hypervisor_uri="test:///default",
                                      hypervisor_hostname="adm", heartbeat_at=timezone.now())
    Service.objects.create(host=node.host, binary="stratus-compute")
    instance = Instance.objects.create(name="stuck", project_id="p", user_id="u", flavor_id_at_boot="1",
                                       flavor_name="m1.tiny", vcpus=1, memory_mb=512, root_gb=1, host=node.host,
                                       node=node, vm_state=VmState.ACTIVE, task_state=TaskState.POWERING_OFF)
    response = operator.post("/admin/compute/instance/", {"action": "reset_to_error",
                                                          "_selected_action": [str(instance.pk)]})
    assert response.status_code == 302
    instance.refresh_from_db()
    assert (instance.vm_state, instance.task_state) == (VmState.ERROR, None)

    operator.post("/admin/compute/computenode/", {"action": "disable_nodes", "_selected_action": [str(node.pk)]})
    node.refresh_from_db()
    assert node.disabled and "admin site" in node.disabled_reason
    assert Service.objects.get(host=node.host).disabled
    page = operator.get(f"/admin/compute/instance/{instance.pk}/change/")
    assert page.status_code == 200


def test_reset_state_through_the_cli(cloud, api, tmp_path):
    token = cloud.token()
    image_id = upload_tiny_image(cloud, tmp_path)
    created = api.post("/compute/v2.1/servers", token=token, json={"server": {
        "name": "to-reset", "imageRef": image_id, "flavorRef": "42", "networks": "none"}},
        headers={"OpenStack-API-Version": "compute 2.60"})
    server_id = created.json()["server"]["id"]
    cloud.openstack("server", "set", "--auto-approve", "--state", "error", server_id)
    shown = cloud.openstack("server", "show", server_id, "-f", "json")
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ERROR", None)
    refused = cloud.openstack("server", "set", "--auto-approve", "--state", "active", server_id, cloud="stratus-demo",
                              expect_fail=True)
    assert "No Server found" in refused.stderr or "404" in refused.stderr
    cloud.openstack("server", "delete", "--wait", server_id)


def posted_back(response, **changes):
    """The change form of `response` as a browser posts it back, with
    `changes` on top (for fields the form shows read-only, they are what a
    crafted request would send)."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = field.prepare_value(form[name].value())
        if isinstance(field.widget, MultiWidget):  # a date and a time
            for index, (widget, part) in enumerate(zip(field.widget.widgets, field.widget.decompress(value))):
                data[f"{name}_{index}"] = widget.format_value(part) or ""
            continue
        data[name] = "" if value is None else value
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({f"{inline.formset.prefix}-{name}": management[name].value() for name in management.fields})
    data.update(changes)
    return data


def test_admin_change_forms_cannot_touch_state_host_or_usage(operator):
    node = ComputeNode.objects.create(host=f"adm-{uuid.uuid4().hex[:6]}", hypervisor_uri="test:///default",
                                      hypervisor_hostname="adm", vcpus=8, memory_mb=4096, local_gb=50,
                                      vcpus_used=2, memory_mb_used=1024, local_gb_used=2, heartbeat_at=timezone.now())
    instance = Instance.objects.create(name="held", project_id="p", user_id="u", flavor_id_at_boot="1",
                                       flavor_name="m1.tiny", vcpus=2, memory_mb=1024, root_gb=2, host=node.host,
                                       node=node, vm_state=VmState.ACTIVE, power_state=1)
    page = f"/admin/compute/instance/{instance.pk}/change/"
    response = operator.post(page, posted_back(
        operator.get(page), name="renamed", vm_state=VmState.STOPPED, task_state=TaskState.DELETING, host="elsewhere",
        power_state="4", vcpus="1", memory_mb="1", deleted="on", locked="on"))
    assert response.status_code == 302, (response.context["adminform"].form.errors if response.status_code == 200 else "")
    instance.refresh_from_db()
    assert instance.name == "renamed"
    assert (instance.vm_state, instance.task_state, instance.power_state, instance.host, instance.node_id,
            instance.vcpus, instance.memory_mb, instance.deleted, instance.locked) == (
        VmState.ACTIVE, None, 1, node.host, node.pk, 2, 1024, False, False)

    page = f"/admin/compute/computenode/{node.pk}/change/"
    response = operator.post(page, posted_back(
        operator.get(page), ram_allocation_ratio="1.5", vcpus_used="0", memory_mb_used="0", local_gb_used="0",
        running_vms="7", vcpus="64", disabled="on"))
    assert response.status_code == 302, (response.context["adminform"].form.errors if response.status_code == 200 else "")
    node.refresh_from_db()
    assert node.ram_allocation_ratio == 1.5
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used, node.running_vms, node.vcpus,
            node.disabled) == (2, 1024, 2, 0, 8, False)
    assert operator.get("/admin/compute/instance/add/").status_code == 403


SIMULATED = dict(STRATUS_SIMULATED_VCPUS="8", STRATUS_SIMULATED_MEMORY_MB="8192", STRATUS_SIMULATED_DISK_GB="100",
                 STRATUS_HEARTBEAT_INTERVAL="0.5", STRATUS_POWER_SYNC_INTERVAL="0.5")


def test_deleting_an_instance_in_the_admin_goes_through_the_delete_path(django_db_setup, django_db_blocker,
                                                                         tmp_path):
    from compute.node import agent
    from compute.node import tasks as node_tasks
    from tests.compute.nodes import NodeWorker, forget_hosts, make_instance, wait_until

    prefix = f"admdel-{uuid.uuid4().hex[:6]}-"
    host = f"{prefix}1"
    nodes_dir = tmp_path / "nodes"
    with django_db_blocker.unblock():
        user = get_user_model().objects.create_superuser(f"op-{uuid.uuid4().hex[:6]}", "op@example.com", "pw")
        worker = NodeWorker(["--simulate", 1, "--prefix", prefix], tmp_path / "worker.log",
                            STRATUS_NODES_DIR=str(nodes_dir), **SIMULATED).start()
        try:
            instance = make_instance(host, vcpus=2, memory_mb=512)
            for task in (node_tasks.prepare_disk, node_tasks.spawn):
                task.apply_async(args=[str(instance.pk)], queue=f"compute.{host}").get(timeout=60)
            wait_until(lambda: ComputeNode.objects.get(host=host).running_vms == 1, message="the domain running")
            node = ComputeNode.objects.get(host=host)
            assert (node.vcpus_used, node.memory_mb_used) == (2, 512)
            files = agent.Node(host, None)
            files.directory = nodes_dir / host
            assert files.disk_path(instance.pk).exists()

            client = Client()
            client.force_login(user)
            response = client.post(f"/admin/compute/instance/{instance.pk}/delete/", {"post": "yes"})
            assert response.status_code == 302

            def deleted():
                return Instance.objects.filter(pk=instance.pk, deleted=True).exists()

            wait_until(deleted, timeout=60, message="the node to delete the instance")
            node.refresh_from_db()
            assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (0, 0, 0)
            assert not files.instance_dir(instance.pk).exists()
            wait_until(lambda: ComputeNode.objects.get(host=host).running_vms == 0, message="the domain destroyed")
            row = Instance.objects.get(pk=instance.pk)  # kept, as the API's delete keeps it, for history
            assert row.vm_state == VmState.DELETED
            action = row.actions.get(action="delete")
            assert action.user_id == f"admin-site:{user.username}" and action.finish_time is not None
            events = list(action.events.values_list("event", "result"))
            assert events == [("compute_terminate_instance", "Success")]
            # A deleted instance cannot be deleted again there.
            assert client.get(f"/admin/compute/instance/{instance.pk}/delete/").status_code == 403
        finally:
            worker.stop()
            forget_hosts([host])
            user.delete()


def test_admin_deletes_a_compute_host_as_the_api_does_and_never_one_with_instances(operator):
    from compute.models import Aggregate, AggregateHost, Migration, flavor_snapshot

    node = ComputeNode.objects.create(host=f"adm-{uuid.uuid4().hex[:6]}", hypervisor_uri="test:///default",
                                      hypervisor_hostname="adm", heartbeat_at=timezone.now())
    Service.objects.create(host=node.host, binary=Service.COMPUTE_BINARY)
    aggregate = Aggregate.objects.create(name=f"agg-{node.host}")
    AggregateHost.objects.create(aggregate=aggregate, host=node.host)
    instance = Instance.objects.create(name="resizing", project_id="p", user_id="u", flavor_id_at_boot="1",
                                       flavor_name="m1.tiny", vcpus=1, memory_mb=512, root_gb=1, host=node.host,
                                       node=node, vm_state=VmState.RESIZED)
    Migration.objects.create(instance=instance, project_id="p", user_id="u", status=Migration.Status.FINISHED,
                             source_compute=node.host, source_node=node.host, old_flavor=flavor_snapshot(instance),
                             new_flavor=flavor_snapshot(instance), old_vm_state=VmState.ACTIVE)
    node_delete = f"/admin/compute/computenode/{node.pk}/delete/"
    assert operator.get(node_delete).status_code == 403  # an instance lives there
    # An instance with a resize is offered for deletion (it is only marked
    # deleted: nothing cascades), and its migration cannot be deleted alone.
    page = operator.get(f"/admin/compute/instance/{instance.pk}/delete/")
    assert page.status_code == 200 and b"would require deleting" not in page.content
    assert operator.get(f"/admin/compute/migration/{instance.migrations.get().pk}/delete/").status_code == 403

    instance.mark_deleted()
    assert operator.post(node_delete, {"post": "yes"}).status_code == 302
    assert not ComputeNode.objects.filter(host=node.host).exists()
    assert not Service.objects.filter(host=node.host).exists()
    assert not AggregateHost.objects.filter(host=node.host).exists()


def test_deleting_instances_of_a_down_node_in_bulk_gives_the_node_its_capacity_back(operator):
    from compute.models import claim_resources

    node = ComputeNode.objects.create(host=f"adm-{uuid.uuid4().hex[:6]}", hypervisor_uri="test:///default",
                                      hypervisor_hostname="adm", vcpus=8, memory_mb=4096, local_gb=50,
                                      heartbeat_at=timezone.now() - timezone.timedelta(hours=1))
    instances = [Instance.objects.create(name=f"on-down-{index}", project_id="p", user_id="u",
                                         flavor_id_at_boot="1", flavor_name="m1.tiny", vcpus=1, memory_mb=512,
                                         root_gb=1, host=node.host, node=node, vm_state=VmState.ACTIVE)
                 for index in range(3)]
    for instance in instances:
        assert claim_resources(instance, node) is not None
    node.refresh_from_db()
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (3, 1536, 3)
    response = operator.post("/admin/compute/instance/", {
        "action": "delete_selected", "_selected_action": [str(instance.pk) for instance in instances[:2]],
        "post": "yes"})
    assert response.status_code == 302
    node.refresh_from_db()
    # The node is down: the records are deleted here (the API's local delete).
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (1, 512, 1)
    assert Instance.objects.filter(pk__in=[i.pk for i in instances[:2]], deleted=True).count() == 2
    assert not Instance.objects.get(pk=instances[2].pk).deleted
