#!/usr/bin/env python3
"""The dashboard's Instances page with 1,000 servers beside the API call it
is made from (GET /compute/v2.1/servers/detail), in the same run.

Makes a scratch database (the test database of DATABASE_URL, dropped at
the end), bootstraps the cloud, adds 1,000 ACTIVE servers of the demo
project on 20 simulated nodes (rows as the boot pipeline leaves them),
logs in as demo and prints p50/p95 and the SQL query count of each,
measured in one process through Django's whole request stack (no HTTP
server, so the figures are of the code, not of gunicorn).

    DATABASE_URL=postgres://... .venv/bin/python bench/dashboard.py [--servers 1000] [--rounds 30]

Target: the page within 2x the API call and under 300 ms p50.
"""
import argparse
import os
import statistics
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.measure import percentile  # noqa: E402


def measure(client, path, rounds, **headers):
    from django.db import connection

    client.get(path, **headers)  # warm: token cache, templates
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(path, **headers)
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        client.get(path, **headers)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), percentile(samples, 0.95), len(queries), response


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_databases, teardown_databases
    from django.utils import timezone

    config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    scratch = None
    try:
        scratch = tempfile.mkdtemp(prefix="bench-dashboard-")
        call_command("bootstrap", public_url="http://127.0.0.1:8000", clouds_yaml=f"{scratch}/clouds.yaml")
        from compute.models import ComputeNode, Instance, PowerState, VmState

        client = Client(HTTP_HOST="127.0.0.1")
        login = client.post("/dashboard/login/", {"domain": "Default", "username": "demo",
                                                  "password": settings.DEMO_PASSWORD})
        assert login.status_code == 302, login.content[:300]
        token = client.session["dashboard.token"]
        from cloud.auth import validator

        project = validator()(token).project_id
        prefix = f"bench-{uuid.uuid4().hex[:6]}"
        nodes = ComputeNode.objects.bulk_create([
            ComputeNode(host=f"{prefix}-{index}", hypervisor_uri="test:///default",
                        hypervisor_hostname=f"{prefix}-{index}", vcpus=64, memory_mb=262144, local_gb=4000,
                        heartbeat_at=timezone.now()) for index in range(args.nodes)])
        now = timezone.now()
        Instance.objects.bulk_create([
            Instance(name=f"{prefix}-{index}", project_id=project, user_id="bench", flavor_id_at_boot="42",
                     flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, host=nodes[index % len(nodes)].host,
                     node=nodes[index % len(nodes)], vm_state=VmState.ACTIVE, power_state=PowerState.RUNNING,
                     launched_at=now) for index in range(args.servers)], batch_size=500)

        limit = min(args.servers, 1000)
        api = measure(client, f"/compute/v2.1/servers/detail?limit={limit}", args.rounds,
                      HTTP_X_AUTH_TOKEN=token, HTTP_OPENSTACK_API_VERSION="compute 2.60")
        page = measure(client, f"/dashboard/instances/?limit={limit}", args.rounds)
        rows = page[3].content.count(b'<tr id="server-')
        print(f"Stratus dashboard benchmark: {args.servers} servers on {args.nodes} simulated nodes, "
              f"{args.rounds} rounds, in one process")
        for label, (p50, p95, queries, _) in (("GET /servers/detail (API)", api),
                                              (f"Instances page ({rows} rows)", page)):
            print(f"{label:32} p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   {queries:3d} queries")
        print(f"{'page / API (p50)':32} {page[0] / api[0]:7.2f} x   (target: within 2x, page under 300 ms p50)")
    finally:
        from django.db import connection

        connection.close()
        teardown_databases(config, verbosity=0)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
