"""Object store throughput through the Swift API (a gunicorn worker as the
all-in-one runs it, filesystem back end): PUT and GET of 4 KiB, 1 MiB and
64 MiB objects (ops/s, MiB/s, p50/p95) beside a `cp` of the same bytes on
the same disk, a listing page at the start and deep in a container of
--listing objects, and the API worker's peak memory.

    .venv/bin/python bench/objects.py [--listing 20000]

Runs its own cloud (SQLite, a temporary var dir) and prints its figures."""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR / "bench"))
from images import free_port, memory_mib, token, worker_pid  # noqa: E402

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


def report(label, size, durations, cp_rate=None):
    total = sum(durations)
    rate = size * len(durations) / total / 2**20
    line = (f"  {label:14} {len(durations) / total:9.1f} ops/s {rate:8.1f} MiB/s  "
            f"p50 {1000 * statistics.median(durations):7.2f} ms  p95 {1000 * percentile(durations, 0.95):7.2f} ms")
    if cp_rate:
        line += f"  {100 * rate / cp_rate:5.1f}% of cp"
    print(line)


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
    args = parser.parse_args()

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
             f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", "cloud.wsgi"], cwd=BASE_DIR, env=env,
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
        pid = worker_pid(server.pid)
        auth = token(url)
        session = requests.Session()
        session.headers["X-Auth-Token"] = auth
        catalog = session.get(f"{url}/identity/v3/auth/catalog").json()["catalog"]
        account = next(e["url"] for s in catalog if s["type"] == "object-store"
                       for e in s["endpoints"] if e["interface"] == "public")
        session.put(f"{account}/bench").raise_for_status()

        print("objects through the Swift API (filesystem back end, one API worker, same disk as cp)")
        for label, size, count in SIZES:
            body = os.urandom(size)
            puts = timed(lambda index=index: session.put(f"{account}/bench/{label}-{index}", data=body)
                         .raise_for_status() for index in range(count))
            gets = timed(lambda index=index: len(session.get(f"{account}/bench/{label}-{index}").content)
                         for index in range(count))
            reference = cp_rate(work, size, min(count, 20)) if size >= 1 << 20 else None
            report(f"PUT {label}", size, puts, reference)
            report(f"GET {label}", size, gets, reference)

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
        print(f"  API worker peak RSS: {memory_mib(pid, 'VmHWM'):.1f} MiB (target: flat, well under 150 MiB)")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
