"""Console requests wait for the instance's node inside an API worker
thread. A node that is alive by its heartbeat but never answers (nobody
consumes its queue) gets a bounded wait, then a 409 naming the node; and
many such requests at once still leave the API's threads to everything
else, token validations included."""
import os
import threading
import uuid

import pytest
import redis
import requests
from django.utils import timezone

from compute import conf
from compute.models import ComputeNode, Instance, Service, VmState
from tests.compute.nodes import forget_hosts, wait_until
from tests.compute.pipeline import live_db  # noqa: F401  (a fixture)

pytestmark = pytest.mark.live

# Twice the live server's threads (2 processes x 4): without a bound on how
# many requests wait for nodes, every thread would be waiting.
CALLS_AT_ONCE = 16


@pytest.fixture
def silent_node_instance(live_db):
    """An ACTIVE instance on a node whose heartbeat is fresh but whose queue
    no worker consumes."""
    host = f"silent-{uuid.uuid4().hex[:6]}"
    node = ComputeNode.objects.create(host=host, hypervisor_uri="test:///default", hypervisor_hostname=host,
                                      vcpus=4, memory_mb=4096, local_gb=40, heartbeat_at=timezone.now())
    Service.objects.create(host=host, binary=Service.COMPUTE_BINARY, topic=f"compute.{host}",
                           last_seen_up=timezone.now())
    instance = Instance.objects.create(
        name=f"silent-{uuid.uuid4().hex[:6]}", project_id="console-node-calls", user_id="console-node-calls",
        flavor_id_at_boot="x", flavor_name="x", vcpus=1, memory_mb=64, root_gb=0, host=host, node=node,
        vm_state=VmState.ACTIVE, task_state=None)
    yield instance
    broker = redis.Redis.from_url(os.environ.get("STRATUS_BROKER_URL", "redis://127.0.0.1:6379/0"))
    broker.delete(f"compute.{host}")
    forget_hosts([host])


def queued_for(host):
    """Messages waiting in the node's queue: requests the API sent it."""
    broker = redis.Redis.from_url(os.environ.get("STRATUS_BROKER_URL", "redis://127.0.0.1:6379/0"))
    return broker.llen(f"compute.{host}")


def did_not_answer(host):
    return f"Compute host {host} did not answer within {conf.NODE_CALL_TIMEOUT:g} s."


def test_console_log_and_url_of_a_silent_node_answer_409_naming_it(cloud, silent_node_instance):
    instance = silent_node_instance
    log = cloud.openstack("console", "log", "show", instance.pk, expect_fail=True)
    assert did_not_answer(instance.host) in log.stderr
    url = cloud.openstack("console", "url", "show", "--novnc", instance.pk, expect_fail=True)
    assert did_not_answer(instance.host) in url.stderr


def test_many_waits_on_a_silent_node_leave_threads_for_token_checks(cloud, silent_node_instance):
    instance, host = silent_node_instance, silent_node_instance.host
    token = cloud.token()
    answers = []
    lock = threading.Lock()

    def console_log():
        response = requests.post(f"{cloud.url}/compute/v2.1/servers/{instance.pk}/action",
                                 json={"os-getConsoleOutput": {}}, headers={"X-Auth-Token": token}, timeout=120)
        with lock:
            answers.append(response)

    callers = [threading.Thread(target=console_log) for _ in range(CALLS_AT_ONCE)]
    for caller in callers:
        caller.start()

    def waited_out():
        return [a for a in answers if did_not_answer(host) in a.text]

    # Every request is either answered already or waiting for the node (its
    # message in the node's queue), and none has waited out its bound yet:
    # no request is stuck in line behind the waits.
    wait_until(lambda: not waited_out() and len(answers) + queued_for(host) == CALLS_AT_ONCE,
               timeout=60, interval=0.05, message="every console request answered or waiting, none given up yet")
    assert queued_for(host) > 0, "no request waited for the node"
    validation = requests.get(f"{cloud.url}/identity/v3/auth/tokens",
                              headers={"X-Auth-Token": token, "X-Subject-Token": token}, timeout=120)
    assert validation.status_code == 200, validation.text
    with lock:
        assert not waited_out(), "the token check waited for a console request to give up on the node"

    for caller in callers:
        caller.join()
    assert len(answers) == CALLS_AT_ONCE
    for answer in answers:
        assert answer.status_code == 409, answer.text
        message = answer.json()["conflictingRequest"]["message"]
        assert did_not_answer(host) in message or "too many requests are waiting" in message, message
    assert waited_out(), "no request waited for the node and gave up after the bound"
