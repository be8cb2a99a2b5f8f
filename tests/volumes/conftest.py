"""Block storage tests run the real API (the `cloud` fixture), a real
control worker (scheduling) and a real volume worker serving a file back
end in a directory of the test's own, driven by the `openstack` CLI."""
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from tests.compute.nodes import wait_until
from tests.compute.pipeline import ControlWorker
from tests.conftest import server_env
from volumes.models import Backend


@pytest.fixture(scope="module")
def admin(cloud):
    """The cloud admin's token, project and user."""
    conn = cloud.connect("stratus")
    return {"token": conn.auth_token, "project": conn.current_project_id, "user": conn.current_user_id}


@pytest.fixture(scope="module")
def demo(cloud):
    """The demo project member's token, project and user."""
    conn = cloud.connect("stratus-demo")
    return {"token": conn.auth_token, "project": conn.current_project_id, "user": conn.current_user_id}


def path(who, rest):
    """A Block Storage path in `who`'s project."""
    return f"/volume/v3/{who['project']}/{rest}"


class VolumeWorker:
    """`manage.py volumeworker` as a child process."""

    def __init__(self, directory, log_path, name=None, capacity_gb=100, backend_args=None, **env):
        self.directory = directory
        self.log_path = log_path
        self.name = name or f"file-{uuid.uuid4().hex[:6]}"
        self.capacity_gb = capacity_gb
        # The back end's own options (--driver rbd --ceph-conf ...); else a file back end in `directory`.
        self.backend_args = backend_args or ["--directory", str(directory)]
        self.env = {"STRATUS_VOLUME_HEARTBEAT_INTERVAL": "1", **env}
        self.process = None

    @property
    def host(self):
        return f"{settings.HOSTNAME}@{self.name}"

    def start(self):
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "volumeworker", "--name", self.name,
             *self.backend_args, "--capacity-gb", str(self.capacity_gb)],
            env=server_env(**self.env), stdout=self.log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR)
        wait_until(lambda: " ready." in self.output() or self.process.poll() is not None, timeout=120,
                   message="volume worker")
        assert self.process.poll() is None, self.output()
        return self

    def output(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self, sig=9):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.log.close()

    def stop(self):
        self.kill(15)

    def files(self):
        return sorted(path.name for path in self.directory.iterdir())


def forget_backends(*hosts):
    """A stopped worker's back end leaves the scheduler's view."""
    Backend.objects.filter(host__in=hosts).update(heartbeat_at=None, disabled=True)


@pytest.fixture(scope="module")
def live_db(django_db_setup, django_db_blocker):
    """Committed writes, shared with the worker processes, for a whole module."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="module")
def control(live_db, cloud, tmp_path_factory):
    worker = ControlWorker(tmp_path_factory.mktemp("control") / "control.log").start()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def volume_worker(live_db, cloud, control, tmp_path_factory):
    """One file back end for the module, as its only live back end."""
    forget_backends(*Backend.objects.values_list("host", flat=True))
    base = tmp_path_factory.mktemp("volumes")
    worker = VolumeWorker(base / "data", base / "worker.log", STRATUS_PUBLIC_URL=cloud.url,
                          STRATUS_IMAGE_CACHE_DIR=str(base / "image-cache")).start()
    yield worker
    worker.stop()
    forget_backends(worker.host)


def wait_status(cloud, resource_id, wanted, timeout=60, kind="volume", cloud_name="stratus"):
    """Polls the API (openstacksdk, one connection) until the volume or
    snapshot is in one of `wanted`; returns it as `openstack ... show` does."""
    conn = cloud.connect(cloud_name)
    get = conn.block_storage.get_volume if kind == "volume" else conn.block_storage.get_snapshot
    wanted = (wanted,) if isinstance(wanted, str) else tuple(wanted)
    wait_until(lambda: get(resource_id).status in wanted, timeout=timeout, interval=0.2,
               message=f"{kind} {resource_id} to be {wanted}")
    return cloud.openstack(kind, "show", resource_id, "-f", "json", cloud=cloud_name)
