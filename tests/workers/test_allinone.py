"""`manage.py allinone --detach` (what `make start` runs): every process
comes up under one supervisor, one killed is started again, and `--stop`
stops them all."""
import os
import signal
import socket
import subprocess
import sys

import pytest
from django.conf import settings

from tests.compute.nodes import forget_hosts, wait_until
from tests.compute.pipeline import live_db  # noqa: F401  (a fixture)
from tests.conftest import server_env

pytestmark = pytest.mark.live

NAMES = ("api", "control", "beat", "node", "console", "volume")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"


def test_the_supervisor_starts_a_killed_process_again_and_stops_everything(live_db, cloud, tmp_path):
    var = tmp_path / "var"
    env = server_env(STRATUS_VAR_DIR=str(var), STRATUS_API_PORT=str(free_port()),
                     STRATUS_HYPERVISOR_URI="test:///default",
                     STRATUS_NODES_DIR=str(tmp_path / "nodes"))

    def allinone(*args):
        return subprocess.run([sys.executable, str(settings.BASE_DIR / "manage.py"), "allinone", *args], env=env,
                              cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120)

    def pid_of(name):
        try:
            return int((var / "run" / f"{name}.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    started = allinone("--detach")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        for name in NAMES:
            assert f"started {name}" in started.stdout
            assert alive(pid_of(name)), name
        again = allinone("--detach")
        assert again.returncode != 0 and "already running" in again.stderr

        killed = pid_of("control")
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: pid_of("control") not in (None, killed) and alive(pid_of("control")), timeout=30,
                   message="the control worker to be started again")
        assert "control exited with status -9: starting it again" in (var / "log" / "control.log").read_text()
        assert alive(pid_of("supervisor")) and all(alive(pid_of(name)) for name in NAMES)
        pids = [pid_of(name) for name in ("supervisor", *NAMES)]
    finally:
        stopped = allinone("--stop")
        forget_hosts([settings.HOSTNAME])
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not any(alive(pid) for pid in pids)
    assert not list((var / "run").glob("*.pid"))
