#!/usr/bin/env python3
"""Identity benchmark against a running Stratus (`make start` first).

Prints token validations per second with p50/p95 latency at concurrency 1
and 8 (HEAD /v3/auth/tokens: the check every service makes per request,
and GET with the token body), token issues per second, and the cost of one
validation inside the API process. The validations are measured with two
clients: python-requests (what keystoneauth and keystonemiddleware use; it
costs about 0.6 ms per call of its own here) and a bare http.client
connection, whose figures are closer to the server's own cost. With
--server-pid (the API server's gunicorn master, var/run/api.pid under the
all-in-one) each figure also says the CPU the server spent per request, its
workers included: steadier than the rates on a busy machine.

    .venv/bin/python bench/identity.py [--url http://127.0.0.1:8000] [--seconds 5] [--server-pid PID]
"""
import http.client
import json
import urllib.parse
import argparse
import io
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measure import cpu_seconds  # noqa: E402


def admin_auth_body(password):
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}


class BareSession:
    """The requests.Session calls the benchmark makes, on one kept-alive
    http.client connection."""

    class Answer:
        def __init__(self, status, body):
            self.status_code, self.text = status, body.decode(errors="replace")

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port or 80)

    def request(self, method, url, headers=None, json_body=None):
        body = None if json_body is None else json.dumps(json_body).encode()
        headers = dict(headers or {}, **({"Content-Type": "application/json"} if body else {}))
        parts = urllib.parse.urlsplit(url)
        self.connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body, headers)
        response = self.connection.getresponse()
        return self.Answer(response.status, response.read())

    def head(self, url, headers=None):
        return self.request("HEAD", url, headers)

    def get(self, url, headers=None):
        return self.request("GET", url, headers)

    def post(self, url, json=None):
        return self.request("POST", url, json_body=json)


def run_load(concurrency, seconds, request, session_factory=requests.Session):
    """Calls request(session) from `concurrency` threads for `seconds`;
    returns the latencies in seconds."""
    latencies, lock = [], threading.Lock()
    deadline = time.monotonic() + seconds

    def worker():
        session = session_factory()
        mine = []
        while time.monotonic() < deadline:
            start = time.perf_counter()
            response = request(session)
            mine.append(time.perf_counter() - start)
            if response.status_code >= 400:
                raise SystemExit(f"request failed: {response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def report(label, latencies, seconds, server_cpu=None):
    ordered = sorted(latencies)
    p95 = ordered[int(len(ordered) * 0.95) - 1] if ordered else 0
    cpu = f"   server CPU {server_cpu / len(ordered) * 1e6:5.0f} us/request" if server_cpu is not None else ""
    print(f"{label:44} {len(ordered) / seconds:8.0f} /s   p50 {statistics.median(ordered) * 1000:6.2f} ms"
          f"   p95 {p95 * 1000:6.2f} ms{cpu}")


def measured_load(server_pid, concurrency, seconds, request, session_factory=requests.Session):
    """run_load's latencies, and the server's CPU seconds meanwhile (None without its pid)."""
    before = cpu_seconds({"api": server_pid}).get("api") if server_pid else None
    latencies = run_load(concurrency, seconds, request, session_factory)
    after = cpu_seconds({"api": server_pid}).get("api") if server_pid else None
    return latencies, (after - before if before is not None else None)


def in_process_costs(rounds=2000):
    """Seconds per token validation (a token first seen, and one seen
    before), and the p50 of a validated HEAD /v3/auth/tokens and of an
    authenticated no-op (GET /identity/v3 with a token) through the whole
    Django stack, each measured inside one API process."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    from identity import tokens

    def issue():
        return tokens.issue_token(user_id="bench", user_domain_id="default", methods=["password"],
                                  project_id="bench", roles=["member"])[0]

    fresh = [issue() for _ in range(rounds)]
    tokens.validate_token(fresh[0])
    start = time.perf_counter()
    for token in fresh[1:]:
        tokens.validate_token(token)
    first_sight = (time.perf_counter() - start) / (rounds - 1)
    token = fresh[0]
    start = time.perf_counter()
    for _ in range(rounds):
        tokens.validate_token(token)
    seen = (time.perf_counter() - start) / rounds

    application = WSGIHandler()

    def p50(method, path):
        samples = []
        for _ in range(rounds):
            environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": "",
                       "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1",
                       "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr,
                       "HTTP_X_AUTH_TOKEN": token, "HTTP_X_SUBJECT_TOKEN": token}
            start = time.perf_counter()
            statuses = []
            body = application(environ, lambda status, headers: statuses.append(status))
            b"".join(body)
            body.close()
            samples.append(time.perf_counter() - start)
            if not statuses[0].startswith("200"):
                raise SystemExit(f"{method} {path} in process answered {statuses[0]}")
        return statistics.median(samples)

    return first_sight, seen, p50("HEAD", "/identity/v3/auth/tokens"), p50("GET", "/identity/v3")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("STRATUS_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--password", default=os.environ.get("STRATUS_ADMIN_PASSWORD", "stratus-admin"))
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--server-pid", type=int, help="the API server's gunicorn master, for its CPU per request")
    args = parser.parse_args()
    tokens_url = f"{args.url}/identity/v3/auth/tokens"

    issued = requests.post(tokens_url, json=admin_auth_body(args.password))
    if issued.status_code != 201:
        raise SystemExit(f"cannot authenticate at {args.url}: {issued.status_code} {issued.text[:200]}")
    token = issued.headers["X-Subject-Token"]
    headers = {"X-Auth-Token": token, "X-Subject-Token": token}

    print(f"Stratus identity benchmark against {args.url}, {args.seconds:g} s per figure")
    pid = args.server_pid
    for client, factory in (("requests", requests.Session), ("http.client", lambda: BareSession(args.url))):
        print(f"with {client}:")
        for concurrency in (1, 8):
            latencies, cpu = measured_load(pid, concurrency, args.seconds,
                                           lambda s: s.head(tokens_url, headers=headers), factory)
            report(f"  validate (HEAD), concurrency {concurrency}", latencies, args.seconds, cpu)
        for concurrency in (1, 8):
            latencies, cpu = measured_load(pid, concurrency, args.seconds,
                                           lambda s: s.get(tokens_url + "?nocatalog", headers=headers), factory)
            report(f"  validate with body (GET), concurrency {concurrency}", latencies, args.seconds, cpu)
        latencies, cpu = measured_load(pid, 1, args.seconds,
                                       lambda s: s.get(f"{args.url}/identity/v3", headers=headers), factory)
        report("  authenticated no-op (GET /v3), concurrency 1", latencies, args.seconds, cpu)
    for concurrency in (1, 8):
        latencies = run_load(concurrency, args.seconds,
                             lambda s: s.post(tokens_url, json=admin_auth_body(args.password)))
        report(f"issue (password), concurrency {concurrency}", latencies, args.seconds)
    first_sight, seen, head, no_op = in_process_costs()
    print("in one API process:")
    print(f"{'  token validation, a token first seen':44} {first_sight * 1e6:8.1f} us")
    print(f"{'  token validation, a token seen before':44} {seen * 1e6:8.1f} us")
    print(f"{'  validated HEAD /v3/auth/tokens, p50':44} {head * 1e6:8.1f} us   (whole Django stack)")
    print(f"{'  authenticated no-op GET /v3, p50':44} {no_op * 1e6:8.1f} us   (the per-request overhead)")


if __name__ == "__main__":
    main()
