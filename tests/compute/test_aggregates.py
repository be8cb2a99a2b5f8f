"""Host aggregates (os-aggregates) through the real CLI and the wire: an
aggregate's availability_zone is its hosts' zone, which the scheduler, the
zone list and os-services read; Nova's refusals (404, 409, 400, 403) leave
nothing changed."""
import uuid

import pytest
from django.utils import timezone

from compute.models import Aggregate, AggregateHost, ComputeNode, Instance, Service, TaskState, VmState
from compute.scheduler.manager import NoValidHost, schedule
from tests.compute.nodes import forget_hosts
from tests.compute.pipeline import live_db  # noqa: F401  (a fixture)

pytestmark = pytest.mark.live

BASE = "/compute/v2.1/os-aggregates"
LATEST = {"OpenStack-API-Version": "compute 2.60"}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def rows(live_db):
    """Committed compute hosts (node and compute service, alive) and
    instances; removes them, and the aggregates named with `rows.name`,
    afterwards."""
    made = {"hosts": [], "names": []}

    class Rows:
        def host(self):
            host = unique("aggr")
            ComputeNode.objects.create(host=host, hypervisor_uri="test:///default", hypervisor_hostname=host,
                                       vcpus=8, memory_mb=4096, local_gb=100, cpu_allocation_ratio=1.0,
                                       ram_allocation_ratio=1.0, disk_allocation_ratio=1.0,
                                       heartbeat_at=timezone.now())
            Service.objects.create(host=host, binary=Service.COMPUTE_BINARY, last_seen_up=timezone.now())
            made["hosts"].append(host)
            return host

        def name(self, prefix="agg"):
            name = unique(prefix)
            made["names"].append(name)
            return name

        def instance(self, host=None, availability_zone=""):
            node = ComputeNode.objects.get(host=host) if host else None
            return Instance.objects.create(
                name="aggr", project_id="aggr-tests", user_id="u", flavor_id_at_boot="x", flavor_name="x",
                vcpus=1, memory_mb=128, root_gb=1, availability_zone=availability_zone, host=host, node=node,
                vm_state=VmState.ACTIVE if host else VmState.BUILDING,
                task_state=None if host else TaskState.SCHEDULING)

    yield Rows()
    AggregateHost.objects.filter(host__in=made["hosts"]).delete()
    Aggregate.objects.filter(name__in=made["names"]).delete()
    Instance.objects.filter(project_id="aggr-tests").delete()
    forget_hosts(made["hosts"])


def zones(*hosts):
    """Each host's zone as the scheduler (node) and os-services (service) see it."""
    return {host: (ComputeNode.objects.get(host=host).availability_zone,
                   Service.objects.get(host=host, binary=Service.COMPUTE_BINARY).availability_zone)
            for host in hosts}


def create(api, token, name, zone=None):
    body = {"name": name}
    if zone:
        body["availability_zone"] = zone
    response = api.post(BASE, token=token, json={"aggregate": body}, headers=LATEST)
    assert response.status_code == 200, response.content
    return response.json()["aggregate"]


def action(api, token, aggregate_id, body):
    return api.post(f"{BASE}/{aggregate_id}/action", token=token, json=body, headers=LATEST)


def test_aggregate_lifecycle_through_the_cli(cloud, rows):
    host = rows.host()
    name, zone, other_zone = rows.name(), unique("az"), unique("az")

    made = cloud.openstack("aggregate", "create", "--zone", zone, "--property", "ssd=true", name, "-f", "json")
    assert made["name"] == name and made["availability_zone"] == zone
    listed = cloud.openstack("aggregate", "list", "--long", "-f", "json")
    mine = [row for row in listed if row["Name"] == name]
    assert len(mine) == 1 and mine[0]["Availability Zone"] == zone and mine[0]["ID"] == made["id"]

    cloud.openstack("aggregate", "set", "--zone", other_zone, "--property", "gpu=none", name)
    cloud.openstack("aggregate", "unset", "--property", "ssd", name)
    shown = cloud.openstack("aggregate", "show", name, "-f", "json")
    assert shown["availability_zone"] == other_zone
    assert shown["properties"] == {"gpu": "none"} and shown["hosts"] == []
    assert Aggregate.objects.get(name=name).metadata == {"availability_zone": other_zone, "gpu": "none"}

    assert zones(host) == {host: ("nova", "nova")}
    added = cloud.openstack("aggregate", "add", "host", name, host, "-f", "json")
    assert added["hosts"] == [host]
    assert zones(host) == {host: (other_zone, other_zone)}

    listed = cloud.openstack("availability", "zone", "list", "--compute", "--long", "-f", "json")
    assert any(row["Zone Name"] == other_zone and row["Host Name"] == host for row in listed), listed
    services = cloud.openstack("compute", "service", "list", "--host", host, "-f", "json")
    assert [service["Zone"] for service in services] == [other_zone]
    hypervisor = cloud.openstack("hypervisor", "show", host, "-f", "json")
    assert hypervisor["aggregates"] == [name]

    removed = cloud.openstack("aggregate", "remove", "host", name, host, "-f", "json")
    assert removed["hosts"] == []
    assert zones(host) == {host: ("nova", "nova")}
    listed = cloud.openstack("availability", "zone", "list", "--compute", "-f", "json")
    assert other_zone not in [row["Zone Name"] for row in listed]

    cloud.openstack("aggregate", "delete", name)
    assert not Aggregate.objects.filter(name=name).exists()
    assert name not in [row["Name"] for row in cloud.openstack("aggregate", "list", "-f", "json")]


def test_scheduler_places_an_instance_of_a_zone_on_the_zones_host(cloud, api, rows):
    token = cloud.token()
    inside, outside = rows.host(), rows.host()
    zone = unique("az")
    aggregate = create(api, token, rows.name(), zone)
    # No host is in the zone yet: nowhere to go.
    with pytest.raises(NoValidHost):
        schedule(rows.instance(availability_zone=zone))
    assert action(api, token, aggregate["id"], {"add_host": {"host": inside}}).status_code == 200
    for _ in range(3):
        assert schedule(rows.instance(availability_zone=zone)).host == inside
    assert zones(inside, outside) == {inside: (zone, zone), outside: ("nova", "nova")}


def test_bodies_follow_the_microversion(cloud, api, rows):
    token = cloud.token()
    host = rows.host()
    name = rows.name()
    made = api.post(BASE, token=token, json={"aggregate": {"name": name, "availability_zone": None}})
    assert made.status_code == 200, made.content
    body = made.json()["aggregate"]
    # Nova's create answers without hosts and metadata; uuid from 2.41.
    assert "hosts" not in body and "metadata" not in body and "uuid" not in body
    assert body["availability_zone"] is None and body["deleted"] is False and body["updated_at"] is None
    assert action(api, token, body["id"], {"add_host": {"host": host}}).status_code == 200
    old = api.get(f"{BASE}/{body['id']}", token=token).json()["aggregate"]
    assert "uuid" not in old and old["hosts"] == [host] and old["metadata"] == {}
    new = api.get(f"{BASE}/{body['id']}", token=token, headers=LATEST).json()["aggregate"]
    assert new["uuid"] == str(Aggregate.objects.get(name=name).uuid)
    listed = api.get(BASE, token=token, headers=LATEST).json()["aggregates"]
    assert [row["hosts"] for row in listed if row["id"] == body["id"]] == [[host]]
    # No zone metadata: the host stays in the default zone.
    assert zones(host) == {host: ("nova", "nova")}


def test_refusals_are_novas_and_change_nothing(cloud, api, rows):
    token = cloud.token()
    host, spare = rows.host(), rows.host()
    first, second = rows.name(), rows.name()
    zone, other_zone = unique("az"), unique("az")
    one = create(api, token, first, zone)
    two = create(api, token, second, other_zone)
    three = create(api, token, rows.name())
    assert action(api, token, one["id"], {"add_host": {"host": host}}).status_code == 200
    assert action(api, token, three["id"], {"add_host": {"host": host}}).status_code == 200

    def state():
        return ([api.get(f"{BASE}/{row['id']}", token=token, headers=LATEST).json() for row in (one, two, three)],
                zones(host, spare))

    before = state()

    def refused(response, status, fault, *words):
        assert response.status_code == status, response.content
        message = response.json()[fault]["message"]
        assert response.json()[fault]["code"] == status
        assert all(word in message for word in words), message
        assert state() == before

    missing = 2 ** 31 - 1
    refused(api.get(f"{BASE}/{missing}", token=token), 404, "itemNotFound", str(missing))
    refused(api.get(f"{BASE}/not-a-number", token=token), 404, "itemNotFound")
    refused(api.put(f"{BASE}/{missing}", token=token, json={"aggregate": {"name": "x"}}), 404, "itemNotFound")
    refused(api.delete(f"{BASE}/{missing}", token=token), 404, "itemNotFound")
    refused(action(api, token, missing, {"add_host": {"host": spare}}), 404, "itemNotFound")
    refused(action(api, token, one["id"], {"add_host": {"host": "no-such-host"}}), 404, "itemNotFound",
            "no-such-host")
    refused(action(api, token, one["id"], {"remove_host": {"host": spare}}), 404, "itemNotFound", spare)
    refused(action(api, token, one["id"], {"add_host": {"host": host}}), 409, "conflictingRequest", host)
    # A host is in one zone only.
    refused(action(api, token, two["id"], {"add_host": {"host": host}}), 409, "conflictingRequest", host)
    refused(api.post(BASE, token=token, json={"aggregate": {"name": second}}), 409, "conflictingRequest",
            second)
    refused(api.put(f"{BASE}/{one['id']}", token=token, json={"aggregate": {"name": second}}), 409,
            "conflictingRequest", second)
    refused(api.delete(f"{BASE}/{one['id']}", token=token), 400, "badRequest", "not empty")

    refused(api.post(BASE, token=token, json={"aggregate": {}}), 400, "badRequest", "name")
    refused(api.post(BASE, token=token, json={"aggregate": {"name": 7}}), 400, "badRequest", "name")
    refused(api.post(BASE, token=token, json={"name": "x"}), 400, "badRequest", "aggregate")
    refused(api.post(BASE, token=token, json={"aggregate": {"name": rows.name(), "availability_zone": "a:b"}}),
            400, "badRequest", "availability_zone")
    refused(api.put(f"{BASE}/{two['id']}", token=token, json={"aggregate": {"availability_zone": ""}}), 400,
            "badRequest", "availability_zone")
    refused(api.put(f"{BASE}/{two['id']}", token=token, json={"aggregate": {"color": "red"}}), 400,
            "badRequest", "color")
    refused(action(api, token, one["id"], {"add_host": {}}), 400, "badRequest", "add_host")
    refused(action(api, token, one["id"], {"add_host": {"host": 3}}), 400, "badRequest", "host")
    refused(action(api, token, one["id"], {"evacuate": {}}), 400, "badRequest", "action")
    refused(action(api, token, one["id"], {"set_metadata": {"metadata": ["a"]}}), 400, "badRequest",
            "set_metadata")
    refused(action(api, token, one["id"], {"set_metadata": {"metadata": {"k": 5}}}), 400, "badRequest",
            "metadata/k")
    refused(action(api, token, one["id"], {"set_metadata": {"metadata": {"bad/key": "v"}}}), 400, "badRequest",
            "metadata")
    refused(action(api, token, one["id"], {"set_metadata": {"metadata": {"availability_zone": None}}}), 400,
            "badRequest", "availability zone")
    # A zone given to an aggregate whose host is in another zone already.
    refused(api.put(f"{BASE}/{three['id']}", token=token, json={"aggregate": {"availability_zone": other_zone}}),
            400, "badRequest", host, "more than one availability zone")
    refused(action(api, token, three["id"], {"set_metadata": {"metadata": {"availability_zone": other_zone}}}),
            400, "badRequest", host, "more than one availability zone")

    demo = cloud.token("stratus-demo")
    for response in (api.get(BASE, token=demo), api.get(f"{BASE}/{one['id']}", token=demo),
                     api.post(BASE, token=demo, json={"aggregate": {"name": rows.name()}}),
                     api.put(f"{BASE}/{one['id']}", token=demo, json={"aggregate": {"name": "x"}}),
                     api.delete(f"{BASE}/{two['id']}", token=demo),
                     action(api, demo, one["id"], {"remove_host": {"host": host}})):
        refused(response, 403, "forbidden")
    cloud.openstack("aggregate", "list", cloud="stratus-demo", expect_fail=True)


def test_zone_change_of_a_host_with_instances_is_refused(cloud, api, rows):
    token = cloud.token()
    busy, idle = rows.host(), rows.host()
    zone, other_zone = unique("az"), unique("az")
    zoned = create(api, token, rows.name(), zone)
    plain = create(api, token, rows.name())
    assert action(api, token, zoned["id"], {"add_host": {"host": busy}}).status_code == 200
    assert action(api, token, plain["id"], {"add_host": {"host": idle}}).status_code == 200
    rows.instance(host=busy)
    rows.instance(host=idle)

    def state():
        return ([api.get(f"{BASE}/{row['id']}", token=token, headers=LATEST).json() for row in (zoned, plain)],
                zones(busy, idle))

    before = state()
    assert before[1] == {busy: (zone, zone), idle: ("nova", "nova")}
    # The zone's name, the hosts' zone through set_metadata, and the hosts
    # moved in or out: each would move an instance to another zone.
    for response, status in (
            (api.put(f"{BASE}/{zoned['id']}", token=token, json={"aggregate": {"availability_zone": other_zone}}),
             400),
            (action(api, token, zoned["id"], {"set_metadata": {"metadata": {"availability_zone": other_zone}}}),
             400),
            (api.put(f"{BASE}/{plain['id']}", token=token, json={"aggregate": {"availability_zone": other_zone}}),
             400),
            (action(api, token, zoned["id"], {"add_host": {"host": idle}}), 409),
            (action(api, token, zoned["id"], {"remove_host": {"host": busy}}), 409)):
        assert response.status_code == status, response.content
        assert "instances" in response.text
        assert state() == before

    # Other metadata and the name change freely; so does the zone once the
    # instances are gone.
    renamed = rows.name()
    assert api.put(f"{BASE}/{zoned['id']}", token=token, json={"aggregate": {"name": renamed}}).status_code == 200
    assert action(api, token, zoned["id"], {"set_metadata": {"metadata": {"tier": "gold"}}}).status_code == 200
    Instance.objects.filter(project_id="aggr-tests").update(deleted=True)
    response = api.put(f"{BASE}/{zoned['id']}", token=token, json={"aggregate": {"availability_zone": other_zone}})
    assert response.status_code == 200, response.content
    body = response.json()["aggregate"]
    assert body["name"] == renamed and body["metadata"] == {"availability_zone": other_zone, "tier": "gold"}
    assert zones(busy) == {busy: (other_zone, other_zone)}
    assert action(api, token, zoned["id"], {"remove_host": {"host": busy}}).status_code == 200
    assert zones(busy) == {busy: ("nova", "nova")}


def test_admin_site_shows_aggregates_and_deletes_only_empty_ones(db):
    from django.contrib.auth import get_user_model
    from django.test import Client

    operator = Client()
    operator.force_login(get_user_model().objects.create_superuser("aggr-operator", "op@example.com", "pw"))
    full = Aggregate.objects.create(name="full", metadata={"availability_zone": "az-admin"})
    AggregateHost.objects.create(aggregate=full, host="admin-host")
    empty = Aggregate.objects.create(name="empty")
    listing = operator.get("/admin/compute/aggregate/")
    assert listing.status_code == 200 and b"az-admin" in listing.content
    page = operator.get(f"/admin/compute/aggregate/{full.pk}/change/")
    assert page.status_code == 200 and b"admin-host" in page.content
    # A host's zone moves with it through the API only: no deleting an aggregate that has hosts.
    assert operator.post(f"/admin/compute/aggregate/{full.pk}/delete/", {"post": "yes"}).status_code == 403
    assert operator.post(f"/admin/compute/aggregate/{empty.pk}/delete/", {"post": "yes"}).status_code == 302
    assert list(Aggregate.objects.values_list("name", flat=True)) == ["full"]


def test_a_host_keeps_its_zone_when_it_registers_again_and_leaves_aggregates_when_its_service_goes(
        cloud, api, rows):
    from compute.node import agent
    from compute.virt import get_driver

    host = rows.host()
    token = cloud.token()
    aggregate = create(api, token, rows.name(), zone="az-again")
    assert action(api, token, aggregate["id"], {"add_host": {"host": host}}).status_code == 200
    # The node's rows are deleted (as by an operator) and the node comes back.
    ComputeNode.objects.filter(host=host).delete()
    Service.objects.filter(host=host).delete()
    node = agent.Node(host, get_driver("test:///default"))
    try:
        node.register()
    finally:
        node.driver.close()
    assert zones(host) == {host: ("az-again", "az-again")}

    service = Service.objects.get(host=host, binary=Service.COMPUTE_BINARY)
    deleted = api.delete(f"/compute/v2.1/os-services/{service.id}", token=token, headers=LATEST)
    assert deleted.status_code == 204, deleted.content
    assert not AggregateHost.objects.filter(host=host).exists()
    shown = api.get(f"{BASE}/{aggregate['id']}", token=token, headers=LATEST).json()["aggregate"]
    assert shown["hosts"] == []
