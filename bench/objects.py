"""Object store throughput through the Swift API (gunicorn as the
all-in-one runs it: 2 workers of 4 threads, or of --threads; the
filesystem back end, or Ceph RADOS with --store rados): PUT and GET of
4 KiB, 1 MiB and 64 MiB objects one at a time (ops/s, MiB/s, p50/p95)
beside the raw path measured in the same run, 4 KiB PUT and GET from
--clients clients at once, an S3 multipart upload of 1 GiB in 8 MiB parts
(boto3) beside `cp` of a 1 GiB file (`rados put` on RADOS), the queries
one 4 KiB PUT makes, a listing page at the start and deep in a container
of --listing objects, and the API workers' peak memory.

The raw path: on the filesystem, `cp` of the same bytes on the same disk,
and `cp` followed by an fsync of the copy (`sync FILE`), the durability a
PUT gives (its data is fsynced before it is answered); on RADOS,
`rados put` and `rados get` into the same pool. Beside them, the rate of
an MD5 of the bytes in one thread: a PUT computes one (the ETag), so no
PUT can be faster than that. GETs read the body 1 MiB at a time.

    .venv/bin/python bench/objects.py [--listing 20000] [--clients 16] [--quick] [--store rados] [--threads 4]

Runs its own cloud (a temporary var dir; SQLite, or the PostgreSQL database
BENCH_DATABASE_URL names, which it migrates and leaves; with --store rados
a single-node Ceph cluster of scripts/ceph_cluster.py in that dir, or the
one STRATUS_OBJECT_RADOS_CEPH_CONF names) and prints its figures.
--quick: 4 KiB objects only, no multipart upload, and a listing of 2,000."""
import argparse
import hashlib
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
sys.path.insert(1, str(BASE_DIR))  # scripts.ceph_cluster
from images import free_port, memory_mib, token  # noqa: E402
from measure import percentile  # noqa: E402

PYTHON = sys.executable
SIZES = [("4 KiB", 4 << 10, 500), ("1 MiB", 1 << 20, 50), ("64 MiB", 64 << 20, 4)]


def timed(calls):
    durations = []
    for call in calls:
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def report(label, size, durations, cpu, references=()):
    """One line of figures; `references`: (name, MiB/s) the rate is shown
    as a share of."""
    total = sum(durations)
    rate = size * len(durations) / total / 2**20
    line = (f"  {label:14} {len(durations) / total:9.1f} ops/s {rate:8.1f} MiB/s  "
            f"p50 {1000 * statistics.median(durations):7.2f} ms  p95 {1000 * percentile(durations, 0.95):7.2f} ms"
            f"  API CPU {1000 * cpu / len(durations):6.2f} ms/op")
    for name, reference in references:
        line += f"  {100 * rate / reference:5.1f}% of {name}"
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
    """The SQL statements of one 4 KiB PUT of a new name and of one
    replacing an object, counted in a process of their own."""
    script = """
import json, os, uuid, django
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
counts = []
for name in (uuid.uuid4().hex, "warm"):  # a new name, then a replacement
    with CaptureQueriesContext(connection) as queries:
        client.put(account + "/bench-queries/" + name, b"x" * 4096, content_type="application/octet-stream",
                   **headers)
    counts.append(len(queries))
print(*counts)
"""
    result = subprocess.run([PYTHON, "-c", script], cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True)
    return [int(count) for count in result.stdout.split()[-2:]]


def raw_rate(commands, size, count):
    """MiB/s of running `commands(index)` (a list of command lines) for
    index 0..count-1, each moving `size` bytes."""
    started = time.perf_counter()
    for index in range(count):
        for command in commands(index):
            subprocess.run(command, check=True)
    return size * count / (time.perf_counter() - started) / 2**20


def filesystem_references(work, size, count):
    """[(name, MiB/s)] of the raw paths a PUT and a GET are set beside:
    `cp`, and `cp` with the copy fsynced, on the disk the store is on."""
    source = work / "cp-source"
    source.write_bytes(os.urandom(size))
    copies = [str(work / f"cp-{index}") for index in range(count)]
    cp = raw_rate(lambda index: [["cp", str(source), copies[index]]], size, count)
    for copy in copies:
        os.unlink(copy)
    cp_sync = raw_rate(lambda index: [["cp", str(source), copies[index]], ["sync", copies[index]]], size, count)
    for copy in copies:
        os.unlink(copy)
    source.unlink()
    references = [("cp", cp), ("cp+fsync", cp_sync)]
    return references, references[:1]


def rados_references(work, ceph_conf, pool, size, count):
    """([(name, MiB/s)] for PUT, for GET): `rados put` and `rados get` of
    the same bytes in the store's pool."""
    source, target = work / "rados-source", work / "rados-target"
    source.write_bytes(os.urandom(size))
    rados = ["rados", "-c", ceph_conf, "-p", pool]
    put = raw_rate(lambda index: [[*rados, "put", f"bench-raw-{index}", str(source)]], size, count)
    get = raw_rate(lambda index: [[*rados, "get", f"bench-raw-{index}", str(target)]], size, count)
    for index in range(count):
        subprocess.run([*rados, "rm", f"bench-raw-{index}"], check=True)
    source.unlink()
    target.unlink()
    return [("rados put", put)], [("rados get", get)]


def small_write_cost(work, count=200):
    """Median seconds of writing a 4 KiB file as the filesystem store does
    (a temporary file renamed into place), with the two syncs a PUT waits
    for (the file's fdatasync, then its directory's fsync) and without them."""
    body = os.urandom(4 << 10)
    medians = []
    for synced in (True, False):
        temporary, final = work / "small-tmp", work / "small-final"
        temporary.mkdir()
        final.mkdir()
        durations = []
        for index in range(count):
            started = time.perf_counter()
            with open(temporary / str(index), "xb", buffering=0) as handle:
                handle.write(body)
                os.rename(temporary / str(index), final / str(index))
                if synced:
                    os.fdatasync(handle.fileno())
            if synced:
                descriptor = os.open(final, os.O_RDONLY)
                os.fsync(descriptor)
                os.close(descriptor)
            durations.append(time.perf_counter() - started)
        medians.append(statistics.median(durations))
        shutil.rmtree(temporary)
        shutil.rmtree(final)
    return medians


def s3_client(url, auth):
    """A boto3 client of the token's project, by an EC2 key made for its user."""
    import boto3
    from botocore.config import Config

    headers = {"X-Auth-Token": auth, "X-Subject-Token": auth}
    scope = requests.get(f"{url}/identity/v3/auth/tokens", headers=headers, timeout=30).json()["token"]
    made = requests.post(f"{url}/identity/v3/users/{scope['user']['id']}/credentials/OS-EC2", headers=headers,
                         json={"tenant_id": scope["project"]["id"]}, timeout=30)
    made.raise_for_status()
    key = made.json()["credential"]
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                    read_timeout=600, request_checksum_calculation="when_required",
                    response_checksum_validation="when_required")
    return boto3.client("s3", endpoint_url=f"{url}/object-store/s3", aws_access_key_id=key["access"],
                        aws_secret_access_key=key["secret"], region_name="RegionOne", config=config)


def multipart_upload(s3, bucket, size, part_size):
    """(seconds uploading the parts, seconds completing) of one S3
    multipart upload of `size` bytes in parts of `part_size`, sent one
    after the other (every part the same random bytes)."""
    part = os.urandom(part_size)
    started = time.perf_counter()
    upload = s3.create_multipart_upload(Bucket=bucket, Key="multipart")["UploadId"]
    parts = [{"PartNumber": number, "ETag": s3.upload_part(Bucket=bucket, Key="multipart", UploadId=upload,
                                                          PartNumber=number, Body=part)["ETag"]}
             for number in range(1, size // part_size + 1)]
    uploaded = time.perf_counter()
    s3.complete_multipart_upload(Bucket=bucket, Key="multipart", UploadId=upload,
                                 MultipartUpload={"Parts": parts})
    return uploaded - started, time.perf_counter() - uploaded


def large_file_references(work, size, block_size):
    """[(name, MiB/s)] of `cp` of a file of `size` bytes, and of `cp` with
    the copy fsynced, on the disk the store is on."""
    source, copy = work / "cp-large-source", work / "cp-large"
    block = os.urandom(block_size)
    with open(source, "wb") as handle:
        for _ in range(size // block_size):
            handle.write(block)
    references = []
    for name, commands in (("cp", [["cp", str(source), str(copy)]]),
                           ("cp+fsync", [["cp", str(source), str(copy)], ["sync", str(copy)]])):
        references.append((name, raw_rate(lambda index: commands, size, 1)))
        copy.unlink()
    source.unlink()
    return references


def md5_rate(body):
    started = time.perf_counter()
    digest = hashlib.md5(usedforsecurity=False)
    view = memoryview(body)
    for offset in range(0, len(body), 1 << 20):
        digest.update(view[offset:offset + (1 << 20)])
    return len(body) / (time.perf_counter() - started) / 2**20


def read_all(response):
    """The body's length, read 1 MiB at a time (requests' .content reads
    10 KiB at a time: the client, not the server, was what a 64 MiB GET
    measured)."""
    response.raise_for_status()
    received = 0
    while block := response.raw.read(1 << 20):
        received += len(block)
    return received


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listing", type=int, default=20000, help="objects in the listed container")
    parser.add_argument("--clients", type=int, default=16, help="clients at once for the 4 KiB rates")
    parser.add_argument("--quick", action="store_true", help="4 KiB objects only, a listing of 2,000")
    parser.add_argument("--store", choices=("filesystem", "rados"), default="filesystem",
                        help="the object store's back end")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads of each of the 2 API workers (the all-in-one runs 4)")
    args = parser.parse_args()
    sizes = SIZES[:1] if args.quick else SIZES
    if args.quick:
        args.listing = min(args.listing, 2000)

    work = Path(tempfile.mkdtemp(prefix="bench-objects-", dir=BASE_DIR / "var"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "STRATUS_VAR_DIR": str(work), "STRATUS_API_PORT": str(port),
           "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{work / 'bench.sqlite3'}"),
           "STRATUS_CACHE_PREFIX": work.name, "DJANGO_SETTINGS_MODULE": "cloud.settings",
           "STRATUS_OBJECT_STORE": args.store}
    server = None
    ceph_dir = None
    try:
        if args.store == "rados":
            ceph_conf = os.environ.get("STRATUS_OBJECT_RADOS_CEPH_CONF")
            pool = os.environ.get("STRATUS_OBJECT_RADOS_POOL", "objects")
            if not ceph_conf:
                from scripts import ceph_cluster

                reason = ceph_cluster.missing()
                if reason:
                    raise SystemExit(f"{reason}: no Ceph cluster for --store rados")
                ceph_dir = work / "ceph"
                ceph_conf = str(ceph_cluster.start(ceph_dir))
            env.update(STRATUS_OBJECT_RADOS_CEPH_CONF=ceph_conf, STRATUS_OBJECT_RADOS_POOL=pool)
        for command in (["migrate", "--noinput", "-v0"], ["bootstrap", "--public-url", url, "--clouds-yaml", ""]):
            subprocess.run([PYTHON, "manage.py", *command], cwd=BASE_DIR, env=env, check=True,
                           stdout=subprocess.DEVNULL)
        server = subprocess.Popen(
            [str(Path(PYTHON).parent / "gunicorn"), "-c", "python:cloud.gunicorn_conf", "--bind",
             f"127.0.0.1:{port}", "--workers", "2", "--threads", str(args.threads), "cloud.wsgi"], cwd=BASE_DIR,
            env=env,
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
        where = "same disk as cp" if args.store == "filesystem" else "beside rados put/get in the same pool"
        print(f"objects through the Swift API ({args.store} back end, {database}, 2 API workers of "
              f"{args.threads} threads, {where})")
        peaks = []  # (after which objects, the larger worker's peak RSS)
        for label, size, count in sizes:
            body = os.urandom(size)
            cpu = cpu_seconds(pids)
            puts = timed(lambda index=index: session.put(f"{account}/bench/{label}-{index}", data=body)
                         .raise_for_status() for index in range(count))
            put_cpu, cpu = cpu_seconds(pids) - cpu, cpu_seconds(pids)
            gets = timed(lambda index=index: read_all(session.get(f"{account}/bench/{label}-{index}", stream=True))
                         for index in range(count))
            get_cpu = cpu_seconds(pids) - cpu
            put_references = get_references = ()
            if size >= 1 << 20:
                if args.store == "rados":
                    put_references, get_references = rados_references(work, ceph_conf, pool, size, min(count, 20))
                else:
                    put_references, get_references = filesystem_references(work, size, min(count, 20))
                put_references = [*put_references, ("MD5", md5_rate(body))]
            report(f"PUT {label}", size, puts, put_cpu, put_references)
            report(f"GET {label}", size, gets, get_cpu, get_references)
            if size == 4 << 10:
                many = args.clients * 100
                for method, sent in (("PUT", body), ("GET", None)):
                    cpu = cpu_seconds(pids)
                    wall, durations = concurrent(lambda index: f"{account}/bench/many-{index}", sent, many,
                                                 args.clients, auth)
                    report_concurrent(f"{method} {label} x{args.clients}", wall, durations, cpu_seconds(pids) - cpu)
            if size == 4 << 10 and args.store == "filesystem":
                synced, unsynced = small_write_cost(work)
                print(f"  a 4 KiB file written as the store writes it: p50 {1000 * synced:.2f} ms with the file's "
                      f"fdatasync and its directory's fsync, {1000 * unsynced:.2f} ms without (what durability "
                      f"costs a PUT)")
            peaks.append((label, max(memory_mib(pid, "VmHWM") for pid in pids)))

        if not args.quick:
            size, part_size = 1 << 30, 8 << 20
            s3 = s3_client(url, auth)
            s3.create_bucket(Bucket="bench-multipart")
            cpu = cpu_seconds(pids)
            uploading, completing = multipart_upload(s3, "bench-multipart", size, part_size)
            cpu = cpu_seconds(pids) - cpu
            if args.store == "rados":
                references = rados_references(work, ceph_conf, pool, 64 << 20, 4)[0]
            else:
                references = large_file_references(work, size, part_size)
            rate = size / (uploading + completing) / 2**20
            print(f"  S3 multipart 1 GiB in {size // part_size} parts of {part_size >> 20} MiB, one at a time: "
                  f"{rate:.1f} MiB/s ({size / uploading / 2**20:.1f} MiB/s sending the parts, "
                  f"{completing:.1f} s completing)  API CPU {cpu:.1f} s  "
                  + "  ".join(f"{100 * rate / reference:.1f}% of {name}" for name, reference in references))
            peaks.append(("1 GiB multipart", max(memory_mib(pid, "VmHWM") for pid in pids)))

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
        new, replacing = queries_of_a_put(env)
        print(f"  one 4 KiB PUT: {new} SQL statements for a new name, {replacing} replacing an object "
              f"(BEGIN and COMMIT counted where sent)")
        peak = max(memory_mib(pid, "VmHWM") for pid in pids)
        steps = ", ".join(f"{value:.1f} after {label}" for label, value in peaks)
        print(f"  API worker peak RSS: {peak:.1f} MiB ({steps}; the larger worker; target: flat, well under "
              f"150 MiB)")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
        if ceph_dir is not None:
            from scripts import ceph_cluster

            ceph_cluster.stop(ceph_dir)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
