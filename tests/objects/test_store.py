"""The filesystem back end and the listing queries, below the API."""
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from objects import data
from objects.models import Account, Container, Object
from objects.stores import StoreError
from objects.stores.filesystem import FilesystemStore

WRITER = """
import sys, time
sys.path.insert(0, {root!r})
import django
django.setup()
from tests.objects.test_store import make_store

def chunks():
    while True:
        yield b"x" * 65536
        time.sleep(0.01)

make_store({kind!r}, {where!r}).write(chunks())
"""


def make_store(kind, where):
    if kind == "filesystem":
        return FilesystemStore(where)
    from objects.stores.rados import RadosStore

    return RadosStore(where, "objects")


@pytest.fixture(params=["filesystem", "rados"])
def store_kind(request, tmp_path):
    """(kind, where): a store directory, or the ceph.conf of the shared cluster."""
    if request.param == "filesystem":
        return "filesystem", str(tmp_path / "store")
    return "rados", request.getfixturevalue("ceph_conf")


@pytest.fixture
def store(store_kind):
    opened = make_store(*store_kind)
    yield opened
    if hasattr(opened, "close"):
        opened.close()


def leftovers(store):
    """What the store holds: data files or RADOS objects, whole or partial."""
    if isinstance(store, FilesystemStore):
        return [p for p in store.directory.rglob("*") if p.is_file()] if store.directory.exists() else []
    return sorted(o.key for o in store.ioctx.list_objects() if o.key != "stratus.writing") + sorted(store._writing())


def started_writing(store):
    if isinstance(store, FilesystemStore):
        partial = list(store.temporary.glob("*")) if store.temporary.exists() else []
        return bool(partial) and partial[0].stat().st_size > 0
    return any(o.key.endswith(".00000000") for o in store.ioctx.list_objects())


def test_a_write_killed_midway_leaves_no_object(store_kind, store):
    before = leftovers(store)
    writer = subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(settings.BASE_DIR), kind=store_kind[0],
                                                                   where=store_kind[1])],
                              env={**os.environ, "DJANGO_SETTINGS_MODULE": "cloud.settings"})
    try:
        deadline = time.monotonic() + 60
        while not started_writing(store):
            assert writer.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert store.discard_temporary(time.time() + 1) == 1
    assert leftovers(store) == before


def test_a_failing_write_leaves_nothing_and_a_whole_one_reads_back(store):
    before = leftovers(store)

    def failing():
        yield b"abc" * 2**21  # past one RADOS stripe
        raise OSError("the client went away")

    with pytest.raises(OSError):
        store.write(failing())
    assert leftovers(store) == before
    content = os.urandom(9 * 2**20 + 5)
    key = store.write(content[start:start + 2**20] for start in range(0, len(content), 2**20))
    with store.open(key) as handle:
        assert handle.read() == content
        handle.seek(4 * 2**20 - 3)
        assert handle.read(6) == content[4 * 2**20 - 3:4 * 2**20 + 3]
    store.delete(key)
    assert leftovers(store) == before  # delete frees the data
    with pytest.raises(StoreError):
        store.open(key)
    with pytest.raises(StoreError):
        store.open("../../etc/passwd")


@pytest.mark.django_db
def test_listing_a_page_costs_the_same_queries_at_any_depth():
    account = Account.objects.create(project_id="listing-depth")
    container = Container.objects.create(account=account, name="many")
    now = timezone.now()
    Object.objects.bulk_create([
        Object(container=container, name=f"{group}/{index:05d}", size=1, etag="e", content_type="t",
               last_modified=now)
        for group in ("a", "b") for index in range(2500)])
    rows = Object.objects.filter(container=container)

    def page(**options):
        with CaptureQueriesContext(connection) as queries:
            found = data.keyset_listing(rows, 100, **options)
        return [getattr(item, "name", item) for item in found], len(queries)

    first, first_queries = page()
    deep, deep_queries = page(marker="b/02000")
    assert first[0] == "a/00000" and len(first) == 100
    assert deep[0] == "b/02001" and len(deep) == 100
    assert first_queries == deep_queries == 1
    # Every query asks for the names past a marker in index order, never for an offset.
    with CaptureQueriesContext(connection) as queries:
        data.keyset_listing(rows, 100, marker="b/02000")
    assert "OFFSET" not in queries[0]["sql"].upper() and '"name" >' in queries[0]["sql"]
    rolled, rolled_queries = page(delimiter="/")
    assert rolled == ["a/", "b/"] and rolled_queries == 3  # one per subdir, one to find the end
    ending, _ = page(prefix="b/", end_marker="b/00003")
    assert ending == ["b/00000", "b/00001", "b/00002"]


@pytest.mark.django_db
def test_a_put_costs_the_same_few_queries_however_full_its_container(tokens, demo_account):
    """A 4 KiB PUT through the Swift view: one read of the container with
    its account, then one statement writing the row and adding it to this
    writer's shares of the two counts; the same with a thousand objects
    beside it; a replacement locks, updates and counts the row it finds
    in one more."""
    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"HTTP_X_AUTH_TOKEN": tokens["demo"]}
    project, name = demo_account.split("AUTH_")[1], f"queries-{uuid.uuid4().hex[:8]}"
    container = f"{demo_account}/{name}"
    assert client.put(container, **headers).status_code == 201
    written, last = [], []

    def put_queries(object_name):
        with CaptureQueriesContext(connection) as queries:
            response = client.put(f"{container}/{object_name}", b"x" * 4096,
                                  content_type="application/octet-stream", **headers)
        assert response.status_code == 201
        last[:] = queries.captured_queries
        written.append(Object.objects.get(container__account_id=project, container__name=name,
                                          name=object_name).data_key)
        return len(queries)

    try:
        first = put_queries("first")
        row = Container.objects.get(account_id=project, name=name)
        now = timezone.now()
        Object.objects.bulk_create([Object(container=row, name=f"many/{index:04d}", size=1, etag="e",
                                           content_type="t", last_modified=now) for index in range(1000)])
        assert put_queries("after-many") == first
        # A new name: one statement writes the row and its counts.
        assert first == 2, [query["sql"][:120] for query in last]
        # A replacement finds the name taken, then one statement locks the row, updates it and adds
        # what it grew by to the counts.
        assert put_queries("first") == 3, [query["sql"][:120] for query in last]
    finally:
        # Rolled back with the test: the data the rows named goes here.
        store = FilesystemStore(settings.OBJECT_DIR)
        for key in written:
            store.delete(key)
