"""The guest of test_volumes_guest (its fixtures, its user data) on the Ceph
RBD back end, with cephx: a single-node cluster of the module's own that
requires it, a restricted client `stratus` (the volume worker's user), and
that client's key in a libvirt secret on the node, as an operator defines
it for Nova (STRATUS_VOLUME_RBD_SECRET_UUID). The stratus-tiny server boots
from an RBD volume made from its image (QEMU's librbd opens it as a network
disk that names the secret), writes its data volume, sees it grow when
`openstack volume set --size` extends it in use, takes a hot-plugged RBD
volume, writes onto it and lets it go; attached to another server, the
volume has the guest's bytes (read with librbd). One guest for the module:
a TCG boot takes minutes."""
import base64
import subprocess
import uuid
import xml.etree.ElementTree as ET

import pytest

from tests.compute import test_volumes_guest
from tests.compute.nodes import wait_until
from tests.compute.test_real_boot import MARKER
from tests.compute.test_volumes_guest import TOKEN, console, hot_plug_write_unplug_and_read_on_another_server
from tests.volumes.conftest import VolumeWorker, forget_backends
from volumes import quotas
from volumes.models import Backend, Volume

# The file back end's guest, its node and its fixtures; `volume_backend` is this module's.
live_db, hypervisor = test_volumes_guest.live_db, test_volumes_guest.hypervisor
stack, guest = test_volumes_guest.stack, test_volumes_guest.guest

pytestmark = pytest.mark.live

POOL = "volumes"
USER = "stratus"
GiB = 2**30


@pytest.fixture(scope="module")
def cephx_cluster(tmp_path_factory):
    """(the admin's ceph.conf, the client `stratus`'s ceph.conf, its key)."""
    from scripts import ceph_cluster

    reason = ceph_cluster.missing()
    if reason:
        pytest.skip(f"{reason}: the RBD guest is not exercised")
    directory = tmp_path_factory.mktemp("ceph-cephx")
    try:
        conf = ceph_cluster.start(directory, memory=True, size=4 * GiB, pools=("images", POOL), cephx=True)
        keyring = directory / f"client.{USER}.keyring"
        keyring.write_text(subprocess.run(
            ["ceph", "-c", conf, "auth", "get-or-create", f"client.{USER}", "mon", "profile rbd",
             "osd", f"profile rbd pool={POOL}, profile rbd-read-only pool=images"],
            check=True, capture_output=True, text=True).stdout)
        key = subprocess.run(["ceph-authtool", str(keyring), "-n", f"client.{USER}", "--print-key"],
                             check=True, capture_output=True, text=True).stdout.strip()
        client_conf = directory / f"client.{USER}.conf"
        client_conf.write_text("".join(f"keyring = {keyring}\n" if line.startswith("keyring =") else line
                                       for line in open(conf).read().splitlines(keepends=True)))
        yield conf, str(client_conf), key
    finally:
        ceph_cluster.stop(directory)


@pytest.fixture(scope="module")
def ceph_secret(cephx_cluster, hypervisor):
    """The client's key in a libvirt secret of the node's (what its RBD disks name)."""
    _conf, _client_conf, key = cephx_cluster
    secret_uuid = str(uuid.uuid4())
    secret = hypervisor.secretDefineXML(
        f"<secret ephemeral='no' private='yes'><uuid>{secret_uuid}</uuid>"
        f"<usage type='ceph'><name>client.{USER} {secret_uuid}</name></usage></secret>")
    secret.setValue(base64.b64decode(key))
    yield secret_uuid
    secret.undefine()


@pytest.fixture(scope="module")
def volume_backend(live_db, cloud, cephx_cluster, ceph_secret, tmp_path_factory):
    """An RBD back end whose worker acts as the client `stratus`: the module's only live one."""
    _conf, client_conf, _key = cephx_cluster
    forget_backends(*Backend.objects.values_list("host", flat=True))
    base = tmp_path_factory.mktemp("volguest-rbd")
    worker = VolumeWorker(base, base / "volume.log", name=f"rbd-{uuid.uuid4().hex[:6]}", capacity_gb=20,
                          backend_args=["--driver", "rbd", "--ceph-conf", client_conf, "--pool", POOL],
                          STRATUS_PUBLIC_URL=cloud.url, STRATUS_IMAGE_CACHE_DIR=str(base / "image-cache"),
                          STRATUS_VOLUME_RBD_USER=USER, STRATUS_VOLUME_RBD_SECRET_UUID=ceph_secret)
    yield worker.start()
    worker.stop()
    forget_backends(worker.host)


@pytest.fixture(scope="module")
def pool(cephx_cluster):
    """The volumes pool, read with librbd as the admin."""
    import rados

    cluster = rados.Rados(conffile=cephx_cluster[0])
    cluster.connect(timeout=10)
    ioctx = cluster.open_ioctx(POOL)
    yield ioctx
    ioctx.close()
    cluster.shutdown()


def read_rbd(pool, name, length):
    import rbd

    with rbd.Image(pool, name, read_only=True) as image:
        return image.read(0, length), image.size()


def rbd_disks(xml):
    """{target dev: its <disk>} of the domain's RBD network disks."""
    return {disk.find("target").get("dev"): disk for disk in ET.fromstring(xml).findall("devices/disk")
            if disk.get("type") == "network" and disk.find("source").get("protocol") == "rbd"}


def test_the_guest_boots_from_an_rbd_volume_writes_its_data_volume_sees_it_grow_and_takes_a_hot_plugged_one(
        cloud, stack, guest, hypervisor, pool, ceph_secret, tmp_path):
    host, volumes = stack
    server, data_id, image_id = guest
    assert server["status"] == "ACTIVE", server.get("fault")
    assert server["OS-EXT-SRV-ATTR:host"] == host
    attached = {row["Device"]: row["Volume ID"] for row in cloud.openstack(
        "server", "volume", "list", server["id"], "-f", "json")}
    assert set(attached) == {"/dev/vda", "/dev/vdb"} and attached["/dev/vdb"] == data_id
    root_id = attached["/dev/vda"]
    assert Volume.objects.get(pk=root_id).backend.host == volumes.host
    # Both disks are RBD images QEMU opens as the client stratus with the
    # node's secret; the domain has no local disk.
    domain = hypervisor.lookupByName(f"instance-{server['id']}")
    disks = rbd_disks(domain.XMLDesc())
    assert set(disks) == {"vda", "vdb"}
    assert disks["vda"].find("source").get("name") == f"{POOL}/volume-{root_id}"
    assert disks["vda"].find("auth").get("username") == USER
    assert disks["vda"].find("auth/secret").get("uuid") == ceph_secret
    assert not [disk for disk in ET.fromstring(domain.XMLDesc()).findall("devices/disk")
                if disk.get("device") == "disk" and disk.get("type") == "file"]

    wait_until(lambda: MARKER in console(cloud, server["id"]), timeout=600, interval=3,
               message="the guest's boot marker (booted from its RBD volume)")
    wait_until(lambda: "VOLTEST: wrote the marker" in console(cloud, server["id"]), timeout=120, interval=2,
               message="the guest to write its data volume")
    assert "vdb has 2097152 sectors" in console(cloud, server["id"])
    assert read_rbd(pool, f"volume-{data_id}", 512)[0].startswith(f"VOLTEST-{TOKEN}\n".encode())

    # Extend while attached (Cinder 3.42): the RBD image, the row, the quota usage and the guest follow.
    project = Volume.objects.get(pk=data_id).project_id
    used = quotas.usage_of(project)["gigabytes"]
    cloud.openstack("--os-volume-api-version", "3.42", "volume", "set", "--size", "2", data_id)
    wait_until(lambda: Volume.objects.filter(pk=data_id, status="in-use", size=2).exists(), timeout=60,
               message="the volume to be extended")
    assert quotas.usage_of(project)["gigabytes"] == used + 1
    assert read_rbd(pool, f"volume-{data_id}", 0)[1] == 2 * GiB
    wait_until(lambda: "VOLTEST: vdb grew to 4194304 sectors" in console(cloud, server["id"]), timeout=120,
               interval=2, message="the guest to see its disk grow")

    hot_plug_write_unplug_and_read_on_another_server(
        cloud, server, image_id, hypervisor, tmp_path,
        read_volume=lambda info, length: read_rbd(pool, info["data"]["name"].split("/", 1)[1], length)[0])
    assert "vdc" not in rbd_disks(domain.XMLDesc())

    # Deleted, the server leaves its data volume available with the guest's
    # marker on it, and its root volume (delete_on_termination) goes from the pool.
    cloud.openstack("server", "delete", "--wait", server["id"])
    wait_until(lambda: Volume.objects.get(pk=data_id).status == "available", timeout=60, message="detached")
    head, size = read_rbd(pool, f"volume-{data_id}", 512)
    assert head.startswith(f"VOLTEST-{TOKEN}\n".encode()) and size == 2 * GiB
    wait_until(lambda: not Volume.objects.filter(pk=root_id).exists(), timeout=60, message="root volume deleted")
    import rbd

    assert f"volume-{root_id}" not in rbd.RBD().list(pool)
    cloud.connect().block_storage.delete_volume(data_id)
    wait_until(lambda: f"volume-{data_id}" not in rbd.RBD().list(pool), timeout=60,
               message="the data volume's RBD image to go")
