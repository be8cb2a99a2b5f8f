"""The dashboard through Django's test client, in-process against the
bootstrapped test cloud: logging in and out with Keystone's credentials,
CSRF, the pages the API refuses (403 for an admin page, 404 for another
project's server), the project switcher, key pairs, a launch refused in
place, and a server list whose query count does not grow with servers."""
import json
import subprocess
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cloud.auth import validator
from compute.models import Instance, VmState
from dashboard.auth import TOKEN

pytestmark = pytest.mark.live

V = {"HTTP_OPENSTACK_API_VERSION": "compute 2.60"}


def token_of(client):
    return client.session[TOKEN]


def test_a_logged_out_browser_goes_to_the_login_page(cloud, live_db):
    for path in ("/dashboard/", "/dashboard/instances/", f"/dashboard/instances/{uuid.uuid4()}/",
                 "/dashboard/admin/hypervisors/"):
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/dashboard/login/?next=")
    page = Client().get("/dashboard/login/")
    assert page.status_code == 200 and b'name="password"' in page.content


def test_wrong_password_is_said_on_the_login_page(cloud, live_db):
    response = Client().post("/dashboard/login/", {"domain": "Default", "username": "demo", "password": "nope"})
    assert response.status_code == 401
    assert b"Wrong domain, user name or password." in response.content
    assert TOKEN not in Client().session


def test_login_holds_a_project_token_and_logout_revokes_it(login, cloud):
    client = login("demo")
    token = token_of(client)
    credentials = validator()(token)
    assert credentials is not None and credentials.project_id
    page = client.get("/dashboard/")
    assert page.status_code == 200
    assert b"Overview of demo" in page.content
    for label in (b"Instances", b"vCPUs", b"RAM", b"Volumes", b"Volume storage", b"Floating IPs",
                  b"Security groups"):
        assert b'class="bar-label"' in page.content and label in page.content
    # The token works for the API as well: it is a real Keystone token.
    assert Client().get("/compute/v2.1/servers", HTTP_X_AUTH_TOKEN=token, **V).status_code == 200

    assert client.post("/dashboard/logout/").status_code == 302
    assert validator()(token) is None
    assert Client().get("/compute/v2.1/servers", HTTP_X_AUTH_TOKEN=token, **V).status_code == 401
    assert client.get("/dashboard/")["Location"].startswith("/dashboard/login/")


def test_a_token_revoked_elsewhere_sends_the_session_to_login(login, cloud):
    client = login("demo")
    token = token_of(client)
    revoked = Client().delete("/identity/v3/auth/tokens", HTTP_X_AUTH_TOKEN=token, HTTP_X_SUBJECT_TOKEN=token)
    assert revoked.status_code == 204
    response = client.get("/dashboard/instances/")
    assert response.status_code == 302 and response["Location"].startswith("/dashboard/login/")


def test_forms_need_the_csrf_token(cloud, live_db):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/dashboard/login/", {"domain": "Default", "username": "demo",
                                                 "password": settings.DEMO_PASSWORD})
    assert response.status_code == 403
    page = client.get("/dashboard/login/")
    csrf = page.context["csrf_token"]
    response = client.post("/dashboard/login/", {"domain": "Default", "username": "demo",
                                                 "password": settings.DEMO_PASSWORD, "csrfmiddlewaretoken": str(csrf)})
    assert response.status_code == 302
    # Logged in, an action without the form's token is still refused.
    assert client.post("/dashboard/logout/").status_code == 403
    assert validator()(token_of(client)) is not None


def test_the_demo_user_gets_403_on_admin_pages_and_404_on_another_projects_server(login, cloud):
    admin = login("admin")
    assert admin.get("/dashboard/admin/hypervisors/").status_code == 200
    demo = login("demo")
    page = demo.get("/dashboard/admin/hypervisors/")
    assert page.status_code == 403
    assert b"Not allowed (403)" in page.content
    assert b"Hypervisors" not in demo.get("/dashboard/").content  # no link to what it cannot open

    admin_project = validator()(token_of(admin)).project_id
    server = Instance.objects.create(name="admins-own", project_id=admin_project, user_id="u",
                                     flavor_id_at_boot="42", flavor_name="m1.nano", vcpus=1, memory_mb=128,
                                     root_gb=1, vm_state=VmState.ACTIVE)
    try:
        assert admin.get(f"/dashboard/instances/{server.pk}/").status_code == 200
        page = demo.get(f"/dashboard/instances/{server.pk}/")
        assert page.status_code == 404 and b"Not found (404)" in page.content
        # Nor may demo act on it: the API's 404, the same page.
        assert demo.post(f"/dashboard/instances/{server.pk}/action/", {"action": "delete"}).status_code == 404
        assert Instance.objects.filter(pk=server.pk, deleted=False).exists()
    finally:
        server.delete()


def test_the_project_switcher_rescopes_the_token(login, cloud):
    name = f"dash-{uuid.uuid4().hex[:6]}"
    cloud.openstack("project", "create", name)
    cloud.openstack("role", "add", "--user", "demo", "--project", name, "member")
    try:
        client = login("demo")
        page = client.get("/dashboard/")
        assert name.encode() in page.content and b"Overview of demo" in page.content
        project_id = next(project["id"] for project in client.session["dashboard.account"]["projects"]
                          if project["name"] == name)
        assert client.post("/dashboard/project/", {"project_id": project_id}).status_code == 302
        assert validator()(token_of(client)).project_id == project_id
        assert f"Overview of {name}".encode() in client.get("/dashboard/").content
        # A project the user has no role on is refused.
        page = client.post("/dashboard/project/", {"project_id": uuid.uuid4().hex})
        assert page.status_code == 404
    finally:
        cloud.openstack("project", "delete", name)


def test_key_pairs_create_downloads_the_private_key_once_and_import_takes_a_public_key(login, cloud, tmp_path):
    client = login("demo")
    name = f"dash-key-{uuid.uuid4().hex[:6]}"
    response = client.post("/dashboard/keypairs/", {"name": name})
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{name}.pem"'
    assert b"PRIVATE KEY" in response.content
    page = client.get("/dashboard/keypairs/")
    assert f'id="keypair-{name}"'.encode() in page.content and b"PRIVATE KEY" not in page.content

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    public = (tmp_path / "k.pub").read_text()
    imported = f"{name}-imported"
    response = client.post("/dashboard/keypairs/", {"name": imported, "public_key": public})
    assert response.status_code == 302
    assert f'id="keypair-{imported}"'.encode() in client.get("/dashboard/keypairs/").content
    # The API's refusal, in place, naming what is wrong.
    page = client.post("/dashboard/keypairs/", {"name": imported, "public_key": public})
    assert page.status_code == 400 and b'id="keypair-error"' in page.content
    for key in (name, imported):
        assert client.post(f"/dashboard/keypairs/{key}/delete/").status_code == 302
    listing = client.get("/dashboard/keypairs/").content
    assert f'id="keypair-{name}"'.encode() not in listing and f'id="keypair-{imported}"'.encode() not in listing


def test_a_refused_launch_shows_the_apis_message_in_the_form(login, cloud):
    client = login("demo")
    page = client.get("/dashboard/instances/launch/")
    assert page.status_code == 200 and b'id="launch-form"' in page.content
    page = client.post("/dashboard/instances/launch/", {"name": "no-such-image", "image": str(uuid.uuid4()),
                                                       "flavor": "42", "count": "1"})
    assert page.status_code == 400
    assert b'id="launch-error"' in page.content
    assert b'value="no-such-image"' in page.content  # the form keeps what was typed
    assert not Instance.objects.filter(name="no-such-image").exists()


@pytest.mark.django_db
def test_the_instances_page_query_count_does_not_grow_with_servers(login, cloud):
    client = login("demo")
    project = validator()(token_of(client)).project_id

    def add(count, prefix):
        Instance.objects.bulk_create([
            Instance(name=f"{prefix}-{index}", project_id=project, user_id="u", flavor_id_at_boot="42",
                     flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, vm_state=VmState.ACTIVE)
            for index in range(count)])

    def queries(**params):
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/dashboard/instances/", params)
        assert response.status_code == 200
        return len(captured), response

    add(3, "qc-a")
    queries()
    few, page = queries()
    assert b"qc-a-0" in page.content
    add(300, "qc-b")
    many, page = queries(limit=1000)
    assert page.content.count(b'<tr id="server-') >= 303
    assert few > 0 and many == few, (few, many)
    # Paging on the server: a page of 50 and a link to the next.
    _, page = queries(limit=50)
    assert page.content.count(b'<tr id="server-') == 50 and b'id="next-page"' in page.content


def events(response):
    """The (event, data) pairs of a Server-Sent Events response."""
    text = b"".join(response.streaming_content).decode()
    found = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_the_live_stream_sends_each_changed_server_as_its_row(login, cloud, settings):
    settings.DASHBOARD_LIVE_SECONDS = 0.5
    settings.DASHBOARD_LIVE_INTERVAL = 0.1
    client = login("demo")
    project = validator()(token_of(client)).project_id
    since = (timezone.now() - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    server = Instance.objects.create(name="live-one", project_id=project, user_id="u", flavor_id_at_boot="42",
                                     flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1,
                                     task_state="networking")
    try:
        response = client.get("/dashboard/instances/live/", {"since": since})
        assert response["Content-Type"] == "text/event-stream"
        rows = [data for event, data in events(response) if event == "server" and data["id"] == str(server.pk)]
        assert rows and rows[0]["status"] == "BUILD" and rows[0]["step"] == "step 3 of 5: network"
        assert f'id="server-{server.pk}"' in rows[0]["html"]
        # A deleted server comes as a row without HTML: the page removes it.
        Instance.objects.filter(pk=server.pk).update(deleted=True, vm_state=VmState.DELETED,
                                                     updated_at=timezone.now())
        rows = [data for event, data in events(client.get("/dashboard/instances/live/", {"since": since}))
                if event == "server" and data["id"] == str(server.pk)]
        assert rows and rows[-1]["html"] == ""
        # Another project's changes never reach the stream.
        other = login("admin")
        assert not [data for event, data in events(other.get("/dashboard/instances/live/", {"since": since}))
                    if event == "server" and data["id"] == str(server.pk)]
        # Every stream of the process taken: one look, and come back later.
        from dashboard.views.instances import live_streams
        taken = [live_streams().acquire(blocking=False) for _ in range(settings.DASHBOARD_LIVE_STREAMS)]
        try:
            settings.DASHBOARD_LIVE_SECONDS = 30  # would be held that long if the stream were granted
            response = client.get("/dashboard/instances/live/", {"since": since})
            body = b"".join(response.streaming_content).decode()
            assert body.startswith("retry: 3000") and body.count(": poll") == 1
        finally:
            for acquired in taken:
                if acquired:
                    live_streams().release()
        # A revoked token ends the stream with a logout event.
        token = token_of(client)
        Client().delete("/identity/v3/auth/tokens", HTTP_X_AUTH_TOKEN=token, HTTP_X_SUBJECT_TOKEN=token)
        assert client.get("/dashboard/instances/live/")["Location"].startswith("/dashboard/login/")
    finally:
        server.delete()


def test_networks_and_routers_are_made_with_the_forms(login, cloud):
    client = login("demo")
    name = f"dash-net-{uuid.uuid4().hex[:6]}"
    assert client.post("/dashboard/networks/", {"name": name, "cidr": "10.77.0.0/24"}).status_code == 302
    page = client.get("/dashboard/networks/").content.decode()
    assert name in page and "10.77.0.0/24" in page
    # A bad CIDR: the API's message in place, and what was made said.
    bad = client.post("/dashboard/networks/", {"name": f"{name}-bad", "cidr": "10.77.0.0/99"})
    assert bad.status_code == 400
    message = bad.content.decode()
    assert 'id="network-error"' in message and "cidr" in message and "(network made)" in message
    router = f"dash-router-{uuid.uuid4().hex[:6]}"
    try:
        assert client.post("/dashboard/routers/", {"name": router}).status_code == 302
        page = client.get("/dashboard/routers/")
        router_row = next(row for row in page.context["routers"] if row["name"] == router)
        # This network's subnet (other tests leave demo networks with the same range).
        network_id = next(key for key, value in page.context["names"].items() if value == name)
        subnet = next(subnet for subnet in page.context["subnets"] if subnet["network_id"] == network_id)
        assert client.post("/dashboard/routers/", {"router_id": router_row["id"],
                                                   "subnet_id": subnet["id"]}).status_code == 302
        page = client.get("/dashboard/routers/")
        assert f"{name} 10.77.0.1" in page.content.decode()
    finally:
        cloud.openstack("router", "remove", "subnet", router, f"{name}-subnet", cloud="stratus-demo")
        cloud.openstack("router", "delete", router, cloud="stratus-demo")
        cloud.openstack("network", "delete", name, f"{name}-bad", cloud="stratus-demo")
