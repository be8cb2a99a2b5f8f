#!/usr/bin/env python3
"""Networking benchmark.

Prints 1,000 port creates on one subnet through the API (per second, p50 and
p95 latency at the given concurrency), checks that every address is
distinct, and counts the SQL queries of one port create inside an API
process with few and with many ports on the network (flat is the target);
then the node agent's time to plumb and unplug a port (p50/p95; target
under 100 ms at p50) and the SQL queries of a port's bind and plug, on a
host played by a scratch namespace (root); the time of a port create in
the default group when its members are on many hosts (each of which the
default group's remote-group rule tells of the new address), and the
agent's work for each such join (queries, nft calls: flat in the group's
size, only the group's set changes); then
the boot storm of bench/boot_storm.py (--storm servers on simulated nodes)
with `networks: none` and with a port each on one tenant network (target:
with ports at least 80% of the rate without).

By default it starts its own scratch cloud (as bench/boot_storm.py does,
in --database-url with --broker-url); with --url it measures a running
Stratus instead (run it with that cloud's DATABASE_URL for the query count
and the agent), and skips the storm.

    .venv/bin/python bench/network.py [--ports 1000] [--concurrency 8] [--storm 200]
    .venv/bin/python bench/network.py --url http://127.0.0.1:8000
"""
import argparse
import os
import shutil
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))   # boot_storm


def admin_token(url, password):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    issued = requests.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=30)
    if issued.status_code != 201:
        raise SystemExit(f"cannot authenticate: {issued.status_code} {issued.text[:200]}")
    return issued.headers["X-Subject-Token"]


def create_ports(url, token, network_id, count, concurrency):
    """Creates `count` ports from `concurrency` threads; returns (latencies, addresses, seconds)."""
    latencies, addresses, lock = [], [], threading.Lock()
    remaining = iter(range(count))

    def worker():
        session = requests.Session()
        session.headers["X-Auth-Token"] = token
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            start = time.perf_counter()
            response = session.post(f"{url}/network/v2.0/ports", json={"port": {"network_id": network_id}}, timeout=60)
            elapsed = time.perf_counter() - start
            if response.status_code != 201:
                raise SystemExit(f"port create failed: {response.status_code} {response.text[:200]}")
            with lock:
                latencies.append(elapsed)
                addresses.append(response.json()["port"]["fixed_ips"][0]["ip_address"])

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, addresses, time.perf_counter() - began


def queries_per_create(token, network_id, rounds=20):
    """The SQL queries of one port create through the whole Django stack,
    in this process (the cloud's DATABASE_URL)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")   # a host the cloud answers to (loopback always is)
    counts = []
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as captured:
            response = client.post("/network/v2.0/ports", data={"port": {"network_id": network_id}},
                                   content_type="application/json", HTTP_X_AUTH_TOKEN=token)
        if response.status_code != 201:
            raise SystemExit(f"in-process port create failed: {response.status_code} {response.content[:200]}")
        counts.append(len(captured))
    return statistics.median(counts)


def fanout_creates(network_id, project_id, host_count, count=100):
    """Port creates in this process (the cloud's DATABASE_URL and broker)
    on a network whose default-group members are bound to `host_count`
    hosts: each create tells every one of them (p50/p95 ms). The hosts are
    names only; their queues and pending marks are removed afterwards."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.db import transaction

    from network import ports
    from network.models import Network
    from workers import queues

    network = Network.objects.get(pk=network_id)
    hosts = [f"bench-fanout-{uuid.uuid4().hex[:6]}-{n}" for n in range(host_count)]

    def create(host):
        with transaction.atomic():
            ports.create_port(network, project_id, binding_host_id=host, device_owner="compute:bench")

    try:
        for host in hosts:
            create(host)
        latencies = []
        for index in range(count):
            started = time.perf_counter()
            create(hosts[index % host_count])
            latencies.append(time.perf_counter() - started)
    finally:
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        for host in hosts:
            for key in broker.keys(f"{queues.network(host)}*") + broker.keys(f"stratus:network-pending:{host}:*"):
                broker.delete(key)
    return percentiles(latencies)


def agent_plumbing(network_id, count, joins=200):
    """The node agent's time to plumb and unplug a port (bridge, VXLAN, DHCP
    entry, rules; the tap is the hypervisor's), in this process on a host
    played by a scratch namespace, for `count` ports of the network.
    Between the plugs and the unplugs, `joins` ports join the default group
    (bound to other hosts, names only) and the agent updates the group's
    set for each as a "groups" message has it do.
    Returns (plug latencies, unplug latencies, median SQL queries of a bind,
    of a plug, [(group size, queries, nft calls, ms) of each join])."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
    import django

    django.setup()
    import tempfile

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from network import ports as port_rows
    from network.agent import firewall, iplib, node
    from network.models import Agent, Network, Port
    from workers import queues
    from workers.celery import app

    host = f"bench-{uuid.uuid4().hex[:6]}"
    namespace = f"stbench-{host}"
    state_dir = Path(tempfile.mkdtemp(prefix="stratus-bench-"))
    iplib.ensure_namespace(namespace)
    with iplib.ip(namespace) as handle:
        # An underlay with nobody on the other end (veth: this kernel has no dummy links).
        handle.link("add", ifname="ul0", kind="veth", peer={"ifname": "ul0-peer"})
        iplib.set_addresses(handle, "ul0", [("192.168.251.1", 24)])
        iplib.set_up(handle, "ul0")
    agent = node.serve(host, node.kernel_host(host, namespace=namespace, local_ip="192.168.251.1",
                                              state_dir=state_dir))
    network = Network.objects.get(pk=network_id)
    made, plugs, unplugs, bind_queries, plug_queries, join_work = [], [], [], [], [], []
    try:
        for n in range(count):
            made.append(port_rows.create_port(network, network.project_id, name=f"bench-{n}"))
        for port in made:
            with CaptureQueriesContext(connection) as captured:
                port_rows.bind_port(port, host)
            bind_queries.append(len(captured))
            start = time.perf_counter()
            with CaptureQueriesContext(connection) as captured:
                node.plug_port(port.pk)
            plugs.append(time.perf_counter() - start)
            plug_queries.append(len(captured))
        group = port_rows.default_security_group(network.project_id)
        run, nft_calls = iplib.run, []

        def counting(namespace, argv, *rest, **options):
            nft_calls.append(argv[0] == "nft")
            return run(namespace, argv, *rest, **options)

        iplib.run = counting
        try:
            for n in range(joins):
                made.append(port_rows.create_port(network, network.project_id, name=f"bench-join-{n}",
                                                  binding_host_id=f"{host}-far{n % 10}"))
                nft_calls.clear()
                start = time.perf_counter()
                with CaptureQueriesContext(connection) as captured:
                    agent.converge({"groups": [str(group.pk)]})
                join_work.append((len(node.NodeAgent.group_members(group.pk)), len(captured), sum(nft_calls),
                                  (time.perf_counter() - start) * 1000))
            # What a join cost before groups were told apart: the member's
            # network converged whole on the host (every port's rules again).
            nft_calls.clear()
            start = time.perf_counter()
            with CaptureQueriesContext(connection) as captured:
                agent.converge({"networks": [network_id]})
            join_work.append(("whole network", len(captured), sum(nft_calls), (time.perf_counter() - start) * 1000))
        finally:
            iplib.run = run
        for port in made[:count]:
            start = time.perf_counter()
            node.unplug_port(port.pk)
            unplugs.append(time.perf_counter() - start)
    finally:
        for port in Port.objects.filter(pk__in=[port.pk for port in made]):
            port_rows.delete_port(port)
        agent.converge({"networks": [network_id]})
        Port.objects.filter(network_id=network_id, binding_host_id=host).delete()
        agent.remove_stale()
        Agent.objects.filter(host=host).delete()
        iplib.delete_namespace(namespace)
        firewall.forget_namespace(namespace)
        shutil.rmtree(state_dir, ignore_errors=True)
        # Nobody consumes the bench host's queue: what the API told it goes.
        with app.connection_for_write() as connection:
            for name in [host] + [f"{host}-far{n}" for n in range(10)]:
                connection.default_channel.queue_purge(queues.network(name))
    return plugs, unplugs, statistics.median(bind_queries), statistics.median(plug_queries), join_work


def percentiles(latencies):
    ordered = sorted(latencies)
    return statistics.median(ordered) * 1000, ordered[max(int(len(ordered) * 0.95) - 1, 0)] * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("STRATUS_URL"),
                        help="a running Stratus to measure (default: a scratch cloud of its own)")
    parser.add_argument("--password", default=os.environ.get("STRATUS_ADMIN_PASSWORD", "stratus-admin"))
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-queries", action="store_true", help="skip the in-process query count")
    parser.add_argument("--agent-ports", type=int, default=50,
                        help="ports the node agent plumbs and unplugs in this process (root; 0: skip)")
    parser.add_argument("--fanout-hosts", type=int, default=20,
                        help="hosts with a default-group member for the in-process port creates (0: skip)")
    parser.add_argument("--storm", type=int, default=200, dest="servers",
                        help="servers of the boot storms on the scratch cloud (0: skip)")
    parser.add_argument("--nodes", type=int, default=20, help="simulated nodes of the scratch cloud")
    parser.add_argument("--node-processes", type=int, default=2, help="node worker processes they are split over")
    parser.add_argument("--database-url", default="postgres://stratus:stratus@127.0.0.1:5432/stratus_bench")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    if args.url:
        measure(args)
        return
    import boot_storm

    stack = boot_storm.Stack(args)
    os.environ.update(DATABASE_URL=args.database_url, STRATUS_VAR_DIR=str(stack.var),
                      DJANGO_SETTINGS_MODULE="cloud.settings")
    stack.up()
    try:
        args.url = stack.url
        measure(args)
        if args.servers:
            args.network = True
            session, headers, image_id, _ = boot_storm.prepare(stack, args)
            ids = boot_storm.storms(stack, args, session, headers, image_id)
            boot_storm.delete_storm(stack, args, session, headers, ids, quiet=True)
    finally:
        stack.down()


def measure(args):
    """The port creates, their queries and the agent's plumbing, against args.url."""
    token = admin_token(args.url, args.password)
    session = requests.Session()
    session.headers["X-Auth-Token"] = token
    api = f"{args.url}/network/v2.0"
    # Port quota raised for the run, put back after.
    project_id = requests.get(f"{args.url}/identity/v3/auth/tokens", timeout=30, headers={
        "X-Auth-Token": token, "X-Subject-Token": token}).json()["token"]["project"]["id"]
    overridden = project_id in {q["project_id"] for q in session.get(f"{api}/quotas").json()["quotas"]}
    previous_limit = session.get(f"{api}/quotas/{project_id}").json()["quota"]["port"]
    session.put(f"{api}/quotas/{project_id}", json={"quota": {"port": -1}}).raise_for_status()
    network = session.post(f"{api}/networks", json={"network": {"name": f"bench-{uuid.uuid4().hex[:6]}"}})
    network.raise_for_status()
    network_id = network.json()["network"]["id"]
    try:
        session.post(f"{api}/subnets", json={"subnet": {"network_id": network_id, "cidr": "10.250.0.0/20",
                                                       "ip_version": 4}}).raise_for_status()
        if not args.no_queries:
            few = queries_per_create(token, network_id)
        latencies, addresses, seconds = create_ports(args.url, token, network_id, args.ports, args.concurrency)
        ordered = sorted(latencies)
        p95 = ordered[max(int(len(ordered) * 0.95) - 1, 0)]
        print(f"{args.ports} port creates, concurrency {args.concurrency}: {args.ports / seconds:7.1f} /s   "
              f"p50 {statistics.median(ordered) * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms")
        print(f"distinct addresses: {len(set(addresses))} of {len(addresses)}")
        if not args.no_queries:
            many = queries_per_create(token, network_id)
            print(f"SQL queries per port create: {few:.0f} on an empty network, {many:.0f} with "
                  f"{args.ports} ports on it")
        if args.fanout_hosts and not args.no_queries:
            p50, p95 = fanout_creates(network_id, project_id, args.fanout_hosts)
            print(f"port create in the default group, members on {args.fanout_hosts} hosts: p50 {p50:6.1f} ms  "
                  f"p95 {p95:6.1f} ms")
        if args.agent_ports and os.geteuid() != 0:
            print("node agent: skipped (plumbing needs root)")
        elif args.agent_ports:
            plugs, unplugs, bind_queries, plug_queries, joins = agent_plumbing(network_id, args.agent_ports)
            print(f"node agent, {args.agent_ports} ports on a network with {args.ports}: plug p50 "
                  f"{percentiles(plugs)[0]:6.1f} ms  p95 {percentiles(plugs)[1]:6.1f} ms   unplug p50 "
                  f"{percentiles(unplugs)[0]:6.1f} ms  p95 {percentiles(unplugs)[1]:6.1f} ms")
            print(f"SQL queries per port bind {bind_queries:.0f}, per plug {plug_queries:.0f}")
            if joins:
                *joins, whole = joins
                for size, queries, nft, ms in (joins[0], joins[len(joins) // 2], joins[-1]):
                    print(f"default-group join, group of {size}: agent {queries} queries, {nft} nft calls, "
                          f"{ms:5.1f} ms")
                print(f"(the network converged whole instead, {args.agent_ports} ports here: {whole[1]} queries, "
                      f"{whole[2]} nft calls, {whole[3]:5.1f} ms)")
    finally:
        listed = session.get(f"{api}/ports", params={"network_id": network_id, "fields": "id"}).json()["ports"]
        for port in listed:
            session.delete(f"{api}/ports/{port['id']}")
        session.delete(f"{api}/networks/{network_id}")
        if overridden:
            session.put(f"{api}/quotas/{project_id}", json={"quota": {"port": previous_limit}})
        else:
            session.delete(f"{api}/quotas/{project_id}")


if __name__ == "__main__":
    main()
