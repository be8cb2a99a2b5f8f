#!/usr/bin/env python3
"""Identity benchmark against a running Stratus (`make start` first).

Prints token validations per second with p50/p95 latency at concurrency 1
and 8 (HEAD /v3/auth/tokens: the check every service makes per request,
and GET with the token body), token issues per second, and the cost of one
validation inside the API process.

    .venv/bin/python bench/identity.py [--url http://127.0.0.1:8000] [--seconds 5]
"""
import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def admin_auth_body(password):
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}


def run_load(concurrency, seconds, request):
    """Calls request(session) from `concurrency` threads for `seconds`;
    returns the latencies in seconds."""
    latencies, lock = [], threading.Lock()
    deadline = time.monotonic() + seconds

    def worker():
        session = requests.Session()
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


def report(label, latencies, seconds):
    ordered = sorted(latencies)
    p95 = ordered[int(len(ordered) * 0.95) - 1] if ordered else 0
    print(f"{label:44} {len(ordered) / seconds:8.0f} /s   p50 {statistics.median(ordered) * 1000:6.2f} ms"
          f"   p95 {p95 * 1000:6.2f} ms")


def in_process_costs(rounds=2000):
    """(seconds per token validation, seconds per validated HEAD request
    through the whole Django stack), measured inside one API process."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
    import django

    django.setup()
    from django.test import Client

    from identity import tokens

    token, _ = tokens.issue_token(user_id="bench", user_domain_id="default", methods=["password"],
                                  project_id="bench", roles=["member"])
    tokens.validate_token(token)
    start = time.perf_counter()
    for _ in range(rounds):
        tokens.validate_token(token)
    validation = (time.perf_counter() - start) / rounds

    client = Client()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        client.head("/identity/v3/auth/tokens", HTTP_X_AUTH_TOKEN=token, HTTP_X_SUBJECT_TOKEN=token)
        samples.append(time.perf_counter() - start)
    return validation, statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("STRATUS_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--password", default=os.environ.get("STRATUS_ADMIN_PASSWORD", "stratus-admin"))
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    tokens_url = f"{args.url}/identity/v3/auth/tokens"

    issued = requests.post(tokens_url, json=admin_auth_body(args.password))
    if issued.status_code != 201:
        raise SystemExit(f"cannot authenticate at {args.url}: {issued.status_code} {issued.text[:200]}")
    token = issued.headers["X-Subject-Token"]
    headers = {"X-Auth-Token": token, "X-Subject-Token": token}

    print(f"Stratus identity benchmark against {args.url}, {args.seconds:g} s per figure")
    for concurrency in (1, 8):
        latencies = run_load(concurrency, args.seconds, lambda s: s.head(tokens_url, headers=headers))
        report(f"validate (HEAD), concurrency {concurrency}", latencies, args.seconds)
    for concurrency in (1, 8):
        latencies = run_load(concurrency, args.seconds,
                             lambda s: s.get(tokens_url + "?nocatalog", headers=headers))
        report(f"validate with body (GET), concurrency {concurrency}", latencies, args.seconds)
    for concurrency in (1, 8):
        latencies = run_load(concurrency, args.seconds,
                             lambda s: s.post(tokens_url, json=admin_auth_body(args.password)))
        report(f"issue (password), concurrency {concurrency}", latencies, args.seconds)
    validation, request = in_process_costs()
    print(f"{'one token validation, in the API process':44} {validation * 1e6:8.1f} us")
    print(f"{'validated request, whole API stack, p50':44} {request * 1e3:8.2f} ms   (target < 2 ms)")


if __name__ == "__main__":
    main()
