#!/usr/bin/env python3
"""Boot storm: N servers requested at once on H simulated nodes.

Starts its own Stratus in a scratch PostgreSQL database (the API under
gunicorn, a control worker, and node workers simulating H nodes on
libvirt's test driver: two processes by default, since one Python process
is held to one core and each real node runs its own), boots N servers at
once through the API, and prints boots per second, POST p50/p95,
p50/p95 from request to ACTIVE, SQL queries per boot (every process's
queries, counted in Redis) and CPU per boot of each process; then the same for
resizing them all at once (m1.nano to m1.tiny) and confirming, and for
deleting them; then the p50 of GET /servers/detail over 1,000 servers and
its query count.

    .venv/bin/python bench/boot_storm.py [--servers 200] [--nodes 20] [--node-processes 2] [--clients 32] [--network]
        [--boots-only] [--log-queries]

With --network the storm is booted twice, with `networks: none` and then
with a port each on one tenant network (made, bound and ACTIVE on the
simulated nodes), and both are printed; the resize, delete and listing
figures are then of the servers with ports.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.measure import cpu_seconds, percentile  # noqa: E402
PYTHON = sys.executable
V = {"OpenStack-API-Version": "compute 2.60"}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    """The scratch cloud and its processes."""

    def __init__(self, args):
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.var = ROOT / "var" / "bench-boot-storm"
        self.counter_key = f"bench:queries:{uuid.uuid4().hex}"
        self.env = dict(os.environ, DATABASE_URL=args.database_url, STRATUS_VAR_DIR=str(self.var),
                        STRATUS_BROKER_URL=args.broker_url, STRATUS_CACHE_PREFIX="bench-boot-storm",
                        STRATUS_API_PORT=str(self.port), STRATUS_PUBLIC_URL=self.url,
                        STRATUS_COUNT_QUERIES_KEY=self.counter_key, DJANGO_SETTINGS_MODULE="cloud.settings",
                        STRATUS_LOG_LEVEL="WARNING")
        self.processes = {}

    def run(self, *command):
        subprocess.run(command, env=self.env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    def start(self, name, command):
        log = open(self.var / f"{name}.log", "w")
        env = {**self.env, "STRATUS_COUNT_QUERIES_LABEL": name}
        if getattr(self.args, "log_queries", False):
            env["STRATUS_COUNT_QUERIES_LOG"] = str(self.var / f"{name}.sql")
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        return process

    def up(self):
        import psycopg

        shutil.rmtree(self.var, ignore_errors=True)
        self.var.mkdir(parents=True)
        admin_url = self.args.database_url.rsplit("/", 1)[0] + "/postgres"
        name = self.args.database_url.rsplit("/", 1)[1]
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        import redis

        redis.Redis.from_url(self.args.broker_url).flushdb()
        self.run(PYTHON, "manage.py", "migrate", "--noinput")
        self.run(PYTHON, "manage.py", "bootstrap", "--public-url", self.url,
                 "--clouds-yaml", str(self.var / "clouds.yaml"))
        self.start("api", [str(Path(PYTHON).parent / "gunicorn"), "-c", "python:cloud.gunicorn_conf",
                           "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--threads", "8", "cloud.wsgi"])
        self.start("control", [PYTHON, "-m", "celery", "-A", "workers.celery", "worker", "-Q", "control",
                               "-P", "threads", "-c", "8", "-n", "bench-control@%h", "--without-gossip",
                               "--without-mingle", "-l", "WARNING"])
        # The simulated nodes are split over processes as real nodes are
        # (one node worker per machine): one process is held to one core.
        counts = self.nodes_per_process()
        for index, count in enumerate(counts, 1):
            self.start(f"nodes{index}", [PYTHON, "manage.py", "nodeworker", "--simulate", str(count),
                                         "--prefix", f"storm-{index}-", "--concurrency",
                                         str(max(4, 16 // len(counts))), "--loglevel", "WARNING"])
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(self.url + "/compute/", timeout=5)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the API did not start; see {self.var / 'api.log'}")
                time.sleep(0.5)

    def nodes_per_process(self):
        processes = max(1, min(self.args.node_processes, self.args.nodes))
        return [self.args.nodes // processes + (index < self.args.nodes % processes) for index in range(processes)]

    def down(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def queries(self, label=None):
        import redis

        time.sleep(0.5)  # the processes flush their counts every 0.2 s
        key = f"{self.counter_key}:{label}" if label else self.counter_key
        return int(redis.Redis.from_url(os.environ.get("STRATUS_REDIS_URL", "redis://127.0.0.1:6379")).get(
            key) or 0)

    def queries_by_process(self):
        return {name: self.queries(name) for name in self.processes}

    def cpu_by_process(self):
        return cpu_seconds({name: process.pid for name, process in self.processes.items()})


def token(stack):
    response = requests.post(stack.url + "/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": os.environ.get(
                "STRATUS_ADMIN_PASSWORD", "stratus-admin")}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}, timeout=30)
    response.raise_for_status()
    return response.headers["X-Subject-Token"], response.json()["token"]["project"]["id"]


def upload_image(stack, headers):
    path = stack.var / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    image = requests.post(stack.url + "/image/v2/images", headers=headers, timeout=30, json={
        "name": "storm", "disk_format": "qcow2", "container_format": "bare", "visibility": "public"}).json()
    requests.put(f"{stack.url}/image/v2/images/{image['id']}/file", data=path.read_bytes(), timeout=60,
                 headers={**headers, "Content-Type": "application/octet-stream"}).raise_for_status()
    return image["id"]


def pooled_session():
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("http://", adapter)
    return session


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--node-processes", type=int, default=2,
                        help="node worker processes the simulated nodes are split over")
    parser.add_argument("--list-size", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32,
                        help="clients sending the storm's POSTs at once (default 32); a POST's latency is about "
                             "clients / requests accepted per second")
    parser.add_argument("--database-url", default="postgres://stratus:stratus@127.0.0.1:5432/stratus_bench")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--network", action="store_true",
                        help="boot the storm a second time with a port each on one tenant network, and compare")
    parser.add_argument("--log-queries", action="store_true",
                        help="write each process's SQL statements to var/bench-boot-storm/<process>.sql")
    parser.add_argument("--boots-only", action="store_true", help="only the boot storm: no resize, delete or list")
    args = parser.parse_args()

    stack = Stack(args)
    os.environ.update(DATABASE_URL=args.database_url, STRATUS_VAR_DIR=str(stack.var),
                      DJANGO_SETTINGS_MODULE="cloud.settings")
    stack.up()
    try:
        run(stack, args)
    finally:
        stack.down()


def run(stack, args):
    session, headers, image_id, project_id = prepare(stack, args)
    ids = storms(stack, args, session, headers, image_id)
    if args.boots_only:
        return

    resize_storm(stack, args, session, headers, ids)

    delete_storm(stack, args, session, headers, ids)

    list_servers(stack, args, headers, project_id)


def prepare(stack, args):
    """Waits for the simulated nodes, lifts the compute quota and uploads
    the image; returns (session, headers, image id, project id)."""
    import django

    django.setup()
    from compute.models import ComputeNode

    auth, project_id = token(stack)
    headers = {"X-Auth-Token": auth, **V}
    wait_for(lambda: ComputeNode.objects.filter(host__startswith="storm-").count() == args.nodes, 120,
             f"{args.nodes} simulated nodes to register")
    requests.put(f"{stack.url}/compute/v2.1/os-quota-sets/{project_id}", headers=headers, timeout=30,
                 json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}}).raise_for_status()
    return pooled_session(), headers, upload_image(stack, headers), project_id


def storms(stack, args, session, headers, image_id):
    """The storm with `networks: none`, and with args.network again with a
    port each on one tenant network, printing both rates; returns the ids
    of the servers of the last storm."""
    ids, rate = boot_storm(stack, args, session, headers, image_id, "none", "networks none")
    if args.network:
        # The same storm again, each server with a port on one tenant network.
        delete_storm(stack, args, session, headers, ids, quiet=True)
        network_id = tenant_network(stack, headers)
        ids, network_rate = boot_storm(stack, args, session, headers, image_id, [{"uuid": network_id}],
                                       "a port each on one tenant network")
        from django.db import close_old_connections

        from network.models import Port

        close_old_connections()
        active_ports = Port.objects.filter(device_id__in=[str(i) for i in ids], status="ACTIVE").count()
        print(f"  ports ACTIVE                {active_ports:8d} of {len(ids)}")
        print(f"Boots per second, networks none {rate:.1f}, with a port {network_rate:.1f} "
              f"({network_rate / max(rate, 1e-9) * 100:.0f}%; target 80% or more)")
    return ids


def tenant_network(stack, headers):
    """A network with a subnet large enough for every server's port."""
    network = requests.post(stack.url + "/network/v2.0/networks", headers=headers, timeout=30,
                            json={"network": {"name": "storm-net"}})
    network.raise_for_status()
    network_id = network.json()["network"]["id"]
    requests.post(stack.url + "/network/v2.0/subnets", headers=headers, timeout=30, json={"subnet": {
        "network_id": network_id, "ip_version": 4, "cidr": "10.128.0.0/16"}}).raise_for_status()
    requests.put(f"{stack.url}/network/v2.0/quotas/{network.json()['network']['project_id']}", headers=headers,
                 timeout=30, json={"quota": {"port": -1}}).raise_for_status()
    return network_id


def boot_storm(stack, args, session, headers, image_id, networks, label):
    """`args.servers` boots at once with `networks`; prints the figures and
    returns (the server ids, boots per second)."""
    from django.db import close_old_connections

    from compute.models import Instance, VmState

    print(f"Boot storm: {args.servers} servers on {args.nodes} simulated nodes in {args.node_processes} "
          f"node worker processes (flavor m1.nano, {label})")
    requested_at, post_durations = {}, []

    def boot(index):
        started = time.time()
        response = session.post(stack.url + "/compute/v2.1/servers", headers=headers, timeout=120, json={
            "server": {"name": f"storm-{index}", "imageRef": image_id, "flavorRef": "42", "networks": networks}})
        if response.status_code != 202:
            raise SystemExit(f"boot refused: {response.status_code} {response.text[:300]}")
        post_durations.append(time.time() - started)
        requested_at[response.json()["server"]["id"]] = started

    queries_before, by_process_before = stack.queries(), stack.queries_by_process()
    cpu_before = stack.cpu_by_process()
    began = time.time()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        list(pool.map(boot, range(args.servers)))
    accepted = time.time() - began
    ids = list(requested_at)

    def settled():
        close_old_connections()
        return not Instance.objects.filter(pk__in=ids, vm_state=VmState.BUILDING).exists()

    wait_for(settled, args.timeout, "the boots to finish")
    rows = list(Instance.objects.filter(pk__in=ids).values("id", "vm_state", "launched_at"))
    active = [row for row in rows if row["vm_state"] == VmState.ACTIVE]
    cpu = {name: seconds - cpu_before[name] for name, seconds in stack.cpu_by_process().items()}
    boot_queries = stack.queries() - queries_before
    by_process = {name: count - by_process_before[name] for name, count in stack.queries_by_process().items()}
    latencies = [row["launched_at"].timestamp() - requested_at[str(row["id"])] for row in active]
    last = max(row["launched_at"].timestamp() for row in active) if active else time.time()
    rate = len(active) / max(last - began, 1e-9)
    print(f"  requests accepted in        {accepted:8.2f} s")
    print(f"  POST /servers p50           {statistics.median(post_durations) * 1000:8.1f} ms   "
          f"(p95 {percentile(post_durations, 0.95) * 1000:.1f} ms; {args.clients} clients)")
    print(f"  ACTIVE                      {len(active):8d} of {len(ids)} "
          f"({len(ids) - len(active)} ERROR)")
    print(f"  all ACTIVE after            {last - began:8.2f} s")
    print(f"  boots per second            {rate:8.1f}")
    if latencies:
        print(f"  request -> ACTIVE  p50      {statistics.median(latencies):8.2f} s")
        print(f"  request -> ACTIVE  p95      {percentile(latencies, 0.95):8.2f} s")
    print(f"  SQL queries per boot        {boot_queries / len(ids):8.1f}   (all processes, "
          f"heartbeats included)")
    print("    of which                  " + ", ".join(f"{name} {count / len(ids):.1f}"
                                                      for name, count in by_process.items()))
    print(f"  CPU per boot                {sum(cpu.values()) * 1000 / len(ids):8.1f} ms   (" + ", ".join(
        f"{name} {seconds * 1000 / len(ids):.1f}" for name, seconds in cpu.items()) + ")")
    per_node = list(Instance.objects.filter(pk__in=ids, deleted=False).values_list("host", flat=True))
    counts = sorted({host: per_node.count(host) for host in set(per_node)}.values())
    if counts:
        print(f"  servers per node            min {counts[0]}, max {counts[-1]}")
    return ids, rate


def delete_storm(stack, args, session, headers, ids, quiet=False):
    from django.db import close_old_connections

    from compute.models import Instance

    queries_before = stack.queries()
    began = time.time()

    def delete(server_id):
        response = session.delete(f"{stack.url}/compute/v2.1/servers/{server_id}", headers=headers, timeout=120)
        if response.status_code != 204:
            raise SystemExit(f"delete refused: {response.status_code} {response.text[:300]}")

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(delete, ids))

    def gone():
        close_old_connections()
        return Instance.objects.filter(pk__in=ids, deleted=True).count() == len(ids)

    wait_for(gone, args.timeout, "the deletes to finish")
    if quiet:
        return
    ended = [row["deleted_at"].timestamp() for row in Instance.objects.filter(pk__in=ids).values("deleted_at")]
    delete_latencies = [end - began for end in ended]
    delete_queries = stack.queries() - queries_before
    print(f"Delete storm: {len(ids)} servers")
    print(f"  all deleted after           {max(ended) - began:8.2f} s")
    print(f"  deletes per second          {len(ids) / max(max(ended) - began, 1e-9):8.1f}")
    print(f"  request -> deleted p50      {statistics.median(delete_latencies):8.2f} s   (from the first request)")
    print(f"  SQL queries per delete      {delete_queries / len(ids):8.1f}")


def resize_storm(stack, args, session, headers, ids):
    """Every server resized at once to m1.tiny, then every resize confirmed."""
    from django.db import close_old_connections

    from compute.models import Instance, Migration, VmState

    requested_at = {}

    def action(server_id, body, expected):
        started = time.time()
        response = session.post(f"{stack.url}/compute/v2.1/servers/{server_id}/action", headers=headers,
                                timeout=120, json=body)
        if response.status_code != expected:
            raise SystemExit(f"{next(iter(body))} refused: {response.status_code} {response.text[:300]}")
        requested_at[server_id] = started

    queries_before = stack.queries()
    began = time.time()
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda server_id: action(server_id, {"resize": {"flavorRef": "1"}}, 202), ids))

    def settled():
        close_old_connections()
        return not Instance.objects.filter(pk__in=ids, task_state__isnull=False).exists()

    wait_for(settled, args.timeout, "the resizes to finish")
    finished = {str(instance_id): updated.timestamp() for instance_id, updated in Migration.objects.filter(
        instance_id__in=ids, status=Migration.Status.FINISHED).values_list("instance_id", "updated_at")}
    resized = Instance.objects.filter(pk__in=ids, vm_state=VmState.RESIZED).count()
    resize_queries = stack.queries() - queries_before
    latencies = [finished[server_id] - requested_at[server_id] for server_id in finished]
    print(f"Resize storm: {len(ids)} servers, m1.nano to m1.tiny")
    print(f"  VERIFY_RESIZE               {resized:8d} of {len(ids)}")
    if finished:
        last = max(finished.values())
        print(f"  all resized after           {last - began:8.2f} s")
        print(f"  resizes per second          {len(finished) / max(last - began, 1e-9):8.1f}")
        print(f"  request -> VERIFY_RESIZE p50 {statistics.median(latencies):7.2f} s")
        print(f"  request -> VERIFY_RESIZE p95 {percentile(latencies, 0.95):7.2f} s")
    print(f"  SQL queries per resize      {resize_queries / len(ids):8.1f}")

    confirmable = list(finished)
    queries_before = stack.queries()
    began = time.time()
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda server_id: action(server_id, {"confirmResize": None}, 204), confirmable))
    confirmed_after = time.time() - began
    confirm_queries = stack.queries() - queries_before
    print(f"  {len(confirmable)} confirms answered in  {confirmed_after:8.2f} s "
          f"({len(confirmable) / max(confirmed_after, 1e-9):.1f}/s), "
          f"SQL queries per confirm {confirm_queries / max(len(confirmable), 1):.1f}")


def list_servers(stack, args, headers, project_id):
    """GET /servers/detail over `list_size` servers: rows made directly in the
    database (ACTIVE on the simulated nodes), since only the listing is timed."""
    from django.utils import timezone

    from compute.models import ComputeNode, Instance, VmState

    nodes = list(ComputeNode.objects.filter(host__startswith="storm-"))
    now = timezone.now()
    Instance.objects.bulk_create([
        Instance(name=f"listed-{index}", project_id=project_id, user_id="bench", flavor_id_at_boot="42",
                 flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, host=nodes[index % len(nodes)].host,
                 node=nodes[index % len(nodes)], vm_state=VmState.ACTIVE, power_state=1, launched_at=now)
        for index in range(args.list_size)])
    session = pooled_session()
    url = f"{stack.url}/compute/v2.1/servers/detail?limit={args.list_size}"
    first = session.get(url, headers=headers, timeout=60).json()["servers"]
    assert len(first) == args.list_size, len(first)
    timings, query_counts = [], []
    for _ in range(20):
        before = stack.queries()
        started = time.perf_counter()
        session.get(url, headers=headers, timeout=60).raise_for_status()
        timings.append(time.perf_counter() - started)
        query_counts.append(stack.queries() - before)
    small = f"{stack.url}/compute/v2.1/servers/detail?limit=10"
    before = stack.queries()
    session.get(small, headers=headers, timeout=60).raise_for_status()
    small_queries = stack.queries() - before
    print(f"GET /servers/detail of {args.list_size} servers")
    print(f"  p50                         {statistics.median(timings) * 1000:8.1f} ms")
    print(f"  p95                         {percentile(timings, 0.95) * 1000:8.1f} ms")
    print(f"  SQL queries per request     {statistics.median(query_counts):8.0f}   "
          f"(10 servers: {small_queries}; background heartbeats may add one or two)")


if __name__ == "__main__":
    main()
