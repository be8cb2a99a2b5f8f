"""Paging of os-simple-tenant-usage (2.40: limit, marker an instance id,
tenant_usage(s)_links) and of os-instance-actions (2.58: limit, marker a
request_id, changes-since, links), through the wire and the real clients.
Instances and actions are rows made with the ORM: no worker runs here."""
import uuid
from datetime import datetime, timedelta, timezone as dt_timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from compute.models import Instance, InstanceAction, VmState

pytestmark = pytest.mark.live

USAGE = "/compute/v2.1/os-simple-tenant-usage"
# A month long ago that only this module's instances ran in.
START, END = datetime(2001, 1, 1, tzinfo=dt_timezone.utc), datetime(2001, 2, 1, tzinfo=dt_timezone.utc)
PERIOD = "start=2001-01-01T00:00:00&end=2001-02-01T00:00:00"


def version(minor):
    return {"OpenStack-API-Version": f"compute 2.{minor}"}


@pytest.fixture(scope="module")
def live(cloud, django_db_blocker):
    """Committed rows (the server process sees them), removed afterwards."""
    made = []

    class Rows:
        admin_token = cloud.token("stratus")
        demo_token = cloud.token("stratus-demo")
        admin_project = cloud.connect("stratus").current_project_id
        demo_project = cloud.connect("stratus-demo").current_project_id

        def instances(self, project_id, count, launched=START + timedelta(days=1), **extra):
            rows = [Instance(name=f"pg-{index}", project_id=project_id, user_id="u", flavor_id_at_boot="42",
                             flavor_name="m1.nano", vcpus=1 + index % 2, memory_mb=128, root_gb=1,
                             vm_state=VmState.ACTIVE, launched_at=launched + timedelta(minutes=index), **extra)
                     for index in range(count)]
            with django_db_blocker.unblock():
                Instance.objects.bulk_create(rows)
            made.extend(row.pk for row in rows)
            return rows

        def actions(self, instance, count, request_prefix=None):
            base = datetime.now(dt_timezone.utc) - timedelta(hours=count)
            prefix = request_prefix or f"req-{uuid.uuid4().hex[:8]}"
            rows = [InstanceAction(instance=instance, action="reboot" if index else "create",
                                   request_id=f"{prefix}-{index}", user_id="u", project_id=instance.project_id,
                                   start_time=base + timedelta(hours=index),
                                   updated_at=base + timedelta(hours=index, minutes=5))
                    for index in range(count)]
            with django_db_blocker.unblock():
                InstanceAction.objects.bulk_create(rows)
            return rows

    yield Rows()
    with django_db_blocker.unblock():
        Instance.objects.filter(pk__in=made).delete()


def ids(usage):
    return [server["instance_id"] for server in usage.get("server_usages", [])]


def next_link(body, key):
    links = {link["rel"]: link["href"] for link in body.get(key, [])}
    return links.get("next")


def relative(href):
    """The path and query of an absolute link, for the `api` client."""
    return urlsplit(href)._replace(scheme="", netloc="").geturl()


# ---- os-simple-tenant-usage ---------------------------------------------


@pytest.fixture(scope="module")
def usage_rows(live):
    """Five servers of the demo project and three of another, launched in
    PERIOD, in launch order."""
    other = f"pg-other-{uuid.uuid4().hex[:6]}"
    demo = live.instances(live.demo_project, 5)
    others = live.instances(other, 3)
    return {"demo": [str(row.pk) for row in demo], "other": [str(row.pk) for row in others],
            "other_project": other}


def test_usage_show_pages_by_instance_with_a_next_link(api, live, usage_rows):
    path = f"{USAGE}/{live.demo_project}"
    seen, url, pages = [], f"{path}?{PERIOD}&detailed=1&limit=2", 0
    while url:
        response = api.get(url, token=live.demo_token, headers=version(40))
        assert response.status_code == 200, response.text
        body = response.json()
        page = ids(body["tenant_usage"])
        assert len(page) <= 2
        # The totals of a page are those of its servers only.
        if page:
            assert body["tenant_usage"]["total_vcpus_usage"] == pytest.approx(
                sum(server["vcpus"] * server["hours"] for server in body["tenant_usage"]["server_usages"]))
        seen += page
        href = next_link(body, "tenant_usage_links")
        url = None
        if href:
            query = parse_qs(urlsplit(href).query)
            assert query["marker"] == [page[-1]] and query["limit"] == ["2"]
            assert query["start"] == ["2001-01-01T00:00:00"], href
            url = relative(href)
        pages += 1
    # 5 servers, 2 a page: 2 + 2 + 1, the last page not full so no link.
    assert pages == 3
    assert seen == usage_rows["demo"]


def test_usage_list_pages_across_projects_in_order(api, live, usage_rows):
    everything = api.get(f"{USAGE}?{PERIOD}&detailed=1", token=live.admin_token, headers=version(40)).json()
    assert "tenant_usages_links" not in everything
    by_project = {usage["tenant_id"]: ids(usage) for usage in everything["tenant_usages"]}
    assert by_project == {live.demo_project: usage_rows["demo"], usage_rows["other_project"]: usage_rows["other"]}
    order = [server for usage in everything["tenant_usages"] for server in ids(usage)]

    first = api.get(f"{USAGE}?{PERIOD}&detailed=1&limit=6", token=live.admin_token, headers=version(40)).json()
    first_ids = [server for usage in first["tenant_usages"] for server in ids(usage)]
    assert first_ids == order[:6]
    href = next_link(first, "tenant_usages_links")
    assert href and parse_qs(urlsplit(href).query)["marker"] == [order[5]]
    second = api.get(f"{USAGE}?{PERIOD}&detailed=1&limit=6&marker={order[5]}", token=live.admin_token,
                     headers=version(40)).json()
    assert [server for usage in second["tenant_usages"] for server in ids(usage)] == order[6:]
    assert "tenant_usages_links" not in second


def test_usage_limit_and_marker_are_ignored_before_2_40(api, live, usage_rows):
    path = f"{USAGE}/{live.demo_project}?{PERIOD}&limit=1&marker=nonsense"
    body = api.get(path, token=live.demo_token, headers=version(39)).json()
    assert ids(body["tenant_usage"]) == usage_rows["demo"]
    assert "tenant_usage_links" not in body
    listed = api.get(f"{USAGE}?{PERIOD}&detailed=1&limit=1", token=live.admin_token, headers=version(39)).json()
    assert sum(len(ids(usage)) for usage in listed["tenant_usages"]) == 8
    assert "tenant_usages_links" not in listed


@pytest.mark.parametrize("query, expected", [
    ("limit=-1", "'limit'"), ("limit=two", "'limit'"),
    (f"marker={uuid.UUID(int=7)}", f"marker [{uuid.UUID(int=7)}] not found"),
    ("marker=not-a-uuid", "marker [not-a-uuid] not found"),
])
def test_usage_bad_paging_is_400(api, live, usage_rows, query, expected):
    for path, token in ((USAGE, live.admin_token), (f"{USAGE}/{live.demo_project}", live.demo_token)):
        response = api.get(f"{path}?{PERIOD}&{query}", token=token, headers=version(40))
        assert response.status_code == 400, (path, response.text)
        assert expected in response.json()["badRequest"]["message"], response.text


def test_usage_through_the_cli(cloud, live, usage_rows):
    # The CLI asks for the whole period at the newest version both sides know.
    rows = cloud.openstack("usage", "list", "--start", "2001-01-01", "--end", "2001-02-01", "-f", "json")
    servers = {row["Project"]: sorted(server["instance_id"] for server in row["Servers"]) for row in rows}
    assert servers == {live.demo_project: sorted(usage_rows["demo"]),
                       usage_rows["other_project"]: sorted(usage_rows["other"])}, rows
    shown = cloud.openstack("usage", "show", "--start", "2001-01-01", "--end", "2001-02-01", "-f", "json",
                            cloud="stratus-demo")
    assert sorted(server["instance_id"] for server in shown["Servers"]) == sorted(usage_rows["demo"]), shown
    # The same at 2.39, before paging.
    old = cloud.openstack("--os-compute-api-version", "2.39", "usage", "show", "--start", "2001-01-01",
                          "--end", "2001-02-01", "-f", "json", cloud="stratus-demo")
    assert sorted(server["instance_id"] for server in old["Servers"]) == sorted(usage_rows["demo"]), old
    # (openstacksdk's usages(limit=N) cannot be driven: a Usage has no id, so
    # after the last page it asks for the first again, against Nova too.)


@pytest.mark.django_db
def test_usage_query_count_does_not_grow_with_servers(cloud):
    """In-process so the queries are counted; the rows roll back."""
    client = Client()
    token = cloud.token("stratus")
    headers = {"HTTP_X_AUTH_TOKEN": token, "HTTP_OPENSTACK_API_VERSION": "compute 2.40"}
    project = f"qc-{uuid.uuid4().hex[:6]}"
    # A window nothing else ran in.
    window = "start=1999-01-01T00:00:00&end=1999-02-01T00:00:00"
    added = []
    launched = datetime(1999, 1, 2, tzinfo=dt_timezone.utc)

    def add(count):
        rows = [Instance(name=f"qc-{index}", project_id=project, user_id="u", flavor_id_at_boot="42",
                         flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, vm_state=VmState.ACTIVE,
                         launched_at=launched + timedelta(minutes=len(added) + index))
                for index in range(count)]
        Instance.objects.bulk_create(rows)
        added.extend(str(row.pk) for row in rows)

    def queries(path):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path, **headers)
        assert response.status_code == 200, response.content
        return len(captured), response.json()

    def listed(body):
        return [server for usage in body["tenant_usages"] for server in ids(usage)]

    queries(f"{USAGE}?{window}")  # the token is looked up once, then cached
    add(3)
    few, body = queries(f"{USAGE}?{window}&detailed=1")
    assert len(listed(body)) == 3
    few_show, body = queries(f"{USAGE}/{project}?{window}")
    assert len(ids(body["tenant_usage"])) == 3
    few_marker, _ = queries(f"{USAGE}?{window}&detailed=1&limit=50&marker={added[0]}")
    add(27)
    many, body = queries(f"{USAGE}?{window}&detailed=1")
    assert len(listed(body)) == 30
    many_show, body = queries(f"{USAGE}/{project}?{window}")
    assert len(ids(body["tenant_usage"])) == 30
    many_marker, body = queries(f"{USAGE}?{window}&detailed=1&limit=50&marker={added[0]}")
    assert listed(body) == added[1:]
    assert (many, many_show, many_marker) == (few, few_show, few_marker)


# ---- os-instance-actions ------------------------------------------------


@pytest.fixture(scope="module")
def server(live):
    """An admin-project server with 7 actions an hour apart (0 the oldest);
    another server shares the request_id prefix of the first's actions."""
    instance = live.instances(live.admin_project, 1, launched=datetime.now(dt_timezone.utc) - timedelta(days=1))[0]
    actions = live.actions(instance, 7)
    twin = live.instances(live.admin_project, 1, launched=datetime.now(dt_timezone.utc) - timedelta(days=1))[0]
    prefix = actions[0].request_id.rsplit("-", 1)[0]
    live.actions(twin, 7, request_prefix=prefix)
    return {"id": str(instance.pk), "requests": [action.request_id for action in actions],
            "updated": [action.updated_at for action in actions]}


def actions_path(server_id, query=""):
    return f"/compute/v2.1/servers/{server_id}/os-instance-actions" + (f"?{query}" if query else "")


def request_ids(body):
    return [action["request_id"] for action in body["instanceActions"]]


def test_actions_page_newest_first_with_next_links(api, live, server):
    newest_first = server["requests"][::-1]
    seen, url, pages = [], actions_path(server["id"], "limit=3"), 0
    while url:
        response = api.get(url, token=live.admin_token, headers=version(58))
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["instanceActions"]) <= 3
        assert all(action["instance_uuid"] == server["id"] for action in body["instanceActions"])
        seen += request_ids(body)
        href = next_link(body, "links")
        if href:
            assert parse_qs(urlsplit(href).query)["marker"] == [seen[-1]]
            assert urlsplit(href).path.endswith(actions_path(server["id"]))
            url = relative(href)
        else:
            url = None
        pages += 1
    assert seen == newest_first
    assert pages == 3


def test_actions_changes_since_and_marker(api, live, server):
    # Actions 4, 5 and 6 were updated at or after action 4's updated_at.
    since = server["updated"][4].isoformat()
    body = api.get(actions_path(server["id"], f"changes-since={since.replace('+', '%2B')}"),
                   token=live.admin_token, headers=version(58)).json()
    assert request_ids(body) == server["requests"][4:][::-1]
    assert "links" not in body
    after = api.get(actions_path(server["id"], f"marker={server['requests'][5]}&limit=2"),
                    token=live.admin_token, headers=version(58)).json()
    assert request_ids(after) == [server["requests"][4], server["requests"][3]]
    assert next_link(after, "links")


def test_actions_paging_is_ignored_before_2_58(api, live, server):
    body = api.get(actions_path(server["id"], "limit=1&marker=nope&changes-since=garbage"),
                   token=live.admin_token, headers=version(57)).json()
    assert request_ids(body) == server["requests"][::-1]
    assert "links" not in body and "updated_at" not in body["instanceActions"][0]


@pytest.mark.parametrize("query, expected", [
    ("limit=-2", "'limit'"), ("limit=x", "'limit'"), ("changes-since=yesterday", "'changes-since'"),
    ("marker=req-nobody", "Marker req-nobody could not be found"),
])
def test_actions_bad_paging_is_400(api, live, server, query, expected):
    response = api.get(actions_path(server["id"], query), token=live.admin_token, headers=version(58))
    assert response.status_code == 400, response.text
    assert expected in response.json()["badRequest"]["message"], response.text


def test_actions_marker_of_another_server_is_400(api, live, server):
    other = live.instances(live.admin_project, 1, launched=datetime.now(dt_timezone.utc))[0]
    foreign = live.actions(other, 1)[0].request_id
    response = api.get(actions_path(server["id"], f"marker={foreign}"), token=live.admin_token,
                       headers=version(58))
    assert response.status_code == 400 and foreign in response.json()["badRequest"]["message"]


def test_server_event_list_cli(cloud, server):
    newest_first = server["requests"][::-1]
    base = ("--os-compute-api-version", "2.58", "server", "event", "list")
    page = cloud.openstack(*base, server["id"], "--limit", "3", "-f", "json")
    assert [row["Request ID"] for row in page] == newest_first[:3]
    following = cloud.openstack(*base, server["id"], "--limit", "3", "--marker", newest_first[2], "-f", "json")
    assert [row["Request ID"] for row in following] == newest_first[3:6]
    since = server["updated"][5].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    recent = cloud.openstack(*base, server["id"], "--changes-since", since, "-f", "json")
    assert [row["Request ID"] for row in recent] == newest_first[:2]
    unknown = cloud.openstack(*base, server["id"], "--marker", "req-nobody", expect_fail=True)
    assert "req-nobody" in unknown.stderr


@pytest.mark.django_db
def test_actions_query_count_does_not_grow_with_actions(cloud):
    client = Client()
    headers = {"HTTP_X_AUTH_TOKEN": cloud.token("stratus"), "HTTP_OPENSTACK_API_VERSION": "compute 2.58"}
    project = cloud.connect("stratus").current_project_id
    instance = Instance.objects.create(name="qc-actions", project_id=project, user_id="u", flavor_id_at_boot="42",
                                       flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1,
                                       vm_state=VmState.ACTIVE)
    base = datetime.now(dt_timezone.utc) - timedelta(days=2)

    def add(start, count):
        InstanceAction.objects.bulk_create([
            InstanceAction(instance=instance, action="reboot", request_id=f"qc-{start + index}", user_id="u",
                           project_id=project, start_time=base + timedelta(minutes=start + index))
            for index in range(count)])

    def queries(query):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(actions_path(instance.pk, query), **headers)
        assert response.status_code == 200, response.content
        return len(captured), request_ids(response.json())

    queries("")  # the token is looked up once, then cached
    add(0, 3)
    few, listed = queries("")
    assert listed == ["qc-2", "qc-1", "qc-0"]
    few_marker, _ = queries("marker=qc-2&limit=100")
    add(3, 27)
    many, listed = queries("")
    assert len(listed) == 30 and listed[0] == "qc-29"
    many_marker, listed = queries("marker=qc-29&limit=100")
    assert listed[0] == "qc-28" and len(listed) == 29
    assert (many, many_marker) == (few, few_marker)
