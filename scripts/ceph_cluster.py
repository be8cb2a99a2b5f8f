"""A single-node Ceph cluster without systemd, for trying the RBD back ends
and for the tests: one monitor and one OSD on 127.0.0.1, pools of size one,
no cephx (or, with cephx=True, cephx with every daemon's and client.admin's
key in one keyring the conf names). Everything (conf, data, logs, pid files)
lives in one directory.

    python scripts/ceph_cluster.py start var/ceph      # prints the ceph.conf path
    python scripts/ceph_cluster.py stop var/ceph

`start` makes the cluster on first use (bluestore on a sparse file, kept
across restarts) and starts its daemons again otherwise; the tests use an
in-memory OSD (memstore) in a directory of their own."""
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

POOLS = ("images", "volumes", "objects")

CONF = """[global]
fsid = {fsid}
mon_host = v1:127.0.0.1:{port}
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
auth_cluster_required = {auth}
auth_service_required = {auth}
auth_client_required = {auth}
keyring = {dir}/keyring
mon_allow_pool_size_one = true
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_crush_chooseleaf_type = 0
mon_warn_on_pool_no_redundancy = false
run_dir = {dir}/run
log_file = {dir}/log/$name.log
pid_file = {dir}/run/$name.pid
admin_socket = {dir}/run/$name.asok
mon_data = {dir}/mon/$cluster-$id
osd_data = {dir}/osd/$cluster-$id
{objectstore}
# The OSD is put in the CRUSH map here instead: when it does so itself at
# start-up it may ask before it knows the cluster's fsid, and die.
osd_class_update_on_start = false
osd_crush_update_on_start = false
[mon]
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
[client]
admin_socket =
log_file =
"""
MEMSTORE = "osd_objectstore = memstore\nmemstore_device_bytes = {size}"
# A sparse file: only what is written takes room.
BLUESTORE = "osd_objectstore = bluestore\nbluestore_block_create = true\nbluestore_block_size = {size}"


class CephError(Exception):
    pass


def missing():
    """Why a cluster cannot start here, or None."""
    if not all(importlib.util.find_spec(module) for module in ("rados", "rbd")):
        return "Ceph's rados/rbd Python modules are missing (scripts/install.sh installs them)"
    for tool in ("ceph-mon", "ceph-osd", "monmaptool", "ceph", "rados"):
        if not _which(tool):
            return f"{tool} is not installed (scripts/install.sh installs it)"
    return None


def _which(tool):
    return any(os.access(Path(folder) / tool, os.X_OK) for folder in os.environ.get("PATH", "").split(os.pathsep))


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(directory, memory=False, size=None, pools=POOLS, cephx=False):
    """Starts (making it first if new) the cluster in `directory`; returns
    its ceph.conf once every pool takes a write."""
    directory = Path(directory).resolve()
    conf = directory / "ceph.conf"

    def ceph(*command):
        # A monitor just started may refuse a command for a moment
        # ("problem getting command descriptions"): asked again, it answers.
        for attempt in range(5 if command[0] in ("ceph", "rados") else 1):
            result = subprocess.run([*command[:1], "-c", str(conf), *command[1:]], capture_output=True, text=True,
                                    timeout=120)
            if result.returncode == 0:
                return result.stdout.strip()
            time.sleep(0.5 * (attempt + 1))
        raise CephError(f"{' '.join(command[:3])} failed: {result.stderr.strip()[-2000:]}")

    new = not conf.exists()
    if new:
        for name in ("run", "log", "mon", "osd"):
            (directory / name).mkdir(parents=True, exist_ok=True)
        fsid, port = str(uuid.uuid4()), _free_port()
        objectstore = (MEMSTORE if memory else BLUESTORE).format(size=size or (2**30 if memory else 8 * 2**30))
        conf.write_text(CONF.format(fsid=fsid, port=port, dir=directory, objectstore=objectstore,
                                    auth="cephx" if cephx else "none"))
        if cephx:
            # The monitor's mkfs takes in every entity of this keyring, caps and all.
            for name, caps in (("mon.", ["mon", "allow *"]),
                               ("client.admin", ["mon", "allow *", "osd", "allow *", "mgr", "allow *"]),
                               ("osd.0", ["mon", "allow profile osd", "osd", "allow *"])):
                create = ["--create-keyring"] if name == "mon." else []
                subprocess.run(["ceph-authtool", str(directory / "keyring"), *create, "--gen-key", "-n", name,
                                *(arg for cap in zip(caps[::2], caps[1::2]) for arg in ("--cap", *cap))],
                               check=True, capture_output=True)
        subprocess.run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a", f"[v1:127.0.0.1:{port}]",
                        str(directory / "monmap")], check=True, capture_output=True)
        ceph("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(directory / "monmap"),
             *(["--keyring", str(directory / "keyring")] if cephx else []))
    ceph("ceph-mon", "-i", "a")
    if new:
        osd_uuid = str(uuid.uuid4())
        osd_id = ceph("ceph", "osd", "new", osd_uuid)
        (directory / "osd" / f"ceph-{osd_id}").mkdir()
        ceph("ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
        ceph("ceph", "osd", "crush", "add-bucket", "local", "host")
        ceph("ceph", "osd", "crush", "move", "local", "root=default")
        ceph("ceph", "osd", "crush", "add", f"osd.{osd_id}", "1.0", "host=local")
    for osd in sorted((directory / "osd").glob("ceph-*")):
        ceph("ceph-osd", "-i", osd.name[len("ceph-"):])
    for pool in pools:
        if new:
            ceph("ceph", "osd", "pool", "create", pool, "8")
            ceph("ceph", "osd", "pool", "application", "enable", pool, "rbd" if pool != "objects" else "rgw")
        # Ready when the pool takes a write (`ceph -s` lags behind).
        ceph("rados", "-p", pool, "put", "ready", str(conf))
        ceph("rados", "-p", pool, "rm", "ready")
    return str(conf)


def stop(directory):
    """Stops the cluster's daemons (together: each takes ~2 s to exit)."""
    pids = []
    for path in (Path(directory) / "run").glob("*.pid"):
        try:
            pid = int(path.read_text())
            os.kill(pid, signal.SIGTERM)
            pids.append(pid)
        except (ValueError, ProcessLookupError):
            pass
        path.unlink(missing_ok=True)
    deadline = time.monotonic() + 15
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        time.sleep(0.1)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        sys.exit(f"usage: {argv[0]} start|stop DIRECTORY")
    if argv[1] == "stop":
        stop(argv[2])
        return
    reason = missing()
    if reason:
        sys.exit(f"cannot start Ceph: {reason}")
    try:
        print(start(argv[2]))
    except CephError as error:
        stop(argv[2])
        sys.exit(f"cannot start Ceph: {error}")


if __name__ == "__main__":
    main(sys.argv)
