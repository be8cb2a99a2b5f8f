"""Image data throughput: upload and download of one file through the Image
API (a gunicorn worker as the all-in-one runs it), beside a plain `cp` of
the same file on the same disk in the same run, and the API worker's peak
memory after a small and after the big transfer (it should not grow with
the image).

    .venv/bin/python bench/images.py [--size-mib 1024]

Runs its own cloud (SQLite, a temporary var dir next to the image store)
and prints its figures."""
import argparse
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CHUNK = 1 << 20


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_random_file(path, size_mib):
    block = os.urandom(CHUNK)
    with open(path, "wb") as handle:
        for index in range(size_mib):
            # Vary each MiB cheaply so the data does not repeat.
            handle.write(index.to_bytes(8, "little") + block[8:])


def worker_pid(master_pid):
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return int(children[0])


def memory_mib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def token(url):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": os.environ.get("STRATUS_ADMIN_PASSWORD",
                                                                               "stratus-admin")}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    response = requests.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=30)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def file_chunks(path):
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def transfer(url, auth, path, chunked=False):
    """(upload seconds, download seconds) of `path` through a new image:
    sent as a file object (as the openstack CLI sends it: http.client
    writes it 8 KiB at a time) or with chunked transfer encoding in 1 MiB
    chunks."""
    image = requests.post(f"{url}/image/v2/images", headers={"X-Auth-Token": auth}, timeout=30, json={
        "name": path.name, "disk_format": "raw", "container_format": "bare"}).json()
    started = time.perf_counter()
    with open(path, "rb") as handle:
        response = requests.put(f"{url}/image/v2/images/{image['id']}/file", timeout=3600,
                                data=file_chunks(path) if chunked else handle,
                                headers={"X-Auth-Token": auth, "Content-Type": "application/octet-stream"})
    upload = time.perf_counter() - started
    response.raise_for_status()
    copy = path.with_suffix(".downloaded")
    started = time.perf_counter()
    with requests.get(f"{url}/image/v2/images/{image['id']}/file", headers={"X-Auth-Token": auth},
                      stream=True, timeout=3600) as response, open(copy, "wb") as handle:
        response.raise_for_status()
        for chunk in response.iter_content(CHUNK):
            handle.write(chunk)
    download = time.perf_counter() - started
    if copy.stat().st_size != path.stat().st_size:
        raise SystemExit(f"downloaded {copy.stat().st_size} bytes of {path.stat().st_size}")
    copy.unlink()
    requests.delete(f"{url}/image/v2/images/{image['id']}", headers={"X-Auth-Token": auth}, timeout=60)
    return upload, download


def curl_transfer(url, auth, path):
    """(upload seconds, download seconds) with curl as the client, which
    costs the machine less than Python's http.client does."""
    image = requests.post(f"{url}/image/v2/images", headers={"X-Auth-Token": auth}, timeout=30, json={
        "name": path.name, "disk_format": "raw", "container_format": "bare"}).json()
    file_url = f"{url}/image/v2/images/{image['id']}/file"
    headers = ["-H", f"X-Auth-Token: {auth}", "-H", "Content-Type: application/octet-stream"]
    started = time.perf_counter()
    subprocess.run(["curl", "-sSf", "-T", str(path), *headers, file_url], check=True)
    upload = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run(["curl", "-sSf", "-o", str(path.with_suffix(".downloaded")), *headers, file_url], check=True)
    download = time.perf_counter() - started
    path.with_suffix(".downloaded").unlink()
    requests.delete(f"{url}/image/v2/images/{image['id']}", headers={"X-Auth-Token": auth}, timeout=60)
    return upload, download


def hashing_rate(size_mib=256):
    """MB/s of md5 and sha512 over the same data, each alone: an upload can
    go no faster than the slower one."""
    block = os.urandom(CHUNK)
    rates = {}
    for name in ("md5", "sha512"):
        hasher = hashlib.new(name)
        started = time.perf_counter()
        for _ in range(size_mib):
            hasher.update(block)
        rates[name] = size_mib * CHUNK / 1e6 / (time.perf_counter() - started)
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-images-", dir=BASE_DIR / "var"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "STRATUS_VAR_DIR": str(work), "STRATUS_API_PORT": str(port),
           "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}", "STRATUS_CACHE_PREFIX": work.name,
           "STRATUS_IMAGE_QUOTA_BYTES": str(4 * args.size_mib * CHUNK), "DJANGO_SETTINGS_MODULE": "cloud.settings"}
    server = None
    try:
        for command in (["migrate", "--noinput", "-v0"], ["bootstrap", "--public-url", url, "--clouds-yaml", ""]):
            subprocess.run([PYTHON, "manage.py", *command], cwd=BASE_DIR, env=env, check=True,
                           stdout=subprocess.DEVNULL)
        server = subprocess.Popen(
            [str(Path(PYTHON).parent / "gunicorn"), "-c", "python:cloud.gunicorn_conf", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--threads", "4", "cloud.wsgi"], cwd=BASE_DIR, env=env,
            stdout=open(work / "api.log", "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/image/", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still starting
                if time.monotonic() > deadline:
                    raise SystemExit((work / "api.log").read_text()[-2000:])
                time.sleep(0.2)
        pid = worker_pid(server.pid)
        auth = token(url)

        small = work / "small.raw"
        write_random_file(small, 64)
        transfer(url, auth, small)
        small.unlink()
        peak_small = memory_mib(pid, "VmHWM")

        source = work / "image.raw"
        write_random_file(source, args.size_mib)
        started = time.perf_counter()
        subprocess.run(["cp", str(source), str(work / "copy.raw")], check=True)
        cp_seconds = time.perf_counter() - started
        (work / "copy.raw").unlink()
        upload, download = transfer(url, auth, source)
        chunked_upload, _ = transfer(url, auth, source, chunked=True)
        curl_upload, curl_download = curl_transfer(url, auth, source)
        peak_big = memory_mib(pid, "VmHWM")

        # The hashes measured right after the transfers, as busy a machine:
        # an upload computes both, so the slower one alone is its ceiling.
        rates = hashing_rate()
        ceiling = min(rates.values())
        size_mb = args.size_mib * CHUNK / 1e6
        cp_rate = size_mb / cp_seconds
        print(f"image data through the API: {args.size_mib} MiB file, same disk, same run; uploads compute "
              "size, md5 and sha512 on the way")
        print(f"  {'cp':32} {cp_rate:8.1f} MB/s")
        for label, seconds in (("upload, file body (as the CLI)", upload),
                               ("upload, chunked 1 MiB", chunked_upload), ("upload, curl -T", curl_upload),
                               ("download (requests, as the SDK)", download), ("download, curl", curl_download)):
            rate = size_mb / seconds
            hashes = f"  {100 * rate / ceiling:5.1f}% of the single-hash ceiling" if label.startswith("upload") else ""
            print(f"  {label:32} {rate:8.1f} MB/s  {100 * rate / cp_rate:5.1f}% of cp{hashes}")
        print(f"  {'(md5 alone, in one thread)':32} {rates['md5']:8.1f} MB/s")
        print(f"  {'(sha512 alone, in one thread)':32} {rates['sha512']:8.1f} MB/s")
        print(f"  API worker peak RSS: {peak_small:.1f} MiB after a 64 MiB image, "
              f"{peak_big:.1f} MiB after the {args.size_mib} MiB one (target: flat, under 150 MiB)")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
