"""The Volumes and Snapshots panels through Django's test client, in-process
against the live cloud with a real control worker, a real volume worker
(file back end) and a simulated node: create, extend, snapshot, a volume
from a snapshot, attach to a server and detach, delete; refusals in the
API's words on the page; another project's volume is the 404 page; the
lists page on the server with a query count that does not grow."""
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cloud.auth import validator
from dashboard.auth import TOKEN
from tests.compute import pipeline
from tests.compute.nodes import wait_until
from tests.compute.pipeline import start_nodes, stop_nodes, upload_tiny_image
from tests.volumes import conftest as volume_fixtures
from tests.volumes.conftest import wait_status
from volumes.models import Volume, VolumeType

control, volume_worker = pipeline.control, volume_fixtures.volume_worker

pytestmark = pytest.mark.live

DEMO = "stratus-demo"


@pytest.fixture(scope="module")
def nodes(cloud, control, tmp_path_factory):
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("dashvol-nodes"), 1, "dashvol")
    yield hosts
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def image_id(cloud, tmp_path_factory):
    image = upload_tiny_image(cloud, tmp_path_factory.mktemp("dashvol-image"))
    yield image
    cloud.openstack("image", "delete", image)


def new_name(word):
    return f"dash-{word}-{uuid.uuid4().hex[:6]}"


def page_text(response):
    return response.content.decode()


def created_volume_id(response):
    """The volume a create form made: the page it redirects to."""
    assert response.status_code == 302, page_text(response)[:2000]
    return response["Location"].rstrip("/").rsplit("/", 1)[-1]


def followed(client, response):
    """The page a form's redirect leads to (with its messages)."""
    assert response.status_code == 302, page_text(response)[:2000]
    return page_text(client.get(response["Location"]))


def test_create_extend_snapshot_and_a_volume_from_the_snapshot(login, cloud, volume_worker):
    client = login("demo")
    page = client.get("/dashboard/volumes/")
    assert page.status_code == 200 and 'id="volume-create"' in page_text(page)
    assert 'aria-current="page">Volumes' in page_text(page)

    name = new_name("vol")
    volume_id = created_volume_id(client.post("/dashboard/volumes/", {"name": name, "size": "1", "source": ""}))
    wait_status(cloud, volume_id, "available", cloud_name=DEMO)
    assert 'id="volume-bootable">no' in page_text(client.get(f"/dashboard/volumes/{volume_id}/"))
    listing = page_text(client.get("/dashboard/volumes/"))
    assert f'id="volume-{volume_id}"' in listing and name in listing

    # Extending to the same size: Cinder's words on the volume's page.
    refused = followed(client, client.post(f"/dashboard/volumes/{volume_id}/action/",
                                           {"action": "extend", "new_size": "1"}))
    assert "New size for extend must be greater than current size" in refused
    assert 'class="error"' in refused
    extended = followed(client, client.post(f"/dashboard/volumes/{volume_id}/action/",
                                            {"action": "extend", "new_size": "2"}))
    assert "Extending the volume." in extended
    assert wait_status(cloud, volume_id, "available", cloud_name=DEMO)["size"] == 2
    assert 'id="volume-size">2 GB' in page_text(client.get(f"/dashboard/volumes/{volume_id}/"))

    snapshot_name = new_name("snap")
    response = client.post(f"/dashboard/volumes/{volume_id}/action/", {"action": "snapshot", "name": snapshot_name})
    assert response["Location"] == "/dashboard/snapshots/"
    snapshots = client.get("/dashboard/snapshots/")
    snapshot = next(row for row in snapshots.context["snapshots"] if row["name"] == snapshot_name)
    assert snapshot["volume_name"] == name and 'aria-current="page">Snapshots' in page_text(snapshots)
    wait_status(cloud, snapshot["id"], "available", kind="volume snapshot", cloud_name=DEMO)
    assert snapshot_name in page_text(client.get(f"/dashboard/volumes/{volume_id}/"))

    # The snapshot's "Create volume" link preselects it in the form.
    form = client.get("/dashboard/volumes/", {"snapshot": snapshot["id"]})
    assert f'<option value="{snapshot["id"]}" selected>' in page_text(form)
    copy_name = new_name("copy")
    copy_id = created_volume_id(client.post("/dashboard/volumes/", {
        "name": copy_name, "size": "", "source": "snapshot", "snapshot": snapshot["id"]}))
    copy = wait_status(cloud, copy_id, "available", cloud_name=DEMO)
    assert copy["size"] == 2 and copy["snapshot_id"] == snapshot["id"]

    # A volume with snapshots is not deleted: Cinder says why.
    refused = followed(client, client.post(f"/dashboard/volumes/{volume_id}/action/", {"action": "delete"}))
    assert "must not be migrating, attached, belong to a group, have snapshots" in refused
    assert followed(client, client.post(f"/dashboard/snapshots/{snapshot['id']}/delete/"))
    wait_until(lambda: snapshot["id"] not in page_text(client.get("/dashboard/snapshots/")), timeout=60,
               message="the snapshot to go")
    for doomed in (copy_id, volume_id):
        response = client.post(f"/dashboard/volumes/{doomed}/action/", {"action": "delete"})
        assert response["Location"] == "/dashboard/volumes/"
    wait_until(lambda: not Volume.objects.filter(pk__in=[copy_id, volume_id]).exclude(status="deleted").exists(),
               timeout=60, message="the volumes to go")


def test_a_refused_create_shows_cinders_message_in_the_form(login, cloud, volume_worker):
    client = login("demo")
    name = new_name("bad")
    page = client.post("/dashboard/volumes/", {"name": name, "size": "many", "source": ""})
    assert page.status_code == 400
    text = page_text(page)
    assert 'id="volume-error"' in text and "size" in text and "valid integer" in text
    assert f'value="{name}"' in text  # the form keeps what was typed
    page = client.post("/dashboard/volumes/", {"name": name, "size": "1", "source": "snapshot",
                                               "snapshot": str(uuid.uuid4())})
    # Another project's or no snapshot: Cinder's 404 is the refusal here, said in place.
    assert page.status_code in (400, 404)
    assert not Volume.objects.filter(name=name).exists()


def test_a_volume_from_an_image_attaches_to_a_server_and_shows_on_its_page(login, cloud, volume_worker, nodes,
                                                                           image_id):
    client = login("demo")
    server = cloud.openstack("server", "create", "--image", image_id, "--flavor", "m1.nano", "--nic", "none",
                             "--wait", new_name("srv"), "-f", "json", cloud=DEMO)
    name = new_name("data")
    volume_id = created_volume_id(client.post("/dashboard/volumes/", {
        "name": name, "size": "1", "source": "image", "image": image_id}))
    try:
        wait_status(cloud, volume_id, "available", cloud_name=DEMO)
        page = client.get(f"/dashboard/volumes/{volume_id}/")
        assert 'id="volume-bootable">yes' in page_text(page)
        assert f'<option value="{server["id"]}">' in page_text(page)
        attached = followed(client, client.post(f"/dashboard/volumes/{volume_id}/action/",
                                                {"action": "attach", "server_id": server["id"]}))
        assert "Attached the volume." in attached and f"{server['name']}</a> on /dev/vdb" in attached
        assert wait_status(cloud, volume_id, "in-use", cloud_name=DEMO)
        listing = page_text(client.get("/dashboard/volumes/"))
        assert f"{server['name']}</a> on /dev/vdb" in listing
        instance = page_text(client.get(f"/dashboard/instances/{server['id']}/"))
        assert f'id="attached-{volume_id}"' in instance and "/dev/vdb" in instance and "1 GB" in instance
        # In use, it still grows (Cinder 3.42), and stays attached.
        grown = followed(client, client.post(f"/dashboard/volumes/{volume_id}/action/",
                                             {"action": "extend", "new_size": "2"}))
        assert "Extending the volume." in grown, grown
        assert wait_status(cloud, volume_id, "in-use", cloud_name=DEMO)
        assert cloud.connect(DEMO).block_storage.get_volume(volume_id).size == 2
        # In use: not deleted, in Cinder's words.
        refused = followed(client, client.post(f"/dashboard/volumes/{volume_id}/action/", {"action": "delete"}))
        assert "attached" in refused and "Deleting the volume." not in refused
        detached = followed(client, client.post(f"/dashboard/volumes/{volume_id}/action/",
                                                {"action": "detach", "server_id": server["id"]}))
        assert "Detached the volume." in detached
        assert wait_status(cloud, volume_id, "available", cloud_name=DEMO)
        assert f'id="attached-{volume_id}"' not in page_text(client.get(f"/dashboard/instances/{server['id']}/"))
    finally:
        cloud.openstack("server", "delete", "--wait", server["id"], cloud=DEMO)
        cloud.connect(DEMO).block_storage.delete_volume(volume_id)


def test_another_projects_volume_and_snapshot_are_the_404_page(login, cloud, volume_worker):
    storage = cloud.connect("stratus").block_storage
    volume = storage.create_volume(size=1, name=new_name("admins"))
    try:
        wait_status(cloud, volume.id, "available")
        snapshot = storage.create_snapshot(volume_id=volume.id, name=new_name("admins-snap"))
        wait_status(cloud, snapshot.id, "available", kind="volume snapshot")
        admin = login("admin")
        assert admin.get(f"/dashboard/volumes/{volume.id}/").status_code == 200
        demo = login("demo")
        page = demo.get(f"/dashboard/volumes/{volume.id}/")
        assert page.status_code == 404 and b"Not found (404)" in page.content
        for action in ("delete", "extend", "snapshot"):
            response = demo.post(f"/dashboard/volumes/{volume.id}/action/", {"action": action, "new_size": "3",
                                                                              "name": "x"})
            assert response.status_code == 404, action
        assert demo.post(f"/dashboard/snapshots/{snapshot.id}/delete/").status_code == 404
        assert volume.id not in page_text(demo.get("/dashboard/volumes/"))
        assert snapshot.id not in page_text(demo.get("/dashboard/snapshots/"))
        assert storage.get_volume(volume.id).status == "available" and storage.get_volume(volume.id).size == 1
        storage.delete_snapshot(snapshot.id)
        wait_until(lambda: not list(storage.snapshots(volume_id=volume.id)), timeout=60, message="snapshot gone")
    finally:
        storage.delete_volume(volume.id)


@pytest.mark.django_db
def test_the_volume_list_pages_on_the_server_with_a_flat_query_count(login, cloud):
    client = login("demo")
    project = validator()(client.session[TOKEN]).project_id
    volume_type = VolumeType.objects.get(name="__DEFAULT__") if VolumeType.objects.filter(
        name="__DEFAULT__").exists() else VolumeType.objects.first()

    def add(count, prefix):
        Volume.objects.bulk_create([
            Volume(project_id=project, user_id="u", name=f"{prefix}-{index}", size=1, status="available",
                   volume_type=volume_type, availability_zone="nova") for index in range(count)])

    def queries(**params):
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/dashboard/volumes/", params)
        assert response.status_code == 200
        return len(captured), response

    add(3, "vq-a")
    queries()
    few, _ = queries(limit=1000)
    add(200, "vq-b")
    many, page = queries(limit=1000)
    assert page.content.count(b'<tr id="volume-') >= 203
    assert many == few, (few, many)
    _, page = queries(limit=20)
    assert page.content.count(b'<tr id="volume-') == 20 and b'id="next-page"' in page.content
    second = client.get("/dashboard/volumes/" + page.context["next_page"])
    assert second.content.count(b'<tr id="volume-') == 20 and b"First page" in second.content
    first_ids = {volume["id"] for volume in page.context["volumes"]}
    assert not first_ids & {volume["id"] for volume in second.context["volumes"]}
