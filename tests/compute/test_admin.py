"""The operator's tools: the admin site's reset-state and disable-node
actions, and os-resetState through the CLI."""
import uuid

import pytest
from django.contrib.auth import get_user_model
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
