"""Helpers for tests that run real node worker processes: starting and
killing them, and making instances the way the control plane does (rows
through compute.models, a claim, a `create` action)."""
import os
import signal
import subprocess
import sys
import time
import uuid

from django.conf import settings

from compute.models import (
    ComputeNode, Instance, Service, TaskState, VmState, claim_resources, start_action,
)
from tests.conftest import server_env

PROJECT = "node-tests"


def wait_until(predicate, timeout=60, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


class NodeWorker:
    """`manage.py nodeworker ARGS` as a child process sharing the test
    database and broker."""

    def __init__(self, args, log_path, **env):
        self.args = [str(arg) for arg in args]
        self.log_path = log_path
        self.env = env
        self.process = None

    def start(self):
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "nodeworker", *self.args],
            env=server_env(**self.env), stdout=self.log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR)
        wait_until(lambda: self.ready() or self.exited(), timeout=120, message=f"node worker {self.args}")
        assert not self.exited(), self.output()
        return self

    def ready(self):
        return " ready." in self.output()

    def exited(self):
        return self.process.poll() is not None

    def output(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self, sig=signal.SIGKILL):
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(timeout=30)
        # A new start looks for a new " ready." line.
        self.log.close()
        self.log_path.rename(self.log_path.with_suffix(f".{time.monotonic_ns()}.log"))

    def stop(self):
        self.kill(signal.SIGTERM)


def make_instance(host, vcpus=1, memory_mb=128, root_gb=1, image_id=""):
    """An instance the scheduler has placed on `host`: building, task_state
    scheduling, its claim made."""
    node = ComputeNode.objects.get(host=host)
    instance = Instance.objects.create(
        name=f"node-test-{uuid.uuid4().hex[:6]}", project_id=PROJECT, user_id="node-tests",
        flavor_id_at_boot="node-test", flavor_name="node-test", vcpus=vcpus, memory_mb=memory_mb,
        root_gb=root_gb, image_id=image_id, host=host, node=node, vm_state=VmState.BUILDING,
        task_state=TaskState.SCHEDULING)
    assert claim_resources(instance, node) is not None
    start_action(instance, "create", f"req-{uuid.uuid4()}", "node-tests", PROJECT)
    return instance


def forget_hosts(hosts):
    """Deletes every row the tests made for `hosts`."""
    Instance.objects.filter(host__in=hosts).delete()
    ComputeNode.objects.filter(host__in=hosts).delete()
    Service.objects.filter(host__in=hosts).delete()
