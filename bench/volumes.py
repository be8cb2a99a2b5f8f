#!/usr/bin/env python3
"""Block storage benchmark.

By default it starts its own scratch cloud (as bench/boot_storm.py does, in
--database-url with --broker-url) with a file back end's worker, and an
RBD one given --ceph-conf; with --url it measures a running Stratus
instead (`make start` first).

For each live back end (scheduler-stats/get_pools; a volume type of its
own picks it), prints the time to create N volumes of 1 GiB through the
API until all are available, beside the raw tool's loop of as many in the
same run (`qemu-img create` for a file back end; `rbd create` for an RBD
one, given --ceph-conf): the creates one after another (as a CLI user's
loop) and from --clients threads at once, interleaved with the raw loop
over --create-rounds rounds (the machine's other load falls on both
alike), with the median and best ratios and the CPU and SQL queries per
create of each process on the scratch cloud; then (unless --creates-only)
the time of a volume from a 64 MiB image; of a snapshot and a volume made
from it; of an upload of that volume to an image; and the p50 of attaching a volume to a server and of detaching it
(through Nova's os-volume_attachments, until the volume is in-use /
available again): an ACTIVE server of the admin project given with
`--server` (a real guest for real figures), else, on the scratch cloud,
one it boots on its simulated node (libvirt's test driver: the figure is
the control plane's path, API to node and back, without QEMU's hot-plug),
where it also prints the SQL queries one attach and one detach cost, per
process. Everything it makes is deleted at the end.

    .venv/bin/python bench/volumes.py [--url http://127.0.0.1:8000] [--volumes 50] [--create-rounds 3]
        [--clients 8] [--creates-only] [--port 8620] [--server ID --rounds 10]
        [--ceph-conf var/ceph/ceph.conf --rbd-pool volumes] [--database-url URL --broker-url URL] [--log-queries]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))   # boot_storm
from measure import cpu_seconds  # noqa: E402

DONE = ("available", "error")


def admin_session(url, password):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    issued = requests.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=30)
    if issued.status_code != 201:
        raise SystemExit(f"cannot authenticate: {issued.status_code} {issued.text[:200]}")
    session = requests.Session()
    session.headers["X-Auth-Token"] = issued.headers["X-Subject-Token"]
    project_id = issued.json()["token"]["project"]["id"]
    return session, f"{url}/volume/v3/{project_id}"


def wait(session, url, ids, collection="volumes", timeout=600):
    """Waits until none of the resources is creating any more, listing
    those still creating once a round (a GET per resource, or the detail
    of every one, would load the API more than the creates measured);
    returns how many ended in error, from one detail list at the end."""
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} {collection} did not finish within {timeout} s")
        listed = session.get(f"{url}/{collection}?status=creating&limit=1000", timeout=30).json()[collection]
        pending &= {resource["id"] for resource in listed}
        if pending:
            # Finely enough that the wait adds little to the creates timed.
            time.sleep(0.01)
    listed = session.get(f"{url}/{collection}/detail?limit=1000", timeout=30).json()[collection]
    ended = {resource["id"]: resource["status"] for resource in listed if resource["id"] in set(ids)}
    if any(status not in DONE for status in ended.values()):
        raise SystemExit(f"{collection} left neither available nor in error: {set(ended.values()) - set(DONE)}")
    return sum(status == "error" for status in ended.values())


def create(session, url, body, collection="volumes"):
    response = session.post(f"{url}/{collection}", json={collection[:-1]: body}, timeout=60)
    if response.status_code != 202:
        raise SystemExit(f"create refused: {response.status_code} {response.text[:300]}")
    return response.json()[collection[:-1]]["id"]


def wait_status(session, url, volume_id, wanted, timeout=120):
    deadline = time.monotonic() + timeout
    while session.get(f"{url}/volumes/{volume_id}", timeout=30).json()["volume"]["status"] != wanted:
        if time.monotonic() > deadline:
            raise SystemExit(f"volume {volume_id} did not become {wanted} within {timeout} s")
        time.sleep(0.02)


def attach_detach(session, base, url, server_id, volume_id, rounds):
    """(attach seconds, detach seconds) of each round on the server."""
    compute = f"{base}/compute/v2.1/servers/{server_id}/os-volume_attachments"
    attaches, detaches = [], []
    for _ in range(rounds):
        started = time.monotonic()
        answer = session.post(compute, json={"volumeAttachment": {"volumeId": volume_id}}, timeout=120)
        if answer.status_code != 200:
            raise SystemExit(f"attach refused: {answer.status_code} {answer.text[:300]}")
        wait_status(session, url, volume_id, "in-use")
        attaches.append(time.monotonic() - started)
        started = time.monotonic()
        session.delete(f"{compute}/{volume_id}", timeout=120)
        wait_status(session, url, volume_id, "available")
        detaches.append(time.monotonic() - started)
    return attaches, detaches


def counted_round(session, base, url, server_id, volume_id, stack):
    """({process: SQL queries} of one attach, of one detach) on the scratch
    cloud (its processes count their queries; the waits' GETs included)."""
    compute = f"{base}/compute/v2.1/servers/{server_id}/os-volume_attachments"
    before = stack.queries_by_process()
    answer = session.post(compute, json={"volumeAttachment": {"volumeId": volume_id}}, timeout=120)
    if answer.status_code != 200:
        raise SystemExit(f"attach refused: {answer.status_code} {answer.text[:300]}")
    wait_status(session, url, volume_id, "in-use")
    attached = stack.queries_by_process()
    session.delete(f"{compute}/{volume_id}", timeout=120)
    wait_status(session, url, volume_id, "available")
    detached = stack.queries_by_process()
    return ({name: attached[name] - before[name] for name in before},
            {name: detached[name] - attached[name] for name in before})


def boot_server(session, base, image_id, timeout=300):
    """An ACTIVE server of the admin project (on the scratch cloud's
    simulated node), booted from `image_id` with no network; its id."""
    compute = f"{base}/compute/v2.1"
    headers = {"OpenStack-API-Version": "compute 2.37"}
    flavors = session.get(f"{compute}/flavors", headers=headers, timeout=30).json()["flavors"]
    flavor = next(flavor["id"] for flavor in flavors if flavor["name"] == "m1.nano")
    answer = session.post(f"{compute}/servers", headers=headers, timeout=60, json={"server": {
        "name": f"bench-attach-{uuid.uuid4().hex[:6]}", "imageRef": image_id, "flavorRef": flavor,
        "networks": "none"}})
    if answer.status_code != 202:
        raise SystemExit(f"server create refused: {answer.status_code} {answer.text[:300]}")
    server_id = answer.json()["server"]["id"]
    deadline = time.monotonic() + timeout
    while (status := session.get(f"{compute}/servers/{server_id}", timeout=30).json()["server"]["status"]) != \
            "ACTIVE":
        if status == "ERROR" or time.monotonic() > deadline:
            raise SystemExit(f"server {server_id} did not become ACTIVE ({status})")
        time.sleep(0.2)
    return server_id


def delete_all(session, url, volume_ids, snapshot_ids):
    for snapshot_id in snapshot_ids:
        session.delete(f"{url}/snapshots/{snapshot_id}", timeout=60)
    for snapshot_id in snapshot_ids:
        while session.get(f"{url}/snapshots/{snapshot_id}", timeout=30).status_code != 404:
            time.sleep(0.1)
    for volume_id in volume_ids:
        session.delete(f"{url}/volumes/{volume_id}", timeout=60)


def pools(session, url):
    """[(volume_backend_name, storage_protocol)] of the live back ends."""
    answer = session.get(f"{url}/scheduler-stats/get_pools?detail=true", timeout=30).json()["pools"]
    found = {}
    for pool in answer:
        capabilities = pool["capabilities"]
        if capabilities["backend_state"] == "up":
            found.setdefault(capabilities["volume_backend_name"], capabilities["storage_protocol"])
    return sorted(found.items())


def raw_loop(protocol, count, scratch, args):
    """Seconds of the raw tool making `count` volumes of 1 GiB, or None (and why) if it cannot run here."""
    if protocol == "file":
        started = time.monotonic()
        for index in range(count):
            subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(Path(scratch) / f"v{index}"), "1G"],
                           check=True)
        return time.monotonic() - started, "qemu-img create"
    if protocol == "rbd" and args.ceph_conf:
        names = [f"{args.rbd_pool}/bench-raw-{uuid.uuid4().hex[:8]}" for _ in range(count)]
        started = time.monotonic()
        for name in names:
            subprocess.run(["rbd", "-c", args.ceph_conf, "create", "--size", "1024", name], check=True)
        seconds = time.monotonic() - started
        for name in names:
            subprocess.run(["rbd", "-c", args.ceph_conf, "rm", "--no-progress", name], check=True,
                           capture_output=True)
        return seconds, "rbd create"
    return None, f"no raw loop for {protocol} (an RBD one needs --ceph-conf)"


def create_volumes(session, url, type_name, count, clients, label):
    """Seconds from the first POST until `count` new volumes of 1 GiB are
    all available (or in error), created one after another (clients 1, as
    a CLI user's loop) or from `clients` threads at once; (seconds, ids,
    errors)."""
    def one(index):
        return create(session_of(session), url, {"size": 1, "name": f"bench-{label}-{index}",
                                                 "volume_type": type_name})
    started = time.monotonic()
    if clients == 1:
        ids = [one(index) for index in range(count)]
    else:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            ids = list(pool.map(one, range(count)))
    errors = wait(session, url, ids)
    return time.monotonic() - started, ids, errors


_local = threading.local()


def session_of(session):
    """A session of this thread's own (requests' sessions are not
    thread-safe), with `session`'s token."""
    if threading.current_thread() is threading.main_thread():
        return session
    if getattr(_local, "session", None) is None:
        _local.session = requests.Session()
        _local.session.headers.update(session.headers)
    return _local.session


def delete_and_wait(session, url, ids, timeout=300):
    """Deletes the volumes and waits until none is listed any more (so
    their deletes do not load the next round)."""
    for volume_id in ids:
        session.delete(f"{url}/volumes/{volume_id}", timeout=60)
    deadline = time.monotonic() + timeout
    while {volume["id"] for volume in session.get(f"{url}/volumes?limit=1000", timeout=30).json()["volumes"]} \
            & set(ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"volumes were not deleted within {timeout} s")
        time.sleep(0.05)


def create_rounds(session, args, url, protocol, type_name):
    """The 50 creates against the raw tool's loop, `args.create_rounds`
    times interleaved (API one at a time, raw loop, API from
    `args.clients` threads), so the machine's other load falls on both
    alike; prints each round, the median and best ratios, and the CPU and
    SQL queries per create of each process. Returns the ids of the last
    round's volumes, kept for the figures that follow."""
    ratios = {"sequential": [], "concurrent": []}
    cpu = {"sequential": {}, "concurrent": {}}
    queries = {"sequential": {}, "concurrent": {}}
    kept = []
    for round_index in range(args.create_rounds):
        figures = {}
        for mode, clients in (("sequential", 1), ("raw", None), ("concurrent", args.clients)):
            if mode == "raw":
                with tempfile.TemporaryDirectory() as scratch:
                    figures[mode], raw_tool = raw_loop(protocol, args.volumes, scratch, args)
                continue
            cpu_before = cpu_seconds(args.processes)
            queries_before = args.stack.queries_by_process() if args.stack is not None else {}
            seconds, ids, errors = create_volumes(session, url, type_name, args.volumes, clients,
                                                  f"{round_index}{mode[0]}")
            cpu_after = cpu_seconds(args.processes)
            queries_after = args.stack.queries_by_process() if args.stack is not None else {}
            figures[mode] = seconds
            if errors:
                print(f"  {errors} of the {mode} volumes ended in error")
            for name in cpu_before:
                cpu[mode].setdefault(name, []).append((cpu_after[name] - cpu_before[name]) * 1000 / args.volumes)
            for name in queries_before:
                queries[mode].setdefault(name, []).append((queries_after[name] - queries_before[name]) / args.volumes)
            if round_index == args.create_rounds - 1 and mode == "sequential":
                kept = ids
            else:
                delete_and_wait(session, url, ids)
        raw_seconds = figures["raw"]
        line = (f"round {round_index + 1}: {args.volumes} volumes of 1 GiB through the API one at a time "
                f"{figures['sequential']:.2f} s, from {args.clients} clients {figures['concurrent']:.2f} s")
        if raw_seconds is None:
            print(f"{line}; {raw_tool}")
            continue
        for mode in ratios:
            ratios[mode].append(figures[mode] / max(raw_seconds, 1e-9))
        print(f"{line}; {raw_tool} loop {raw_seconds:.2f} s (ratios {ratios['sequential'][-1]:.2f} and "
              f"{ratios['concurrent'][-1]:.2f})")
    if ratios["sequential"]:
        for mode, clients in (("sequential", "one at a time"), ("concurrent", f"from {args.clients} clients")):
            print(f"API / {raw_tool} loop, {clients}: median {statistics.median(ratios[mode]):.2f}, best "
                  f"{min(ratios[mode]):.2f} (target 1.5; {len(ratios[mode])} rounds)")
    for mode in cpu:
        if cpu[mode]:
            print(f"CPU per create ({mode}, median of rounds): " + ", ".join(
                f"{name} {statistics.median(values):.1f} ms" for name, values in cpu[mode].items())
                + " (the waits' list calls included)")
        if any(any(values) for values in queries[mode].values()):
            print(f"SQL queries per create ({mode}): " + ", ".join(
                f"{name} {statistics.median(values):.1f}" for name, values in queries[mode].items() if any(values))
                + " (the waits' list calls included)")
    return kept


def bench_backend(session, args, url, backend, protocol, image_id, made, snapshots):
    """The figures of one back end, its volumes made with a type that picks it."""
    type_name = f"bench-{backend}-{uuid.uuid4().hex[:4]}"
    answer = session.post(f"{url}/types", json={"volume_type": {
        "name": type_name, "extra_specs": {"volume_backend_name": backend}}}, timeout=30)
    if answer.status_code != 200:
        raise SystemExit(f"volume type refused: {answer.status_code} {answer.text[:300]}")
    type_id = answer.json()["volume_type"]["id"]
    print(f"== back end {backend} ({protocol})")
    try:
        # A few volumes first, deleted: each API process's first requests
        # load what it imports lazily and each of its threads opens its
        # database connection, which no later create pays.
        _, warm, _ = create_volumes(session, url, type_name, 4 * args.clients, args.clients, "warm")
        delete_and_wait(session, url, warm)
        ids = create_rounds(session, args, url, protocol, type_name)
        made += ids
        if args.creates_only:
            return
        started = time.monotonic()
        from_image = create(session, url, {"size": 1, "imageRef": image_id, "name": "bench-image",
                                           "volume_type": type_name})
        made.append(from_image)
        wait(session, url, [from_image])
        print(f"volume from a 64 MiB image: {time.monotonic() - started:.2f} s")
        started = time.monotonic()
        snapshot = create(session, url, {"volume_id": ids[0], "name": "bench-snap"}, collection="snapshots")
        snapshots.append(snapshot)
        wait(session, url, [snapshot], collection="snapshots")
        snapshot_seconds = time.monotonic() - started
        started = time.monotonic()
        clone = create(session, url, {"snapshot_id": snapshot, "name": "bench-clone"})
        made.append(clone)
        wait(session, url, [clone])
        print(f"snapshot of 1 GiB: {snapshot_seconds:.2f} s; volume from it: {time.monotonic() - started:.2f} s")
        started = time.monotonic()
        answer = session.post(f"{url}/volumes/{clone}/action", json={"os-volume_upload_image": {
            "image_name": f"bench-upload-{uuid.uuid4().hex[:6]}", "disk_format": "qcow2"}}, timeout=60)
        if answer.status_code != 202:
            raise SystemExit(f"upload refused: {answer.status_code} {answer.text[:300]}")
        uploaded = answer.json()["os-volume_upload_image"]["image_id"]
        wait_status(session, url, clone, "available", timeout=600)
        image_status = session.get(f"{args.url}/image/v2/images/{uploaded}", timeout=30).json().get("status")
        print(f"upload of a 1 GiB volume to a qcow2 image: {time.monotonic() - started:.2f} s (image {image_status})")
        session.delete(f"{args.url}/image/v2/images/{uploaded}", timeout=30)
        server = args.server or getattr(args, "simulated_server", None)
        if server:
            attaches, detaches = attach_detach(session, args.url, url, server, ids[0], args.rounds)
            where = "" if args.server else " (simulated node)"
            print(f"attach to server {server}{where}: p50 {statistics.median(attaches):.3f} s "
                  f"(target 1 s), detach: p50 {statistics.median(detaches):.3f} s ({args.rounds} rounds)")
            if args.stack is not None:
                attach_queries, detach_queries = counted_round(session, args.url, url, server, ids[0], args.stack)
                print("SQL queries per attach: " + ", ".join(f"{name} {count}" for name, count in
                                                            attach_queries.items())
                      + "; per detach: " + ", ".join(f"{name} {count}" for name, count in detach_queries.items())
                      + " (the waits' GETs included)")
    finally:
        delete_all(session, url, made, snapshots)
        del made[:], snapshots[:]
        for _ in range(600):  # the type goes once its volumes have
            if session.delete(f"{url}/types/{type_id}", timeout=30).status_code in (202, 404):
                break
            time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("STRATUS_URL"),
                        help="a running Stratus to measure (default: a scratch cloud of its own)")
    parser.add_argument("--password", default=os.environ.get("STRATUS_ADMIN_PASSWORD", "stratus-admin"))
    parser.add_argument("--volumes", type=int, default=50)
    parser.add_argument("--create-rounds", type=int, default=3,
                        help="rounds of the creates against the raw tool's loop, interleaved")
    parser.add_argument("--clients", type=int, default=8, help="threads of the concurrent creates")
    parser.add_argument("--creates-only", action="store_true", help="only the creates against the raw tool's loop")
    parser.add_argument("--port", type=int, default=8620, help="the scratch cloud's API port")
    parser.add_argument("--server", help="an ACTIVE server of the admin project to attach to and detach from")
    parser.add_argument("--rounds", type=int, default=10, help="attach/detach rounds on --server")
    parser.add_argument("--ceph-conf", default=os.environ.get("STRATUS_VOLUME_RBD_CEPH_CONF"),
                        help="the RBD back end's cluster, for the `rbd create` loop")
    parser.add_argument("--rbd-pool", default=os.environ.get("STRATUS_VOLUME_RBD_POOL", "volumes"))
    parser.add_argument("--database-url", default="postgres://stratus:stratus@127.0.0.1:5432/stratus_bench")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--log-queries", action="store_true",
                        help="scratch cloud: write each process's SQL statements to var/bench-boot-storm/<process>.sql")
    args = parser.parse_args()
    args.processes = args.stack = None
    if args.url:
        args.url = args.url.rstrip("/")
        measure(args)
        return
    import boot_storm

    args.nodes = args.node_processes = 1
    stack = boot_storm.Stack(args)
    stack.port, stack.url = args.port, f"http://127.0.0.1:{args.port}"
    stack.env.update(STRATUS_API_PORT=str(stack.port), STRATUS_PUBLIC_URL=stack.url)
    os.environ.update(DATABASE_URL=args.database_url, STRATUS_VAR_DIR=str(stack.var),
                      DJANGO_SETTINGS_MODULE="cloud.settings")
    stack.up()
    try:
        worker = [boot_storm.PYTHON, "manage.py", "volumeworker", "--capacity-gb", "10000", "--loglevel", "WARNING"]
        stack.start("volumes-file", [*worker, "--name", "file", "--directory", str(stack.var / "volumes")])
        if args.ceph_conf:
            stack.start("volumes-rbd", [*worker, "--name", "rbd", "--driver", "rbd", "--ceph-conf", args.ceph_conf,
                                        "--pool", args.rbd_pool])
        args.url = stack.url
        args.stack = stack
        processes = stack.processes
        args.processes = {"api": processes["api"].pid, "control": processes["control"].pid, **{
            f"{name} worker": processes[f"volumes-{name}"].pid for name in ("file", "rbd")
            if f"volumes-{name}" in processes}}
        session, url = admin_session(args.url, args.password)
        boot_storm.wait_for(lambda: len(pools(session, url)) == 1 + bool(args.ceph_conf), 120,
                            "the volume back ends")
        measure(args)
    finally:
        stack.down()


def measure(args):
    session, url = admin_session(args.url, args.password)
    quota = {"volumes": -1, "gigabytes": -1, "snapshots": -1}
    project_id = url.rsplit("/", 1)[1]
    session.put(f"{url}/os-quota-sets/{project_id}", json={"quota_set": quota}, timeout=30)
    backends = pools(session, url)
    if not backends:
        raise SystemExit("no live volume back end")
    image = session.post(f"{args.url}/image/v2/images", json={
        "name": f"bench-{uuid.uuid4().hex[:6]}", "disk_format": "raw", "container_format": "bare"},
        timeout=30).json()
    try:
        answer = session.put(f"{args.url}/image/v2/images/{image['id']}/file", data=os.urandom(64 * 2**20),
                             headers={"Content-Type": "application/octet-stream"}, timeout=120)
        if answer.status_code != 204:
            raise SystemExit(f"image upload refused: {answer.status_code} {answer.text[:300]}")
        if args.stack is not None and not args.server and not args.creates_only:
            args.simulated_server = boot_server(session, args.url, image["id"])
        for backend, protocol in backends:
            bench_backend(session, args, url, backend, protocol, image["id"], [], [])
    finally:
        if getattr(args, "simulated_server", None):
            session.delete(f"{args.url}/compute/v2.1/servers/{args.simulated_server}", timeout=30)
        session.delete(f"{args.url}/image/v2/images/{image['id']}", timeout=30)


if __name__ == "__main__":
    main()
