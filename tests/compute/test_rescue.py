"""Rescue and unrescue (Nova's os-rescue) through the real CLI and API, a
real control worker and a simulated node: a rescued server runs from a
fresh disk of the rescue image with its own disk attached second, shows
RESCUE, refuses what Nova refuses, and is back on its own disk once
unrescued. The rescue domain's definition is checked in process."""
import json
import subprocess
import uuid
from xml.etree import ElementTree

import pytest

from compute.models import Instance, InstanceAction, VmState
from compute.node import agent
from compute.virt import domain_xml
from tests.compute import pipeline
from tests.compute.nodes import wait_until
from tests.compute.pipeline import start_nodes, stop_nodes, unlimited_quota, upload_tiny_image, wait_settled

live_db, control = pipeline.live_db, pipeline.control

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def node(cloud, control, tmp_path_factory):
    """One simulated node; (its host, its nodes directory)."""
    directory = tmp_path_factory.mktemp("rescue")
    worker, (host,) = start_nodes(cloud, directory, 1, "rescue", STRATUS_IMAGE_CACHE_DIR=str(directory / "cache"))
    yield host, directory / "nodes" / host
    stop_nodes(worker, [host])


def boot(cloud, image, project="stratus"):
    unlimited_quota(cloud)
    conn = cloud.connect(project)
    server_id = conn.compute.create_server(name=f"rescue-{uuid.uuid4().hex[:6]}", image_id=image, networks="none",
                                           flavor_id=conn.compute.find_flavor("m1.nano", ignore_missing=False).id).id
    assert wait_settled(cloud, [server_id])[server_id].status == "ACTIVE"
    return server_id


def settled(cloud, server_id, status):
    shown = cloud.openstack("server", "show", server_id, "-f", "json")
    return shown["status"] == status and not shown["OS-EXT-STS:task_state"] and shown


def action(api, server_id, body, token):
    return api.post(f"/compute/v2.1/servers/{server_id}/action", json=body, token=token)


def backing_file(path):
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True,
                                     capture_output=True, text=True).stdout)
    return info.get("backing-filename")


def test_rescue_runs_from_the_rescue_image_and_unrescue_brings_the_own_disk_back(cloud, node, image):
    _host, directory = node
    server_id = boot(cloud, image)
    rescue_disk = directory / "instances" / server_id / "disk.rescue"
    cloud.openstack("server", "rescue", "--image", image, "--password", "let-me-in", server_id)
    shown = wait_until(lambda: settled(cloud, server_id, "RESCUE"), timeout=120, message="RESCUE")
    assert shown["OS-EXT-STS:vm_state"] == "rescued" and shown["OS-EXT-STS:power_state"] == 1  # running
    assert rescue_disk.exists() and backing_file(rescue_disk).endswith(image)
    cloud.openstack("server", "unrescue", server_id)
    wait_until(lambda: settled(cloud, server_id, "ACTIVE"), timeout=120, message="ACTIVE again")
    assert not rescue_disk.exists()
    assert (directory / "instances" / server_id / "disk").exists()
    actions = [row.action for row in InstanceAction.objects.filter(instance_id=server_id).order_by("start_time")]
    assert actions == ["create", "rescue", "unrescue"]
    assert all(row.finish_time for row in InstanceAction.objects.filter(instance_id=server_id))
    cloud.openstack("server", "delete", "--wait", server_id)


def test_a_rescued_server_refuses_what_nova_refuses_and_can_be_deleted(cloud, api, node, image):
    _host, directory = node
    token = cloud.token("stratus")
    server_id = boot(cloud, image)
    answer = action(api, server_id, {"rescue": None}, token)
    assert answer.status_code == 200 and answer.json()["adminPass"]
    wait_until(lambda: settled(cloud, server_id, "RESCUE"), timeout=120, message="RESCUE")
    for body in ({"reboot": {"type": "HARD"}}, {"rescue": None}, {"os-stop": None}, {"pause": None},
                 {"rebuild": {"imageRef": image}}, {"resize": {"flavorRef": "1"}}):
        refused = action(api, server_id, body, token)
        assert refused.status_code == 409, (body, refused.text)
        assert "rescued" in refused.json()["conflictingRequest"]["message"]
    assert Instance.objects.get(pk=server_id).vm_state == VmState.RESCUED
    cloud.openstack("server", "delete", "--wait", server_id)
    assert not (directory / "instances" / server_id).exists()


def test_bad_rescues_are_refused_and_change_nothing(cloud, api, node, image):
    token, demo = cloud.token("stratus"), cloud.token("stratus-demo")
    server_id = boot(cloud, image)
    try:
        # Another project's server is not there.
        assert action(api, server_id, {"rescue": None}, demo).status_code == 404
        for body, field in (({"rescue": {"rescue_image_ref": str(uuid.uuid4())}}, "rescue_image_ref"),
                            ({"rescue": {"rescue_image_ref": 5}}, "rescue_image_ref"),
                            ({"rescue": {"adminPass": 5}}, "adminPass"),
                            ({"rescue": {"surprise": 1}}, "rescue"),
                            ({"rescue": "now"}, "rescue")):
            refused = action(api, server_id, body, token)
            assert refused.status_code == 400 and field in refused.json()["badRequest"]["message"], refused.text
        assert action(api, server_id, {"unrescue": None}, token).status_code == 409  # not rescued
        instance = Instance.objects.get(pk=server_id)
        assert (instance.vm_state, instance.task_state, instance.rescue_image_id) == (VmState.ACTIVE, None, "")
        assert not InstanceAction.objects.filter(instance_id=server_id, action__in=("rescue", "unrescue")).exists()
    finally:
        cloud.openstack("server", "delete", "--wait", server_id)


@pytest.mark.django_db
def test_the_rescue_domain_boots_the_rescue_disk_with_the_own_disk_second(tmp_path, settings):
    instance = Instance.objects.create(name="rescued", project_id="p", user_id="u", flavor_id_at_boot="42",
                                       flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, image_id="img",
                                       vm_state=VmState.ACTIVE, host="in-process")
    node = agent.Node("in-process", driver=None)
    node.directory = tmp_path
    xml = ElementTree.fromstring(domain_xml.build(agent.rescue_spec(node, instance), "qemu"))
    disks = {disk.find("target").get("dev"): disk.find("source").get("file") for disk in xml.iter("disk")
             if disk.get("device") == "disk"}
    assert disks == {"vda": str(node.instance_dir(instance.pk) / "disk.rescue"),
                     "vdb": str(node.disk_path(instance.pk))}
