"""A Redis server of a test's own, for tests that take the broker away."""
import socket
import subprocess

from tests.compute.nodes import wait_until


class PrivateRedis:
    """A Redis of the test's own (append-only, as scripts/services.sh runs
    the broker), which it may stop and start without disturbing others."""

    def __init__(self, directory):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory

    def start(self):
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(self.port),
                        "--save", "", "--appendonly", "yes", "--dir", str(self.directory),
                        "--logfile", str(self.directory / "redis.log")], check=True)
        wait_until(self.answers, timeout=10, message="the private Redis")

    def stop(self):
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown"], capture_output=True)
        wait_until(lambda: not self.answers(), timeout=10, message="the private Redis to stop")

    def answers(self):
        return subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                              text=True).stdout.strip() == "PONG"

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"
