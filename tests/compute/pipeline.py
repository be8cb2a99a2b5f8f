"""Helpers for tests of the boot pipeline end to end: a real control
worker (Celery, queue `control`), simulated nodes (the node worker on
libvirt's test driver), a tiny bootable image uploaded through the image
API, and a project with room for many servers."""
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings

from compute.models import Claim, ComputeNode, Instance, VmState
from django.db.models import Count, Sum
from tests.compute.nodes import NodeWorker, forget_hosts, wait_until
from tests.conftest import server_env

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def live_db(django_db_setup, django_db_blocker):
    """Committed writes, shared with the worker processes, for a whole module."""
    with django_db_blocker.unblock():
        yield


class ControlWorker:
    """`celery worker -Q control`: scheduling and the pipeline's decisions."""

    def __init__(self, log_path, concurrency=4, pool="threads", **env):
        self.log_path = log_path
        self.concurrency = concurrency
        self.pool = pool
        self.env = env

    def start(self):
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "celery"), "-A", "workers.celery", "worker", "-Q", "control", "-P", self.pool,
             "-c", str(self.concurrency), "-n", f"control-{uuid.uuid4().hex[:6]}@%h", "--without-gossip",
             "--without-mingle", "-l", "INFO"],
            env=server_env(**self.env), stdout=self.log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR)
        wait_until(lambda: " ready." in self.output() or self.process.poll() is not None, timeout=120,
                   message="control worker")
        assert self.process.poll() is None, self.output()
        return self

    def output(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def control(live_db, cloud, tmp_path_factory):
    """A control worker for the module's tests."""
    worker = ControlWorker(tmp_path_factory.mktemp("control") / "control.log").start()
    yield worker
    worker.stop()


def start_nodes(cloud, tmp_path, count, prefix_word, vcpus=16, memory_mb=32768, disk_gb=500, **env):
    """`count` simulated nodes in one node worker; they fetch images from
    the test cloud's image API. `env` adds to (or overrides) the worker's
    environment."""
    prefix = f"{prefix_word}-{uuid.uuid4().hex[:6]}-"
    env = {"STRATUS_NODES_DIR": str(tmp_path / "nodes"), "STRATUS_PUBLIC_URL": cloud.url,
           "STRATUS_SIMULATED_VCPUS": str(vcpus), "STRATUS_SIMULATED_MEMORY_MB": str(memory_mb),
           "STRATUS_SIMULATED_DISK_GB": str(disk_gb), "STRATUS_HEARTBEAT_INTERVAL": "1",
           "STRATUS_POWER_SYNC_INTERVAL": "5", **env}
    worker = NodeWorker(["--simulate", count, "--prefix", prefix, "--concurrency", 8],
                        tmp_path / f"{prefix}worker.log", **env)
    worker.start()
    return worker, [f"{prefix}{index}" for index in range(1, count + 1)]


def stop_nodes(worker, hosts):
    worker.stop()
    forget_hosts(hosts)


def upload_tiny_image(cloud, tmp_path):
    """A small qcow2 image, public, through the real image API."""
    path = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    name = f"tiny-{uuid.uuid4().hex[:6]}"
    image = cloud.openstack("image", "create", name, "--file", str(path), "--disk-format", "qcow2",
                            "--container-format", "bare", "--public", "-f", "json")
    return image["id"]


def unlimited_quota(cloud, project="admin"):
    cloud.openstack("quota", "set", "--instances", "-1", "--cores", "-1", "--ram", "-1", project)


def boot_at_once(cloud, names, image_id, flavor, threads=20):
    """Creates one server per name, all requests in flight together; returns their ids."""

    flavor_id = cloud.connect().compute.find_flavor(flavor, ignore_missing=False).id

    def create(name):
        conn = cloud.connect()
        return conn.compute.create_server(name=name, image_id=image_id, flavor_id=flavor_id, networks="none").id

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(create, names))


def wait_settled(cloud, ids, timeout=300):
    """Waits until none of the servers is building; returns {id: server}."""
    conn = cloud.connect()
    wanted = set(ids)

    def settled():
        servers = {server.id: server for server in conn.compute.servers(details=True, all_projects=True)
                   if server.id in wanted}
        if len(servers) == len(wanted) and all(server.status not in ("BUILD",) for server in servers.values()):
            return servers
        return None

    try:
        return wait_until(settled, timeout=timeout, interval=1, message=f"{len(ids)} servers to leave BUILD")
    except AssertionError as error:
        building = Instance.objects.filter(pk__in=ids, vm_state=VmState.BUILDING).values_list(
            "pk", "task_state", "host", "updated_at")
        raise AssertionError(f"{error}; still building (id, task_state, host, updated): {list(building)}") from None


def node_usage(hosts):
    """{host: (vcpus_used, memory_mb_used, claims, claimed memory, memory capacity)} from the database."""
    claims = {row["node__host"]: row for row in Claim.objects.filter(node__host__in=hosts).values(
        "node__host").annotate(count=Count("id"), memory=Sum("memory_mb"), vcpus=Sum("vcpus"))}
    usage = {}
    for node in ComputeNode.objects.filter(host__in=hosts):
        claim = claims.get(node.host, {"count": 0, "memory": 0, "vcpus": 0})
        usage[node.host] = {"memory_mb_used": node.memory_mb_used, "vcpus_used": node.vcpus_used,
                            "claims": claim["count"], "claimed_memory": claim["memory"] or 0,
                            "claimed_vcpus": claim["vcpus"] or 0,
                            "memory_capacity": node.memory_mb * node.ram_allocation_ratio}
    return usage
