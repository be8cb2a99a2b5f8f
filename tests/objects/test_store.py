"""The filesystem back end and the listing queries, below the API."""
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from objects import data
from objects.models import Account, Container, Object
from objects.stores import StoreError
from objects.stores.filesystem import FilesystemStore

WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from objects.stores.filesystem import FilesystemStore

def chunks():
    while True:
        yield b"x" * 65536
        time.sleep(0.01)

FilesystemStore({directory!r}).write(chunks())
"""


def data_files(directory):
    return [p for p in directory.rglob("*") if p.is_file() and p.parent.name != "tmp"]


def test_a_write_killed_midway_leaves_no_object(tmp_path):
    directory = tmp_path / "store"
    from django.conf import settings

    writer = subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(settings.BASE_DIR),
                                                                   directory=str(directory))])
    try:
        deadline = time.monotonic() + 30
        while not list((directory / "tmp").glob("*")) or list((directory / "tmp").glob("*"))[0].stat().st_size == 0:
            assert writer.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert data_files(directory) == []
    assert FilesystemStore(directory).discard_temporary(time.time() + 1) == 1
    assert data_files(directory) == [] and list((directory / "tmp").iterdir()) == []


def test_a_failing_write_leaves_nothing_and_a_whole_one_reads_back(tmp_path):
    store = FilesystemStore(tmp_path)

    def failing():
        yield b"abc"
        raise OSError("the client went away")

    with pytest.raises(OSError):
        store.write(failing())
    assert data_files(tmp_path) == [] and list((tmp_path / "tmp").iterdir()) == []
    key = store.write([b"hello ", b"world"])
    with store.open(key) as handle:
        assert handle.read() == b"hello world"
    store.delete(key)
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
