"""`openstack hypervisor show` with the host's uptime: the node agent
reports its host's boot time and load on each heartbeat, the API renders
them as Nova does (`GET /os-hypervisors/{id}/uptime`)."""
import re
import uuid

import pytest
from django.utils import timezone

from compute.models import ComputeNode
from tests.compute.nodes import wait_until
from tests.compute.pipeline import live_db, start_nodes, stop_nodes  # noqa: F401  (live_db is a fixture)

pytestmark = pytest.mark.live

HEADERS = {"OpenStack-API-Version": "compute 2.60"}


@pytest.fixture(scope="module")
def node(live_db, cloud, tmp_path_factory):
    # Heartbeats far apart (the node stays up for SERVICE_DOWN_TIME, 60 s):
    # each one reports the worker's start as the host's boot time, and
    # test_uptime_is_rendered_like_the_uptime_command must read the one it
    # sets before the next heartbeat overwrites it.
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("uptime"), 1, "uptime",
                                STRATUS_HEARTBEAT_INTERVAL="30")
    wait_until(lambda: ComputeNode.objects.filter(host=hosts[0], booted_at__isnull=False).exists(),
               message="the node's first heartbeat")
    yield hosts[0]
    stop_nodes(worker, hosts)


def test_hypervisor_show_includes_the_uptime_the_node_reports(cloud, node):
    shown = cloud.openstack("hypervisor", "show", node, "-f", "json")
    assert shown["hypervisor_hostname"] == node
    # A simulated node's host booted with its worker, moments ago.
    assert re.fullmatch(r"\d+ min", shown["uptime"]), shown
    assert shown["users"] == "0"
    assert shown["load_average"] == "0.00, 0.00, 0.00"
    assert re.fullmatch(r"\d\d:\d\d:\d\d", shown["host_time"]), shown


def test_uptime_is_rendered_like_the_uptime_command(cloud, api, node):
    row = ComputeNode.objects.get(host=node)
    token = cloud.token()
    ComputeNode.objects.filter(pk=row.pk).update(booted_at=timezone.now() - timezone.timedelta(days=3, hours=2,
                                                                                              minutes=5))
    # The next heartbeat reports the worker's start again: read before it.
    response = api.get(f"/compute/v2.1/os-hypervisors/{row.pk}/uptime", token=token, headers=HEADERS)
    assert response.status_code == 200, response.content
    body = response.json()["hypervisor"]
    assert body["id"] == str(row.pk) and body["hypervisor_hostname"] == node
    assert body["state"] == "up" and body["status"] == "enabled"
    assert re.fullmatch(r" \d\d:\d\d:\d\d up 3 days,  2:0[56],  0 users,  load average: 0\.00, 0\.00, 0\.00",
                        body["uptime"]), body["uptime"]


def test_uptime_of_an_unknown_hypervisor_is_404_and_needs_admin(cloud, api, node):
    missing = api.get(f"/compute/v2.1/os-hypervisors/{uuid.uuid4()}/uptime", token=cloud.token(),
                      headers=HEADERS)
    assert missing.status_code == 404
    row = ComputeNode.objects.get(host=node)
    forbidden = api.get(f"/compute/v2.1/os-hypervisors/{row.pk}/uptime", token=cloud.token("stratus-demo"),
                        headers=HEADERS)
    assert forbidden.status_code == 403
