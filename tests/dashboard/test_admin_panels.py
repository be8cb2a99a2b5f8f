"""The admin panels through Django's test client against the bootstrapped
test cloud: each opens for admin and is the 403 page for the demo user;
their forms act through the APIs (checked with the `openstack` CLI):
flavors with extra specs and access, external networks, volume types,
projects, users, groups, roles and role assignments, quotas, services and
agents, every project's instances filtered and paged on the server and
every project's volumes; and in headless Chromium, a form, its confirmed
delete and the layout from laptop to phone width."""
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from selenium.webdriver.common.by import By

from cloud.auth import validator
from compute.models import Instance, Service as ComputeService, VmState
from dashboard.auth import TOKEN
from tests.compute.nodes import wait_until
from tests.dashboard.test_browser import confirm, text, visit
from tests.volumes import conftest as volume_fixtures
from tests.volumes.conftest import wait_status

pytestmark = pytest.mark.live

control = volume_fixtures.control
volume_worker = volume_fixtures.volume_worker

PANELS = ["/dashboard/admin/instances/", "/dashboard/admin/flavors/", "/dashboard/admin/flavors/42/",
          "/dashboard/admin/images/", "/dashboard/admin/networks/", "/dashboard/admin/volumes/",
          "/dashboard/admin/volume-types/", "/dashboard/admin/identity/projects/",
          "/dashboard/admin/identity/users/", "/dashboard/admin/identity/groups/",
          "/dashboard/admin/identity/roles/", "/dashboard/admin/identity/role-assignments/",
          "/dashboard/admin/quotas/", "/dashboard/admin/services/", "/dashboard/admin/hypervisors/"]


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def project_of(client):
    return validator()(client.session[TOKEN]).project_id


def row_ids(page, table):
    return [row["id"] for found in page.context["tables"] if found["id"] == table for row in found["rows"]]


def test_every_admin_panel_opens_for_admin_and_is_403_for_demo(login, cloud):
    admin, demo = login("admin"), login("demo")
    nav = admin.get("/dashboard/").content.decode()
    for path in PANELS:
        page = admin.get(path)
        assert page.status_code == 200, (path, page.content.decode()[:1500])
        refused = demo.get(path)
        assert refused.status_code == 403 and b"Not allowed (403)" in refused.content, path
        # Each panel is in the admin's navigation, or one link from it.
        if "/flavors/42/" not in path and "volume-types" not in path:
            assert f'href="{path}"' in nav, path
    assert 'href="/dashboard/admin/volume-types/"' in admin.get("/dashboard/admin/volumes/").content.decode()
    assert 'href="/admin/"' in nav  # the Django admin, for operators
    demo_nav = demo.get("/dashboard/").content.decode()
    assert "/dashboard/admin/" not in demo_nav and 'href="/admin/"' not in demo_nav
    # Demo cannot change anything through an admin form either.
    name = unique("demo-flavor")
    assert demo.post("/dashboard/admin/flavors/", {"op": "create", "name": name, "vcpus": 1,
                                                   "ram": 64}).status_code == 403
    assert name not in cloud.openstack("flavor", "list", "--all", parse=False)


def test_flavors_are_made_with_extra_specs_and_private_access(login, cloud):
    admin = login("admin")
    demo_project = cloud.openstack("project", "show", "demo", "-f", "json")["id"]
    name = unique("dash-flavor")
    response = admin.post("/dashboard/admin/flavors/", {"op": "create", "name": name, "vcpus": 2, "ram": 256,
                                                        "disk": 1, "private": "1"})
    assert response.status_code == 302
    flavor = cloud.openstack("flavor", "show", name, "-f", "json")
    assert flavor["vcpus"] == 2 and flavor["ram"] == 256 and flavor["os-flavor-access:is_public"] is False
    try:
        # A bad number: the API's message in place, naming the field.
        page = admin.post("/dashboard/admin/flavors/", {"op": "create", "name": unique("bad"), "vcpus": "many",
                                                        "ram": 64})
        assert page.status_code == 400 and "vcpus" in page.context["error"]
        detail = f"/dashboard/admin/flavors/{flavor['id']}/"
        assert admin.post(detail, {"op": "set", "key": "hw:cpu_policy", "value": "dedicated"}).status_code == 302
        assert admin.post(detail, {"op": "add", "project": demo_project}).status_code == 302
        page = admin.get(detail)
        assert row_ids(page, "extra-specs") == ["hw:cpu_policy"] and row_ids(page, "flavor-access") == [demo_project]
        shown = cloud.openstack("flavor", "show", name, "-f", "json")
        assert shown["properties"] == {"hw:cpu_policy": "dedicated"}
        access = cloud.openstack("flavor", "show", name, "-f", "json")["access_project_ids"]
        assert access == [demo_project]
        # Demo sees the private flavor now (it has access).
        assert name in cloud.openstack("flavor", "list", "--all", cloud="stratus-demo", parse=False)
        assert admin.post(detail, {"op": "unset", "key": "hw:cpu_policy"}).status_code == 302
        assert admin.post(detail, {"op": "remove", "project": demo_project}).status_code == 302
        page = admin.get(detail)
        assert row_ids(page, "extra-specs") == [] and row_ids(page, "flavor-access") == []
    finally:
        response = admin.post("/dashboard/admin/flavors/", {"op": "delete", "id": flavor["id"],
                                                            "name": name})
    assert response.status_code == 302
    assert name not in cloud.openstack("flavor", "list", "--all", parse=False)


def test_identity_panels_create_edit_assign_and_delete(login, cloud):
    admin = login("admin")
    project, user, group, role = unique("dash-p"), unique("dash-u"), unique("dash-g"), unique("dash-r")
    assert admin.post("/dashboard/admin/identity/projects/", {"op": "create", "name": project,
                                                              "enabled": "1"}).status_code == 302
    project_id = cloud.openstack("project", "show", project, "-f", "json")["id"]
    assert admin.post("/dashboard/admin/identity/users/", {"op": "create", "name": user, "password": "pw-12345",
                                                           "default_project_id": project_id,
                                                           "enabled": "1"}).status_code == 302
    user_id = cloud.openstack("user", "show", user, "-f", "json")["id"]
    assert admin.post("/dashboard/admin/identity/groups/", {"op": "create", "name": group}).status_code == 302
    assert admin.post("/dashboard/admin/identity/roles/", {"op": "create", "name": role}).status_code == 302
    group_id = cloud.openstack("group", "show", group, "-f", "json")["id"]
    role_id = cloud.openstack("role", "show", role, "-f", "json")["id"]
    try:
        # A second project of the same name: Keystone's conflict, in place.
        page = admin.post("/dashboard/admin/identity/projects/", {"op": "create", "name": project, "enabled": "1"})
        assert page.status_code == 409 or (page.status_code == 400 and page.context["error"])
        # Edit: the project's description, disabled; the user's email.
        assert admin.post(f"/dashboard/admin/identity/projects/{project_id}/", {
            "op": "edit", "name": project, "description": "made in the dashboard"}).status_code == 302
        shown = cloud.openstack("project", "show", project, "-f", "json")
        assert shown["description"] == "made in the dashboard" and shown["enabled"] is False
        assert admin.post(f"/dashboard/admin/identity/users/{user_id}/", {
            "op": "edit", "name": user, "email": "u@example.org", "enabled": "1",
            "default_project_id": project_id}).status_code == 302
        assert cloud.openstack("user", "show", user, "-f", "json")["email"] == "u@example.org"
        assert admin.post(f"/dashboard/admin/identity/groups/{group_id}/", {
            "op": "edit", "name": group, "description": "operators"}).status_code == 302
        assert cloud.openstack("group", "show", group, "-f", "json")["description"] == "operators"
        assert admin.post(f"/dashboard/admin/identity/roles/{role_id}/", {
            "op": "edit", "name": role, "description": "reads logs"}).status_code == 302
        assert cloud.openstack("role", "show", role, "-f", "json")["description"] == "reads logs"
        missing = admin.get(f"/dashboard/admin/identity/projects/{uuid.uuid4().hex}/")
        assert missing.status_code == 404 and b"Not found (404)" in missing.content
        nowhere = admin.get("/dashboard/admin/identity/domains-of-nowhere/")
        assert nowhere.status_code == 404 and b"Not found (404)" in nowhere.content
        # Members of a group.
        assert admin.post(f"/dashboard/admin/identity/groups/{group_id}/", {
            "op": "add_member", "user_id": user_id}).status_code == 302
        assert row_ids(admin.get(f"/dashboard/admin/identity/groups/{group_id}/"), "group-members") == [user_id]
        assert user in cloud.openstack("group", "contains", "user", group, user, parse=False)
        # A role for the user on the project, seen by the CLI, then revoked.
        assignments = "/dashboard/admin/identity/role-assignments/"
        assert admin.post(assignments, {"op": "assign", "actor": f"user:{user_id}", "project": project_id,
                                        "role": role_id}).status_code == 302
        listed = cloud.openstack("role", "assignment", "list", "--project", project, "--user", user, "-f", "json")
        assert [entry["Role"] for entry in listed] == [role_id]
        page = admin.get(assignments, {"project": project_id})
        assert row_ids(page, "role-assignments") == [f"user-{user_id}-{project_id}-{role_id}"]
        assert admin.post(assignments, {"op": "revoke", "actor": f"user:{user_id}", "project": project_id,
                                        "role": role_id}).status_code == 302
        assert cloud.openstack("role", "assignment", "list", "--project", project, "-f", "json") == []
    finally:
        for kind, entity_id, name in (("users", user_id, user), ("groups", group_id, group),
                                      ("roles", role_id, role), ("projects", project_id, project)):
            assert admin.post(f"/dashboard/admin/identity/{kind}/", {"op": "delete", "id": entity_id,
                                                                     "name": name}).status_code == 302
    assert project not in cloud.openstack("project", "list", parse=False)
    assert user not in cloud.openstack("user", "list", parse=False)


def test_quotas_are_shown_and_edited_per_project(login, cloud):
    admin = login("admin")
    project = unique("dash-quota")
    project_id = cloud.openstack("project", "create", project, "-f", "json")["id"]
    try:
        url = f"/dashboard/admin/quotas/?project={project_id}"
        page = admin.get(url)
        forms = {form["id"]: {entry["name"]: entry["value"] for entry in form["fields"]}
                 for form in page.context["forms"]}
        assert {"instances", "cores", "ram"} <= set(forms["compute-quotas"])
        assert {"network", "port", "floatingip"} <= set(forms["network-quotas"])
        assert {"volumes", "gigabytes"} <= set(forms["volume-quotas"])
        for form, key, value in (("compute", "instances", 7), ("network", "port", 33), ("volume", "volumes", 4)):
            values = {**forms[f"{form}-quotas"], key: value, "op": form}
            assert admin.post(url, values).status_code == 302, form
        shown = cloud.openstack("quota", "show", project, "-f", "json")
        flat = {entry["Resource"]: entry["Limit"] for entry in shown} if isinstance(shown, list) else shown
        assert flat.get("instances") == 7 and flat.get("ports") == 33 and flat.get("volumes") == 4, flat
        # A bad value: the API's own message, in place.
        bad = admin.post(url, {**forms["compute-quotas"], "instances": "lots", "op": "compute"})
        assert bad.status_code == 400 and "instances" in bad.context["error"]
        assert admin.get("/dashboard/admin/quotas/?project=no-such-project").status_code == 404
    finally:
        cloud.openstack("project", "delete", project)


def test_external_networks_and_volume_types_are_made_by_admin(login, cloud):
    admin = login("admin")
    name = unique("dash-ext")
    response = admin.post("/dashboard/admin/networks/", {
        "op": "create", "name": name, "external": "1", "network_type": "vxlan", "segmentation_id": "4001",
        "cidr": "198.51.100.0/24", "gateway": "198.51.100.1"})
    assert response.status_code == 302, response.content.decode()[:1500]
    network = cloud.openstack("network", "show", name, "-f", "json")
    try:
        assert network["router:external"] is True and network["provider:network_type"] == "vxlan"
        assert network["provider:segmentation_id"] == 4001 and len(network["subnets"]) == 1
        assert network["id"] in row_ids(admin.get("/dashboard/admin/networks/", {"limit": 1000}), "admin-networks")
        # A flat network on no known physical network: Neutron's message, in place.
        bad = admin.post("/dashboard/admin/networks/", {"op": "create", "name": unique("bad"),
                                                        "network_type": "flat", "physical_network": "nowhere"})
        assert bad.status_code == 400 and "physical_network" in bad.context["error"]
    finally:
        cloud.openstack("subnet", "delete", network["subnets"][0])
        assert admin.post("/dashboard/admin/networks/", {"op": "delete", "id": network["id"],
                                                         "name": name}).status_code == 302
    assert name not in cloud.openstack("network", "list", parse=False)

    volume_type = unique("dash-type")
    types = "/dashboard/admin/volume-types/"
    assert admin.post(types, {"op": "create", "name": volume_type, "description": "fast"}).status_code == 302
    type_id = cloud.openstack("volume", "type", "show", volume_type, "-f", "json")["id"]
    try:
        assert admin.post(types, {"op": "set", "type_id": type_id, "key": "volume_backend_name",
                                  "value": "file"}).status_code == 302
        shown = cloud.openstack("volume", "type", "show", volume_type, "-f", "json")
        assert shown["properties"] == {"volume_backend_name": "file"}
        assert "volume_backend_name=file" in admin.get(types).content.decode()
        assert admin.post(types, {"op": "unset", "type_id": type_id, "key": "volume_backend_name"}).status_code == 302
        assert cloud.openstack("volume", "type", "show", volume_type, "-f", "json")["properties"] in ({}, "")
    finally:
        assert admin.post(types, {"op": "delete", "id": type_id, "name": volume_type}).status_code == 302
    assert volume_type not in cloud.openstack("volume", "type", "list", parse=False)


def test_services_and_agents_show_their_liveness_and_a_service_is_disabled(login, cloud):
    admin = login("admin")
    host = unique("dash-host")
    # A node that reported a moment ago and one silent for an hour.
    fresh = ComputeService.objects.create(binary=ComputeService.COMPUTE_BINARY, host=host,
                                          last_seen_up=timezone.now())
    stale = ComputeService.objects.create(binary=ComputeService.COMPUTE_BINARY, host=f"{host}-silent",
                                          last_seen_up=timezone.now() - timedelta(hours=1))
    try:
        page = admin.get("/dashboard/admin/services/")
        tables = {table["id"]: table for table in page.context["tables"]}
        assert set(tables) == {"compute-services", "network-agents", "volume-services"}
        for table in tables.values():
            for row in table["rows"]:
                states = [cell for cell in row["cells"] if isinstance(cell, dict) and "state" in cell]
                assert states and states[0]["state"] in ("up", "down")
        rows = {row["id"]: row for row in tables["compute-services"]["rows"]}
        assert rows[str(fresh.pk)]["cells"][4] == {"text": "up", "state": "up"}
        assert rows[str(stale.pk)]["cells"][4] == {"text": "down", "state": "down"}
        # Disable and enable again, as `openstack compute service set` does.
        for status, button in (("disabled", "Disable"), ("enabled", "Enable")):
            row = {entry["id"]: entry for entry in next(table for table in admin.get(
                "/dashboard/admin/services/").context["tables"] if table["id"] == "compute-services")["rows"]}
            assert row[str(fresh.pk)]["actions"][0]["label"] == button
            assert admin.post("/dashboard/admin/services/", row[str(fresh.pk)]["actions"][0]["fields"]
                              ).status_code == 302
            listed = cloud.openstack("compute", "service", "list", "--host", host, "-f", "json")
            assert [entry["Status"] for entry in listed] == [status]
    finally:
        ComputeService.objects.filter(pk__in=[fresh.pk, stale.pk]).delete()


@pytest.mark.django_db
def test_all_instances_are_filtered_and_paged_on_the_server_with_flat_queries(login, cloud):
    admin, demo = login("admin"), login("demo")
    admin_project, demo_project = project_of(admin), project_of(demo)
    tag = uuid.uuid4().hex[:6]
    made = Instance.objects.bulk_create(
        [Instance(name=f"all-{tag}-d{index}", project_id=demo_project, user_id="u", flavor_id_at_boot="42",
                  flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, vm_state=VmState.ACTIVE,
                  host=f"host-{tag}") for index in range(30)]
        + [Instance(name=f"all-{tag}-a{index}", project_id=admin_project, user_id="u", flavor_id_at_boot="42",
                    flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, vm_state=VmState.STOPPED,
                    host=f"other-{tag}") for index in range(5)])
    try:
        def shown(**params):
            with CaptureQueriesContext(connection) as captured:
                page = admin.get("/dashboard/admin/instances/", params)
            assert page.status_code == 200
            return row_ids(page, "admin-instances"), page, len(captured)

        ids, page, few = shown(host=f"host-{tag}", limit=10)
        assert len(ids) == 10 and b'id="admin-instances-next"' in page.content
        assert f"host-{tag}" in page.content.decode() and "demo" in page.content.decode()
        rest, _, many = shown(host=f"host-{tag}", limit=1000)
        assert len(rest) == 30 and set(ids) <= set(rest)
        assert many == few, (few, many)  # 10 rows or 30: the same queries
        # The next page follows the marker and keeps the filter.
        next_url = next(table for table in page.context["tables"])["next_page"]
        second = admin.get("/dashboard/admin/instances/" + next_url)
        assert set(row_ids(second, "admin-instances")).isdisjoint(ids)
        assert len(row_ids(second, "admin-instances")) == 10
        stopped, _, _ = shown(project=admin_project, status="SHUTOFF", host=f"other-{tag}")
        assert len(stopped) == 5
        assert shown(project=demo_project, host=f"other-{tag}")[0] == []
        assert b"No instances match." in shown(host=f"nowhere-{tag}")[1].content
    finally:
        Instance.objects.filter(pk__in=[instance.pk for instance in made]).delete()


def test_admin_panels_in_chromium_from_laptop_to_phone_width(cloud, browser, tmp_path):
    """The flavor form and its confirmed delete as a person uses them, and
    every admin panel laid out without sideways scrolling of the page at
    1366x768 and at a phone's width (screenshots kept)."""
    browser.delete_all_cookies()
    browser.set_window_size(1366, 768)
    browser.get(cloud.url + "/dashboard/admin/flavors/")
    browser.find_element(By.ID, "username").send_keys("admin")
    browser.find_element(By.ID, "password").send_keys(settings.ADMIN_PASSWORD)
    browser.find_element(By.ID, "login").click()
    visit(browser, cloud.url + "/dashboard/admin/flavors/", "#flavor-create")
    name = unique("browser-flavor")
    browser.find_element(By.ID, "flavor-create-name").send_keys(name)
    ram = browser.find_element(By.ID, "flavor-create-ram")
    ram.clear()
    ram.send_keys("96")
    browser.find_element(By.CSS_SELECTOR, "#flavor-create button[type=submit]").click()
    wait_until(lambda: f"Created flavor {name}." in (text(browser, ".messages") or ""), timeout=30,
               message="the new flavor")
    assert name in text(browser, "#flavors")
    browser.find_element(By.CSS_SELECTOR, f"button[aria-label='Delete {name}']").click()
    assert confirm(browser) == f"Delete flavor {name}?"
    wait_until(lambda: f"Deleted flavor {name}." in (text(browser, ".messages") or ""), timeout=30,
               message="the flavor deleted")
    assert name not in cloud.openstack("flavor", "list", "--all", parse=False)

    for width, height in ((1366, 768), (390, 844)):
        browser.set_window_size(width, height)
        for path in PANELS:
            visit(browser, cloud.url + path, "main h1")
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, (path, width, overflow)
            browser.save_screenshot(str(tmp_path / f"{path.strip('/').replace('/', '-')}-{width}.png"))
    browser.set_window_size(1366, 768)


def test_all_volumes_shows_another_projects_volume_with_its_host_and_deletes_it(login, cloud, volume_worker):
    admin = login("admin")
    name = unique("dash-volume")
    volume = cloud.openstack("volume", "create", "--size", "1", name, "-f", "json", cloud="stratus-demo")
    wait_status(cloud, volume["id"], "available", cloud_name="stratus-demo")
    page = admin.get("/dashboard/admin/volumes/", {"limit": 1000})
    row = next(row for table in page.context["tables"] for row in table["rows"] if row["id"] == volume["id"])
    assert row["cells"][:5] == [name, "demo", row["cells"][2], "available", "1 GB"] and row["cells"][2] != "—"
    assert admin.post("/dashboard/admin/volumes/", row["actions"][0]["fields"]).status_code == 302
    wait_until(lambda: volume["id"] not in cloud.openstack("volume", "list", "--all-projects", parse=False),
               timeout=60, interval=0.5, message="the volume to go")
