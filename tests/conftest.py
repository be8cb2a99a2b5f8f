"""Shared fixtures. `cloud` starts the real API server (gunicorn) on a free
port against the test database, bootstrapped, and drives it with the real
`openstack` CLI and openstacksdk."""
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from tests.openstack_cli import ForkedCli

VENV_BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url():
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def server_env(**extra):
    """Environment for a process that must share this test run's database,
    cache and keys."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url(),
        "STRATUS_CACHE_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "STRATUS_VAR_DIR": str(settings.VAR_DIR),
        "DJANGO_SETTINGS_MODULE": "cloud.settings",
    })
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    """The test database, made once for the run whether or not any test is
    marked django_db (the live server needs it). Tests share it: live tests
    commit through the server; `db` tests roll back. Do not use
    `transactional_db`: its flush would wipe the bootstrapped cloud."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        connection.close()
        teardown_databases(config, verbosity=0)


class Cloud:
    """A running Stratus API and the clients that talk to it."""

    def __init__(self, url, clouds_yaml, cli):
        self.url = url
        self.clouds_yaml = clouds_yaml
        self.cli = cli

    def openstack(self, *args, cloud="stratus", expect_fail=False, parse=True, env=None):
        """Runs the `openstack` CLI. Returns parsed JSON output (`-f json` is
        added to commands that print), or the CompletedProcess when it fails
        as expected."""
        command = ["--os-cloud", cloud, *map(str, args)]
        run_env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml), **(env or {})}
        result = self.cli.run(command, env=run_env, timeout=120)
        if expect_fail:
            assert result.returncode != 0, f"{shlex.join(result.args)} succeeded: {result.stdout}"
            return result
        assert result.returncode == 0, f"{shlex.join(result.args)} failed:\n{result.stderr}"
        if parse and "-f" in args:
            return json.loads(result.stdout)
        return result.stdout

    def connect(self, cloud="stratus"):
        import openstack

        config = openstack.config.OpenStackConfig(config_files=[str(self.clouds_yaml)])
        return openstack.connection.Connection(config=config.get_one(cloud=cloud))

    def token(self, cloud="stratus"):
        return self.connect(cloud).auth_token


@pytest.fixture(scope="session")
def cloud(django_db_setup, django_db_blocker, tmp_path_factory):
    if connection.vendor != "postgresql":
        pytest.skip("live-server tests need PostgreSQL (DATABASE_URL): `make test` sets it up")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Where the console URLs the API hands out point: a test that opens them
    # runs its console proxy on this port.
    console_proxy_port = free_port()
    clouds_yaml = tmp_path_factory.mktemp("cloud") / "clouds.yaml"
    with django_db_blocker.unblock():
        call_command("bootstrap", public_url=url, clouds_yaml=str(clouds_yaml))
        connection.close()
    server = start_api_server(port, tmp_path_factory.mktemp("logs") / "api.log",
                              STRATUS_CONSOLE_PROXY_URL=f"http://127.0.0.1:{console_proxy_port}/vnc_lite.html")
    cli = ForkedCli(str(tmp_path_factory.mktemp("cli")))
    running = Cloud(url, clouds_yaml, cli)
    running.console_proxy_port = console_proxy_port
    yield running
    cli.close()
    stop_api_server(server)


def start_api_server(port, log_path, **env):
    """The API server (gunicorn) on 127.0.0.1:`port` with this run's
    database and `env`, answering; its output goes to `log_path`."""
    log = open(log_path, "w")
    server = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-c", "python:cloud.gunicorn_conf", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4",
         "cloud.wsgi"],
        cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
        env=server_env(STRATUS_API_PORT=str(port), **env))
    server.log = log
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/identity/", timeout=5)
            return server
        except (requests.ConnectionError, requests.Timeout):
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                stop_api_server(server)
                pytest.fail(f"API server did not start: {Path(log_path).read_text()[-3000:]}")
            time.sleep(0.2)


def stop_api_server(server):
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    server.log.close()


class Api:
    """requests against an API server at `url`: api.get(path, token=...) etc."""

    def __init__(self, url):
        self.url = url

    def request(self, method, path, token=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["X-Auth-Token"] = token
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)

    def patch(self, path, **kwargs):
        return self.request("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def head(self, path, **kwargs):
        return self.request("HEAD", path, **kwargs)


@pytest.fixture
def api(cloud):
    """requests against the live server."""
    return Api(cloud.url)


@pytest.fixture(scope="session")
def ceph_conf(tmp_path_factory):
    """A ceph.conf whose cluster has the pools images, volumes and objects,
    one for the whole run (images, volumes and objects tests share it): the
    one STRATUS_IMAGE_RBD_CEPH_CONF names, else a single-node cluster
    started here by scripts/ceph_cluster.py (one monitor, one in-memory OSD;
    a few seconds), else a skip that says what is missing."""
    if settings.IMAGE_RBD_CEPH_CONF:
        yield settings.IMAGE_RBD_CEPH_CONF
        return
    from scripts import ceph_cluster

    reason = ceph_cluster.missing()
    if reason:
        pytest.skip(f"{reason}: the Ceph back ends are not exercised")
    directory = tmp_path_factory.mktemp("ceph")
    try:
        yield ceph_cluster.start(directory, memory=True)
    finally:
        ceph_cluster.stop(directory)
