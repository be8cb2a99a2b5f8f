"""Token bodies are built from names, roles and a catalog each API process
holds in memory: a change made through any process shows in the very next
validation everywhere, the counters that say so cost no round trip while
they are followed, and a Redis that cannot be asked only makes validation
slower, never wrong."""
import uuid

import pytest
import redis

from cloud import generations
from identity import summaries
from identity.models import Domain, Project
from tests.private_redis import PrivateRedis
from tests.compute.nodes import wait_until
from tests.identity.test_api import admin_token, issue, make_user, password_auth, unique  # noqa: F401  (fixtures)

# The live server runs two worker processes; new connections reach both.
ROUNDS = 8


def validated_bodies(api, token):
    bodies = []
    for _ in range(ROUNDS):
        response = api.get("/identity/v3/auth/tokens", token=token, headers={"X-Subject-Token": token})
        assert response.status_code == 200
        bodies.append(response.json()["token"])
    return bodies


@pytest.mark.live
def test_a_rename_and_a_new_endpoint_show_in_the_next_validation_of_every_process(api, make_user, cloud):
    user_id, name, password, project_id, project_name = make_user()
    token = issue(api, password_auth(name, password, project_name)).headers["X-Subject-Token"]
    admin = cloud.token("stratus")
    assert {body["project"]["name"] for body in validated_bodies(api, token)} == {project_name}

    renamed, new_user_name = unique("renamed"), unique("renamed-user")
    assert api.patch(f"/identity/v3/projects/{project_id}", token=admin,
                     json={"project": {"name": renamed}}).status_code == 200
    assert api.patch(f"/identity/v3/users/{user_id}", token=admin,
                     json={"user": {"name": new_user_name}}).status_code == 200
    service = api.post("/identity/v3/services", token=admin,
                       json={"service": {"type": unique("metering"), "name": "meter"}}).json()["service"]
    endpoint_url = f"http://127.0.0.1:9999/{uuid.uuid4().hex}"
    assert api.post("/identity/v3/endpoints", token=admin, json={"endpoint": {
        "service_id": service["id"], "interface": "public", "url": endpoint_url}}).status_code == 201

    for body in validated_bodies(api, token):
        assert body["project"]["name"] == renamed
        assert body["user"]["name"] == new_user_name
        urls = [endpoint["url"] for entry in body["catalog"] for endpoint in entry["endpoints"]]
        assert endpoint_url in urls

    assert api.delete(f"/identity/v3/services/{service['id']}", token=admin).status_code == 204
    for body in validated_bodies(api, token):
        assert service["id"] not in {entry["id"] for entry in body["catalog"]}


@pytest.mark.django_db(transaction=False)
def test_what_is_held_is_dropped_when_the_counter_moves(django_capture_on_commit_callbacks):
    domain = Domain.objects.create(name=unique("dom"))
    project = Project.objects.create(name="before", domain=domain)
    assert summaries.project(project.id)["name"] == "before"

    with django_capture_on_commit_callbacks(execute=True):
        Project.objects.filter(id=project.id).update(name="after")
    assert summaries.project(project.id)["name"] == "after"


@pytest.fixture
def own_redis(tmp_path, settings):
    """The generation counters on a Redis of the test's own (which it may
    stop), followed by a fresh follower."""
    server = PrivateRedis(tmp_path)
    server.start()
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{server.port}/1"}}
    saved = generations._client, generations._follower_pid
    generations._client, generations._follower_pid = None, None
    try:
        yield server
    finally:
        server.stop()
        generations._client, generations._follower_pid = saved


def mget_calls(server):
    info = redis.Redis(port=server.port).info("commandstats")
    return info.get("cmdstat_mget", {}).get("calls", 0)


@pytest.mark.django_db(transaction=False)
def test_followed_counters_cost_no_round_trip_and_redis_gone_means_the_database(own_redis,
                                                                               django_capture_on_commit_callbacks):
    domain = Domain.objects.create(name=unique("dom"))
    project = Project.objects.create(name="before", domain=domain)
    assert summaries.project(project.id)["name"] == "before"
    follower = generations._follower()
    wait_until(lambda: follower.values is not None, timeout=10, message="the follower subscribed")

    calls = mget_calls(own_redis)
    for _ in range(50):
        with generations.request_scope():
            assert summaries.project(project.id)["name"] == "before"
    assert mget_calls(own_redis) == calls  # read from memory
    with django_capture_on_commit_callbacks(execute=True):
        Project.objects.filter(id=project.id).update(name="after")
    with generations.request_scope():
        assert summaries.project(project.id)["name"] == "after"  # the published change, seen at once

    own_redis.stop()
    wait_until(lambda: follower.values is None, timeout=10, message="the follower to notice")
    Project.objects.filter(id=project.id).update(name="without-redis")  # no commit: no counter moves
    with generations.request_scope():
        assert generations.current("identity") is None
        assert summaries.project(project.id)["name"] == "without-redis"


@pytest.mark.django_db(transaction=False)
def test_a_process_reads_its_own_change_at_once_though_the_channel_brings_it_later(
        own_redis, django_capture_on_commit_callbacks):
    follower = generations._follower()
    wait_until(lambda: follower.values is not None, timeout=10, message="the follower subscribed")
    client = redis.Redis(port=own_redis.port, db=1)
    stale = 0
    for _ in range(2000):
        with django_capture_on_commit_callbacks(execute=True):
            generations.changed("identity")
        if generations.current("identity") != client.get(generations._key("identity")):
            stale += 1
    assert stale == 0
    wait_until(lambda: not follower.awaited, timeout=10, message="the channel to bring every change back")
