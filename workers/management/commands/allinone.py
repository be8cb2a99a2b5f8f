"""Runs the all-in-one cloud: the API under gunicorn, a control worker,
this host's node worker, Celery beat, the console proxy and a file volume
back end's worker (and a Ceph RBD one when STRATUS_VOLUME_RBD_CEPH_CONF
names a cluster), under one
supervisor that starts again any of them that dies (a worker that lost
its broker for good, one killed by the OOM killer...). In the foreground
(Ctrl-C stops everything), or with --detach in the background with pid
and log files under var/run and var/log; --stop stops a detached cloud."""
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

STOP_GRACE_SECONDS = 15
# A child that dies is started again after a pause that doubles, up to the
# maximum, while it keeps dying within RESTART_RESET_SECONDS of its start.
RESTART_DELAY_SECONDS = 1
RESTART_MAX_DELAY_SECONDS = 30
RESTART_RESET_SECONDS = 60


def processes():
    """name -> argv of every process of the all-in-one cloud."""
    from volumes import conf as volume_conf

    python = sys.executable
    bin_dir = Path(python).parent
    manage = str(settings.BASE_DIR / "manage.py")
    run = settings.VAR_DIR / "run"
    table = {
        "api": [str(bin_dir / "gunicorn"), "-c", "python:cloud.gunicorn_conf",
                "--bind", f"127.0.0.1:{settings.API_PORT}",
                "--workers", os.environ.get("STRATUS_API_WORKERS", "2"), "--threads", "4",
                "--access-logfile", "-", "--graceful-timeout", "10", "cloud.wsgi"],
        "control": [python, "-m", "celery", "-A", "workers.celery", "worker", "--queues", "control",
                    "--hostname", f"control@{settings.HOSTNAME}", "--concurrency", "2", "--loglevel", "INFO"],
        "beat": [python, "-m", "celery", "-A", "workers.celery", "beat", "--loglevel", "INFO",
                 "--schedule", str(run / "celerybeat-schedule"), "--pidfile", ""],
        "node": [python, manage, "nodeworker", "--host", settings.HOSTNAME,
                 "--uri", os.environ.get("STRATUS_HYPERVISOR_URI", "qemu:///system")],
        "console": [python, manage, "consoleproxy", "--port", str(console_proxy_port())],
        # The file back end, volumes in STRATUS_VOLUME_DIR (var/volumes).
        "volume": [python, manage, "volumeworker"],
    }
    if volume_conf.VOLUME_RBD_CEPH_CONF:
        # Ceph RBD beside it, in STRATUS_VOLUME_RBD_POOL of that cluster.
        table["volume-rbd"] = [python, manage, "volumeworker", "--name", "rbd", "--driver", "rbd"]
    return table


def console_proxy_port():
    """The proxy listens where the console URLs it hands out point
    (STRATUS_CONSOLE_PROXY_URL), so a second cloud on this host can run
    beside the first on other ports."""
    url = os.environ.get("STRATUS_CONSOLE_PROXY_URL", "http://127.0.0.1:6080/vnc_lite.html")
    return urlsplit(url).port or 6080


class Command(BaseCommand):
    help = "Run the all-in-one cloud (API, control worker, node worker, beat, console proxy)."

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--detach", action="store_true", help="run in the background")
        mode.add_argument("--stop", action="store_true", help="stop a cloud started with --detach")

    def handle(self, *args, detach=False, stop=False, **options):
        self.run_dir = settings.VAR_DIR / "run"
        self.log_dir = settings.VAR_DIR / "log"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if stop:
            return self.stop()
        if self.running():
            raise CommandError(f"already running ({', '.join(self.running())}): `make stop` first")
        if detach:
            return self.detach()
        return self.supervise(sys.stdout.buffer)

    # -------------------------------------------------- pid files

    def pidfile(self, name):
        return self.run_dir / f"{name}.pid"

    def running(self):
        """The names (the supervisor's among them) whose pid file names a live process."""
        alive = []
        for name in ["supervisor", *processes()]:
            try:
                if _alive(int(self.pidfile(name).read_text())):
                    alive.append(name)
            except (FileNotFoundError, ValueError):
                continue
        return alive

    # -------------------------------------------------- background

    def detach(self):
        """The supervisor itself, in the background, its children's output
        in one log file per child."""
        log = open(self.log_dir / "supervisor.log", "ab")
        process = subprocess.Popen([sys.executable, str(settings.BASE_DIR / "manage.py"), "allinone"],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=settings.BASE_DIR, start_new_session=True,
                                   env={**os.environ, "STRATUS_ALLINONE_LOG_DIR": str(self.log_dir)})
        deadline = time.monotonic() + 30
        while set(self.running()) != {"supervisor", *processes()} and time.monotonic() < deadline:
            if process.poll() is not None:
                raise CommandError(f"the cloud did not start; see {self.log_dir / 'supervisor.log'}")
            time.sleep(0.2)
        for name in processes():
            self.stdout.write(f"started {name:8} log {self.log_dir / (name + '.log')}")
        self.stdout.write(f"Stratus API on http://127.0.0.1:{settings.API_PORT}  (openstack --os-cloud stratus ...)")

    def stop(self):
        """SIGTERM to the supervisor, which stops its children; whatever is
        left after the grace period is killed."""
        pids = {}
        for name in ["supervisor", *processes()]:
            try:
                pids[name] = int(self.pidfile(name).read_text())
            except (FileNotFoundError, ValueError):
                continue
        if "supervisor" in pids and _alive(pids["supervisor"]):
            os.kill(pids["supervisor"], signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS + 5
        for name, pid in pids.items():
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.pidfile(name).unlink(missing_ok=True)
            self.stdout.write(f"stopped {name}")

    # -------------------------------------------------- the supervisor

    def supervise(self, out):
        """Runs every process, prefixes their output lines with their names
        (or, detached, writes each to its own log file), and starts again
        any that exits until it is told to stop."""
        log_dir = os.environ.get("STRATUS_ALLINONE_LOG_DIR")
        self.pidfile("supervisor").write_text(str(os.getpid()))
        table = processes()
        width = max(len(name) for name in table)
        selector = selectors.DefaultSelector()
        children, delays, started_at, restart_at = {}, {}, {}, {}

        # Detached, each child's lines go to its own log file, opened once.
        logs = {name: open(Path(log_dir) / f"{name}.log", "ab", buffering=0) for name in table} if log_dir else {}

        def write(name, text):
            if log_dir:
                logs[name].write(text.encode() + b"\n")
            else:
                out.write(f"{name:>{width}} | {text}\n".encode())
                out.flush()

        def start(name):
            process = subprocess.Popen(table[name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=settings.BASE_DIR, start_new_session=True)
            children[name] = process
            started_at[name] = time.monotonic()
            self.pidfile(name).write_text(str(process.pid))
            selector.register(process.stdout, selectors.EVENT_READ, name)

        for name in table:
            start(name)
        self.stdout.write(f"Stratus API on http://127.0.0.1:{settings.API_PORT}  (Ctrl-C stops everything)")

        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append("SIGTERM"))
        try:
            while not stopping:
                for key, _ in selector.select(timeout=0.5):
                    line = key.fileobj.readline()
                    if not line:
                        selector.unregister(key.fileobj)
                        key.fileobj.close()
                        continue
                    write(key.data, line.decode(errors="replace").rstrip())
                now = time.monotonic()
                for name, process in children.items():
                    if process.poll() is None or name in restart_at:
                        continue
                    ran_for = now - started_at[name]
                    delay = RESTART_DELAY_SECONDS if ran_for > RESTART_RESET_SECONDS else min(
                        delays.get(name, RESTART_DELAY_SECONDS / 2) * 2, RESTART_MAX_DELAY_SECONDS)
                    delays[name], restart_at[name] = delay, now + delay
                    message = f"{name} exited with status {process.returncode}: starting it again in {delay:g} s"
                    write(name, message)
                for name, when in list(restart_at.items()):
                    if now >= when:
                        del restart_at[name]
                        start(name)
        except KeyboardInterrupt:
            pass
        self.stdout.write("stopping...")
        for process in children.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in children.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for name in ["supervisor", *table]:
            self.pidfile(name).unlink(missing_ok=True)
        for log in logs.values():
            log.close()


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
