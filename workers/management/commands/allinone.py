"""Runs the all-in-one cloud: the API under gunicorn, a control worker,
this host's node worker, Celery beat and the console proxy. In the foreground (Ctrl-C stops
everything), or with --detach in the background with pid and log files
under var/run and var/log; --stop stops a detached cloud."""
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

STOP_GRACE_SECONDS = 15


def processes():
    """name -> argv of every process of the all-in-one cloud."""
    python = sys.executable
    bin_dir = Path(python).parent
    manage = str(settings.BASE_DIR / "manage.py")
    run = settings.VAR_DIR / "run"
    table = {
        "api": [str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{settings.API_PORT}",
                "--workers", os.environ.get("STRATUS_API_WORKERS", "2"), "--threads", "4",
                "--access-logfile", "-", "--graceful-timeout", "10", "cloud.wsgi"],
        "control": [python, "-m", "celery", "-A", "workers.celery", "worker", "--queues", "control",
                    "--hostname", f"control@{settings.HOSTNAME}", "--concurrency", "2", "--loglevel", "INFO"],
        "beat": [python, "-m", "celery", "-A", "workers.celery", "beat", "--loglevel", "INFO",
                 "--schedule", str(run / "celerybeat-schedule"), "--pidfile", ""],
        "node": [python, manage, "nodeworker", "--host", settings.HOSTNAME,
                 "--uri", os.environ.get("STRATUS_HYPERVISOR_URI", "qemu:///system")],
        "console": [python, manage, "consoleproxy"],
    }
    return table


class Command(BaseCommand):
    help = "Run the all-in-one cloud (API, control worker, node worker, beat)."

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
        return self.foreground()

    # -------------------------------------------------- background

    def pidfile(self, name):
        return self.run_dir / f"{name}.pid"

    def running(self):
        alive = []
        for name in processes():
            try:
                pid = int(self.pidfile(name).read_text())
                os.kill(pid, 0)
                alive.append(name)
            except (FileNotFoundError, ValueError, ProcessLookupError):
                continue
        return alive

    def detach(self):
        for name, argv in processes().items():
            log = open(self.log_dir / f"{name}.log", "ab")
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=settings.BASE_DIR, start_new_session=True)
            self.pidfile(name).write_text(str(process.pid))
            self.stdout.write(f"started {name:8} pid {process.pid:7}  log {self.log_dir / (name + '.log')}")
        self.stdout.write(f"Stratus API on http://127.0.0.1:{settings.API_PORT}  (openstack --os-cloud stratus ...)")

    def stop(self):
        pids = {}
        for name in processes():
            try:
                pids[name] = int(self.pidfile(name).read_text())
            except (FileNotFoundError, ValueError):
                continue
        for name, pid in pids.items():
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, pid in pids.items():
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
            self.pidfile(name).unlink(missing_ok=True)
            self.stdout.write(f"stopped {name}")

    # -------------------------------------------------- foreground

    def foreground(self):
        children = {}
        selector = selectors.DefaultSelector()
        width = max(len(name) for name in processes())
        for name, argv in processes().items():
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=settings.BASE_DIR, start_new_session=True)
            children[name] = process
            selector.register(process.stdout, selectors.EVENT_READ, name)
        self.stdout.write(f"Stratus API on http://127.0.0.1:{settings.API_PORT}  (Ctrl-C stops everything)")

        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append("SIGTERM"))
        try:
            while selector.get_map():
                for key, _ in selector.select(timeout=0.5):
                    line = key.fileobj.readline()
                    if not line:
                        selector.unregister(key.fileobj)
                        continue
                    self.stdout.write(f"{key.data:>{width}} | {line.decode(errors='replace').rstrip()}")
                if stopping:
                    break
                dead = [name for name, process in children.items() if process.poll() is not None]
                if dead:
                    self.stderr.write(f"{', '.join(dead)} exited: stopping the cloud")
                    break
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


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
