"""Object store throughput through the Swift API (gunicorn as the
all-in-one runs it: 2 workers of 4 threads, filesystem back end): PUT and
GET of 4 KiB, 1 MiB and 64 MiB objects one at a time (ops/s, MiB/s,
p50/p95) beside a `cp` of the same bytes on the same disk, 4 KiB PUT and GET
from --clients clients at once, the queries one 4 KiB PUT makes, a listing
page at the start and deep in a container of --listing objects, and the API
workers' peak memory.

    .venv/bin/python bench/objects.py [--listing 20000] [--clients 16] [--quick]

Runs its own cloud (a temporary var dir; SQLite, or the PostgreSQL database
BENCH_DATABASE_URL names, which it migrates and leaves) and prints its
figures. --quick: 4 KiB objects only and a listing of 2,000."""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR / "bench"))
from images import free_port, memory_mib, token  # noqa: E402

PYTHON = sys.executable
SIZES = [("4 KiB", 4 << 10, 500), ("1 MiB", 1 << 20, 50), ("64 MiB", 64 << 20, 4)]


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed(calls):
    durations = []
    for call in calls:
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def report(label, size, durations, cpu, cp_rate=None):
    total = sum(durations)
    rate = size * len(durations) / total / 2**20
    line = (f"  {label:14} {len(durations) / total:9.1f} ops/s {rate:8.1f} MiB/s  "
            f"p50 {1000 * statistics.median(durations):7.2f} ms  p95 {1000 * percentile(durations, 0.95):7.2f} ms"
            f"  API CPU {1000 * cpu / len(durations):6.2f} ms/op")
    if cp_rate:
        line += f"  {100 * rate / cp_rate:5.1f}% of cp"
    print(line)


def concurrent(url_of, body, count, clients, auth):
    """(wall seconds, per-request durations) of `count` PUTs (body given)
    or GETs (body None) from `clients` threads at once, a session each."""
    local = threading.local()

    def one(index):
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers["X-Auth-Token"] = auth
        started = time.perf_counter()
        if body is None:
            response = local.session.get(url_of(index))
        else:
            response = local.session.put(url_of(index), data=body)
        response.raise_for_status()
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        durations = list(pool.map(one, range(count)))
    return time.perf_counter() - started, durations


def cpu_seconds(pids):
    """User and system CPU the processes have used (clock ticks of /proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def report_concurrent(label, wall, durations, cpu):
    print(f"  {label:24} {len(durations) / wall:9.1f} ops/s  p50 {1000 * statistics.median(durations):7.2f} ms  "
          f"p95 {1000 * percentile(durations, 0.95):7.2f} ms  API CPU {1000 * cpu / len(durations):5.2f} ms/op")


def queries_of_a_put(env):
    """The SQL one 4 KiB PUT runs, counted in a process of its own."""
    script = """
import json, os, django
django.setup()
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_HOST="127.0.0.1")
auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin",
        "domain": {"id": "default"}, "password": os.environ.get("STRATUS_ADMIN_PASSWORD", "stratus-admin")}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
answer = client.post("/identity/v3/auth/tokens", json.dumps(auth), content_type="application/json")
headers = {"HTTP_X_AUTH_TOKEN": answer["X-Subject-Token"]}
account = "/object-store/v1/AUTH_" + answer.json()["token"]["project"]["id"]
client.put(account + "/bench-queries", **headers)
client.put(account + "/bench-queries/warm", b"x" * 4096, content_type="application/octet-stream", **headers)
with CaptureQueriesContext(connection) as queries:
    client.put(account + "/bench-queries/one", b"x" * 4096, content_type="application/octet-stream", **headers)
print(len(queries))
"""
    result = subprocess.run([PYTHON, "-c", script], cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True)
    return int(result.stdout.split()[-1])


def cp_rate(work, size, count):
    source = work / "cp-source"
    source.write_bytes(os.urandom(size))
    started = time.perf_counter()
    for index in range(count):
        subprocess.run(["cp", str(source), str(work / f"cp-{index}")], check=True)
    seconds = time.perf_counter() - started
    for index in range(count):
        (work / f"cp-{index}").unlink()
    source.unlink()
    return size * count / seconds / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listing", type=int, default=20000, help="objects in the listed container")
    parser.add_argument("--clients", type=int, default=16, help="clients at once for the 4 KiB rates")
    parser.add_argument("--quick", action="store_true", help="4 KiB objects only, a listing of 2,000")
    args = parser.parse_args()
    sizes = SIZES[:1] if args.quick else SIZES
    if args.quick:
        args.listing = min(args.listing, 2000)

    work = Path(tempfile.mkdtemp(prefix="bench-objects-", dir=BASE_DIR / "var"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "STRATUS_VAR_DIR": str(work), "STRATUS_API_PORT": str(port),
           "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{work / 'bench.sqlite3'}"),
           "STRATUS_CACHE_PREFIX": work.name, "DJANGO_SETTINGS_MODULE": "cloud.settings"}
    server = None
    try:
        for command in (["migrate", "--noinput", "-v0"], ["bootstrap", "--public-url", url, "--clouds-yaml", ""]):
            subprocess.run([PYTHON, "manage.py", *command], cwd=BASE_DIR, env=env, check=True,
                           stdout=subprocess.DEVNULL)
        server = subprocess.Popen(
            [str(Path(PYTHON).parent / "gunicorn"), "-c", "python:cloud.gunicorn_conf", "--bind",
             f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "cloud.wsgi"], cwd=BASE_DIR, env=env,
            stdout=open(work / "api.log", "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/object-store/info", timeout=2)
                break
            except (requests.ConnectionError, requests.Timeout):
                if time.monotonic() > deadline:
                    raise SystemExit((work / "api.log").read_text()[-2000:])
                time.sleep(0.2)
        pids = [int(pid) for pid in Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()]
        auth = token(url)
        session = requests.Session()
        session.headers["X-Auth-Token"] = auth
        catalog = session.get(f"{url}/identity/v3/auth/catalog").json()["catalog"]
        account = next(e["url"] for s in catalog if s["type"] == "object-store"
                       for e in s["endpoints"] if e["interface"] == "public")
        session.put(f"{account}/bench").raise_for_status()

        database = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite"
        print(f"objects through the Swift API (filesystem back end, {database}, 2 API workers of 4 threads, "
              f"same disk as cp)")
        for label, size, count in sizes:
            body = os.urandom(size)
            cpu = cpu_seconds(pids)
            puts = timed(lambda index=index: session.put(f"{account}/bench/{label}-{index}", data=body)
                         .raise_for_status() for index in range(count))
            put_cpu, cpu = cpu_seconds(pids) - cpu, cpu_seconds(pids)
            gets = timed(lambda index=index: len(session.get(f"{account}/bench/{label}-{index}").content)
                         for index in range(count))
            get_cpu = cpu_seconds(pids) - cpu
            reference = cp_rate(work, size, min(count, 20)) if size >= 1 << 20 else None
            report(f"PUT {label}", size, puts, put_cpu, reference)
            report(f"GET {label}", size, gets, get_cpu, reference)
            if size == 4 << 10:
                many = args.clients * 100
                for method, sent in (("PUT", body), ("GET", None)):
                    cpu = cpu_seconds(pids)
                    wall, durations = concurrent(lambda index: f"{account}/bench/many-{index}", sent, many,
                                                 args.clients, auth)
                    report_concurrent(f"{method} {label} x{args.clients}", wall, durations, cpu_seconds(pids) - cpu)

        body = b"x"
        started = time.perf_counter()
        for index in range(args.listing):
            session.put(f"{account}/bench-list/{index:08d}", data=body) if index else \
                session.put(f"{account}/bench-list")
        fill = time.perf_counter() - started
        first = timed([lambda: session.get(f"{account}/bench-list?format=json&limit=1000").json()] * 5)
        deep_marker = f"{args.listing - 1500:08d}"
        deep = timed([lambda: session.get(f"{account}/bench-list?format=json&limit=1000&marker={deep_marker}")
                      .json()] * 5)
        print(f"  listing of {args.listing} objects (filled at {args.listing / fill:.0f} PUT/s): 1000 names "
              f"p50 {1000 * statistics.median(first):.1f} ms at the start, "
              f"{1000 * statistics.median(deep):.1f} ms deep (keyset: should match)")
        print(f"  one 4 KiB PUT: {queries_of_a_put(env)} SQL statements (BEGIN and COMMIT counted where sent)")
        peak = max(memory_mib(pid, "VmHWM") for pid in pids)
        print(f"  API worker peak RSS: {peak:.1f} MiB (the larger worker; target: flat, well under 150 MiB)")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
