"""An instance's actions from its page, through Django's test client against
the live cloud with a real control worker, simulated nodes and a real
volume worker: the page offers only what the server's state allows, each
action reaches the API (pause, lock, resize with confirm and revert,
rebuild, snapshot, interfaces), refusals are said in the API's words, and the launch
form boots from a volume."""
import uuid

import pytest

from tests.compute import pipeline
from tests.compute.nodes import wait_until
from tests.compute.pipeline import start_nodes, stop_nodes, upload_tiny_image
from tests.volumes import conftest as volume_fixtures

control, volume_worker = pipeline.control, volume_fixtures.volume_worker

pytestmark = pytest.mark.live

DEMO = "stratus-demo"


@pytest.fixture(scope="module")
def nodes(cloud, control, tmp_path_factory):
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("dashact-nodes"), 2, "dashact")
    yield hosts
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def image_id(cloud, tmp_path_factory):
    image = upload_tiny_image(cloud, tmp_path_factory.mktemp("dashact-image"))
    yield image
    cloud.openstack("image", "delete", image)


@pytest.fixture(scope="module")
def network(cloud):
    name = f"dashact-{uuid.uuid4().hex[:6]}"
    made = cloud.openstack("network", "create", name, "-f", "json", cloud=DEMO)
    cloud.openstack("subnet", "create", "--network", name, "--subnet-range", "10.78.0.0/24", f"{name}-subnet",
                    cloud=DEMO)
    yield made
    cloud.openstack("network", "delete", name, cloud=DEMO)


def status_of(cloud, server_id):
    return cloud.connect(DEMO).compute.get_server(server_id).status


def wait_status(cloud, server_id, wanted, timeout=120):
    wait_until(lambda: status_of(cloud, server_id) == wanted and
               not cloud.connect(DEMO).compute.get_server(server_id).task_state,
               timeout=timeout, interval=0.3, message=f"server {server_id} to be {wanted}")


def act(client, server_id, action, **fields):
    """Posts an action from the instance page; the page it leads back to."""
    response = client.post(f"/dashboard/instances/{server_id}/action/", {"action": action, **fields})
    assert response.status_code == 302, response.content.decode()[:2000]
    return client.get(response["Location"]).content.decode()


def offered(client, server_id):
    return client.get(f"/dashboard/instances/{server_id}/").context["offered"]


def test_the_page_offers_what_the_state_allows_and_each_action_reaches_the_api(login, cloud, nodes, image_id,
                                                                               network):
    client = login("demo")
    server = cloud.openstack("server", "create", "--image", image_id, "--flavor", "m1.nano", "--network",
                             network["id"], "--wait", f"act-{uuid.uuid4().hex[:6]}", "-f", "json", cloud=DEMO)
    sid = server["id"]
    try:
        page = client.get(f"/dashboard/instances/{sid}/").content.decode()
        assert 'id="action-stop"' in page and 'id="action-start"' not in page and 'id="action-unpause"' not in page
        assert 'id="server-ports"' in page and "10.78.0." in page and network["name"] in page

        assert "Pause requested." in act(client, sid, "pause")
        wait_status(cloud, sid, "PAUSED")
        assert offered(client, sid) >= {"unpause", "delete"} and "stop" not in offered(client, sid)
        act(client, sid, "unpause")
        wait_status(cloud, sid, "ACTIVE")

        assert "Locked." in act(client, sid, "lock")
        assert offered(client, sid) == {"unlock"}
        # The API refuses a locked server's owner, and the page says so.
        refused = act(client, sid, "stop")
        assert f"Instance {sid} is locked." in refused
        act(client, sid, "unlock")
        assert "stop" in offered(client, sid)

        # Resize: the flavor is a choice of the form; then confirm or revert.
        flavors = client.get(f"/dashboard/instances/{sid}/").context["flavors"]
        bigger = next(flavor for flavor in flavors if flavor["name"] == "m1.tiny")
        assert "Resizing" in act(client, sid, "resize", flavor=bigger["id"])
        wait_status(cloud, sid, "VERIFY_RESIZE", timeout=180)
        page = client.get(f"/dashboard/instances/{sid}/").content.decode()
        assert 'id="action-confirm_resize"' in page and 'id="action-revert_resize"' in page
        assert 'id="action-stop"' not in page
        assert "Reverting the resize." in act(client, sid, "revert_resize")
        wait_status(cloud, sid, "ACTIVE", timeout=180)
        act(client, sid, "resize", flavor=bigger["id"])
        wait_status(cloud, sid, "VERIFY_RESIZE", timeout=180)
        assert "Resize confirmed." in act(client, sid, "confirm_resize")
        wait_status(cloud, sid, "ACTIVE")
        assert cloud.connect(DEMO).compute.get_server(sid).flavor["original_name"] == "m1.tiny"
        # The same flavor again: Nova's refusal in place.
        refused = act(client, sid, "resize", flavor=bigger["id"])
        assert "instances must change flavor" in refused

        # Rebuild: an unknown image is refused in the API's words, a real one rebuilds.
        refused = act(client, sid, "rebuild", image=str(uuid.uuid4()))
        assert 'class="error"' in refused and "Rebuilding." not in refused
        assert "Rebuilding." in act(client, sid, "rebuild", image=image_id)
        wait_status(cloud, sid, "ACTIVE", timeout=180)

        # A second interface on the network, then detached.
        ports_before = {port["id"] for port in client.get(f"/dashboard/instances/{sid}/").context["ports"]}
        assert "Attached an interface." in act(client, sid, "attach_interface", network_id=network["id"])
        ports = client.get(f"/dashboard/instances/{sid}/").context["ports"]
        added = [port for port in ports if port["id"] not in ports_before]
        assert len(added) == 1 and added[0]["addresses"][0].startswith("10.78.0.")
        assert "Detached the interface." in act(client, sid, "detach_interface", port_id=added[0]["id"])
        assert {port["id"] for port in client.get(f"/dashboard/instances/{sid}/").context["ports"]} == ports_before

        # Shelved, then back: the page offers only unshelve meanwhile.
        assert "Shelving" in act(client, sid, "shelve")
        wait_status(cloud, sid, "SHELVED_OFFLOADED", timeout=180)
        assert offered(client, sid) == {"unshelve", "delete", "lock"}
        assert "Unshelve requested." in act(client, sid, "unshelve")
        wait_status(cloud, sid, "ACTIVE", timeout=180)

        # Rescued, then back: only unrescue meanwhile.
        assert "Rescuing" in act(client, sid, "rescue")
        wait_status(cloud, sid, "RESCUE", timeout=180)
        assert offered(client, sid) == {"unrescue", "delete", "lock"}
        assert "Unrescue requested." in act(client, sid, "unrescue")
        wait_status(cloud, sid, "ACTIVE", timeout=180)

        # Stopped: start is offered, stop is not.
        act(client, sid, "stop")
        wait_status(cloud, sid, "SHUTOFF")
        assert {"start", "rebuild", "volumes"} <= offered(client, sid) and "stop" not in offered(client, sid)
        assert act(client, sid, "no-such-action").count("Unknown action") == 1
    finally:
        cloud.openstack("server", "delete", "--wait", sid, cloud=DEMO)


def test_another_projects_server_is_the_404_page_for_every_action(login, cloud, nodes, image_id):
    server = cloud.openstack("server", "create", "--image", image_id, "--flavor", "m1.nano", "--nic", "none",
                             "--wait", f"admins-{uuid.uuid4().hex[:6]}", "-f", "json")
    try:
        demo = login("demo")
        for action in ("stop", "lock", "resize", "rebuild", "snapshot", "attach_interface", "associate_floating_ip",
                       "attach_volume"):
            page = demo.post(f"/dashboard/instances/{server['id']}/action/", {"action": action})
            assert page.status_code == 404 and b"Not found (404)" in page.content, action
        assert cloud.connect().compute.get_server(server["id"]).status == "ACTIVE"
    finally:
        cloud.openstack("server", "delete", "--wait", server["id"])


def test_the_launch_form_boots_from_a_new_volume(login, cloud, nodes, image_id, volume_worker):
    client = login("demo")
    name = f"bfv-{uuid.uuid4().hex[:6]}"
    page = client.post("/dashboard/instances/launch/", {
        "name": name, "image": image_id, "flavor": "42", "count": "1", "boot_from_volume": "on",
        "volume_size": "0"})
    assert page.status_code == 400 and b'id="launch-error"' in page.content and b"volume_size" in page.content
    assert b'id="boot_from_volume" name="boot_from_volume" checked' in page.content
    response = client.post("/dashboard/instances/launch/", {
        "name": name, "image": image_id, "flavor": "42", "count": "1", "boot_from_volume": "on",
        "volume_size": "2"})
    assert response.status_code == 302, response.content.decode()[:2000]
    compute = cloud.connect(DEMO).compute
    server = wait_until(lambda: next((found for found in compute.servers(name=name) if found.status != "BUILD"),
                                     None), timeout=180, interval=0.5, message="the server to boot")
    try:
        assert server.status == "ACTIVE"
        page = client.get(f"/dashboard/instances/{server.id}/")
        (root,) = page.context["volumes"]
        assert root["device"] == "/dev/vda" and root["size"] == 2 and page.context["row"]["image"] == "(volume)"
    finally:
        cloud.openstack("server", "delete", "--wait", server.id, cloud=DEMO)


def test_a_floating_ip_is_associated_and_disassociated_from_the_page(login, cloud, nodes, image_id, network):
    external = f"dashact-ext-{uuid.uuid4().hex[:6]}"
    cloud.openstack("network", "create", "--external", external)
    cloud.openstack("subnet", "create", "--network", external, "--subnet-range", "172.31.77.0/24", "--no-dhcp",
                    f"{external}-subnet")
    router = f"dashact-router-{uuid.uuid4().hex[:6]}"
    cloud.openstack("router", "create", router, cloud=DEMO)
    cloud.openstack("router", "set", "--external-gateway", external, router, cloud=DEMO)
    cloud.openstack("router", "add", "subnet", router, f"{network['name']}-subnet", cloud=DEMO)
    floating = cloud.openstack("floating", "ip", "create", external, "-f", "json", cloud=DEMO)
    server = cloud.openstack("server", "create", "--image", image_id, "--flavor", "m1.nano", "--network",
                             network["id"], "--wait", f"fip-{uuid.uuid4().hex[:6]}", "-f", "json", cloud=DEMO)
    try:
        client = login("demo")
        page = client.get(f"/dashboard/instances/{server['id']}/")
        assert 'id="associate-floating-ip"' in page.content.decode()
        (port,) = page.context["ports"]
        done = act(client, server["id"], "associate_floating_ip", floating_ip_id=floating["id"], port_id=port["id"])
        assert "Associated the floating IP." in done
        (port,) = client.get(f"/dashboard/instances/{server['id']}/").context["ports"]
        assert [ip["floating_ip_address"] for ip in port["floating_ips"]] == [floating["floating_ip_address"]]
        assert floating["floating_ip_address"] in act(client, server["id"], "stop")  # shown on the page
        done = act(client, server["id"], "disassociate_floating_ip", floating_ip_id=floating["id"])
        assert "Disassociated the floating IP." in done
        (port,) = client.get(f"/dashboard/instances/{server['id']}/").context["ports"]
        assert port["floating_ips"] == []
    finally:
        cloud.openstack("server", "delete", "--wait", server["id"], cloud=DEMO)
        cloud.openstack("floating", "ip", "delete", floating["id"], cloud=DEMO)
        cloud.openstack("router", "remove", "subnet", router, f"{network['name']}-subnet", cloud=DEMO)
        cloud.openstack("router", "delete", router, cloud=DEMO)
        cloud.openstack("network", "delete", external)


def test_the_snapshot_action_makes_an_image_of_the_server_that_it_is_offered_in(login, cloud, nodes, image_id):
    client = login("demo")
    demo = cloud.connect(DEMO)
    sid = demo.compute.create_server(name=f"act-{uuid.uuid4().hex[:6]}", image_id=image_id, networks="none",
                                     flavor_id=demo.compute.find_flavor("m1.nano", ignore_missing=False).id).id
    try:
        wait_status(cloud, sid, "ACTIVE")
        page = client.get(f"/dashboard/instances/{sid}/").content.decode()
        assert 'id="action-snapshot"' in page and 'id="snapshot-name"' in page
        # A name the API refuses is said in its words, and no image is made.
        refused = act(client, sid, "snapshot", name="   ")
        assert 'class="error"' in refused and "createImage.name" in refused
        assert not [found for found in demo.image.images() if found.instance_uuid == sid]
        name = f"dash-snap-{uuid.uuid4().hex[:6]}"
        assert "Snapshot requested" in act(client, sid, "snapshot", name=name)
        made = wait_until(lambda: next((found for found in demo.image.images(name=name)
                                        if found.status == "active"), None), timeout=120, interval=0.5,
                          message="the snapshot to be active")
        assert made.instance_uuid == sid and made.visibility == "private"
        wait_status(cloud, sid, "ACTIVE")
        assert [action.action for action in demo.compute.server_actions(sid)][:1] == ["createImage"]
        # A stopped server can be snapshotted too.
        act(client, sid, "stop")
        wait_status(cloud, sid, "SHUTOFF")
        assert "snapshot" in offered(client, sid)
        demo.image.delete_image(made.id)
    finally:
        cloud.openstack("server", "delete", "--wait", sid, cloud=DEMO)
