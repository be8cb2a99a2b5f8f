"""The Ceph RBD back end: each volume an RBD image in one pool, each
snapshot a protected RBD snapshot of its volume's image, with librbd
(Debian's python3-rbd) against a cluster named by a ceph.conf.

    <pool>/volume-<id>                  a volume
    <pool>/volume-<id>@snapshot-<id>    a snapshot of it
    <pool>/volume-<id>.part             a volume being made (renamed when complete)
    <pool>/stratus.snapshots            omap: snapshot id -> the image holding it

Volume from snapshot and volume from an image in the RBD image store of the
same cluster are copy-on-write clones; volume from volume is a full copy.
Nodes attach the volumes with QEMU's own librbd driver as network disks."""
import json
import logging
import re

from volumes.backends import BackendError, qemu_img

log = logging.getLogger(__name__)

GiB = 2**30
PARTIAL = ".part"
SNAPSHOT_INDEX = "stratus.snapshots"


def _modules():
    try:
        import rados
        import rbd
    except ImportError as error:
        raise BackendError("The Ceph RBD back end needs the rados and rbd Python modules (python3-rbd).") from error
    return rados, rbd


class _Session:
    """One connection to the cluster and an I/O context on the pool."""

    def __init__(self, backend):
        self.backend = backend

    def __enter__(self):
        rados, _ = _modules()
        self.cluster = rados.Rados(conffile=self.backend.ceph_conf, rados_id=self.backend.user or None)
        try:
            self.cluster.connect(timeout=10)
            self.ioctx = self.cluster.open_ioctx(self.backend.pool)
        except rados.Error as error:
            self.cluster.shutdown()
            raise BackendError(f"Cannot reach the Ceph pool {self.backend.pool}: {error}.") from error
        return self

    def __exit__(self, *exc):
        self.ioctx.close()
        self.cluster.shutdown()
        return False


class RbdBackend:
    driver = "rbd"

    def __init__(self, ceph_conf, pool="volumes", user="", secret_uuid="", capacity_gb=0):
        if not ceph_conf:
            raise BackendError("The Ceph RBD back end needs a ceph.conf (STRATUS_VOLUME_RBD_CEPH_CONF).")
        self.ceph_conf, self.pool, self.user, self.secret_uuid = ceph_conf, pool, user, secret_uuid
        self.configured_capacity_gb = capacity_gb
        self.partial_left = set()

    # -- names

    @staticmethod
    def volume_name(volume_id):
        return f"volume-{volume_id}"

    @staticmethod
    def snapshot_name(snapshot_id):
        return f"snapshot-{snapshot_id}"

    # -- the interface

    def capacity_gb(self):
        if self.configured_capacity_gb:
            return self.configured_capacity_gb
        with _Session(self) as session:
            kb = session.cluster.get_cluster_stats()["kb"]
            if kb:
                return kb // 2**20
            # No manager aggregates the cluster's statistics (a small cluster
            # may run none): the monitors still know each bluestore OSD's size.
            code, output, _status = session.cluster.mon_command(
                json.dumps({"prefix": "osd metadata", "format": "json"}), b"")
            if code != 0:
                return 0
            return sum(int(osd.get("bluestore_bdev_size") or 0) for osd in json.loads(output)) // GiB

    def create(self, volume_id, size_gb):
        _, rbd = _modules()
        with _Session(self) as session, self._making(session, volume_id) as partial:
            rbd.RBD().create(session.ioctx, partial, size_gb * GiB, old_format=False,
                             features=rbd.RBD_FEATURE_LAYERING)

    def clone_image(self, volume_id, size_gb, image_url, image_format):
        """A copy-on-write clone of an image the RBD image store keeps raw
        in this cluster (rbd://<fsid>/<pool>/<image>/<snapshot>); False when
        the image is not such, to copy its bytes instead."""
        _, rbd = _modules()
        parts = image_url[len("rbd://"):].split("/") if image_url.startswith("rbd://") else []
        if image_format != "raw" or len(parts) != 4:
            return False
        fsid, image_pool, image_name, snapshot = parts
        with _Session(self) as session:
            if session.cluster.get_fsid() != fsid:
                return False
            with session.cluster.open_ioctx(image_pool) as image_ioctx:
                with rbd.Image(image_ioctx, image_name, snapshot=snapshot, read_only=True) as image:
                    self._fits(image.size(), size_gb)
                with self._making(session, volume_id) as partial:
                    rbd.RBD().clone(image_ioctx, image_name, snapshot, session.ioctx, partial,
                                    features=rbd.RBD_FEATURE_LAYERING)
                    self._grow(session, partial, size_gb)
        return True

    def create_from_image(self, volume_id, size_gb, image_path, image_format):
        virtual_size = json.loads(qemu_img("info", "--output=json", "-f", image_format,
                                                 str(image_path)))["virtual-size"]
        self._fits(virtual_size, size_gb)
        with _Session(self) as session, self._making(session, volume_id) as partial:
            # qemu-img makes the RBD image itself, of the image's virtual size.
            qemu_img("convert", "-q", "-f", image_format, "-O", "raw", str(image_path), self._qemu_path(partial))
            self._grow(session, partial, size_gb)

    def create_from_volume(self, volume_id, size_gb, source_volume_id):
        _, rbd = _modules()
        with _Session(self) as session:
            with self._open(session, self.volume_name(source_volume_id)) as source:
                self._fits(source.size(), size_gb)
                with self._making(session, volume_id) as partial:
                    source.copy(session.ioctx, partial, features=rbd.RBD_FEATURE_LAYERING)
                    self._grow(session, partial, size_gb)

    def create_from_snapshot(self, volume_id, size_gb, snapshot_id):
        _, rbd = _modules()
        with _Session(self) as session:
            parent = self._snapshot_parent(session, snapshot_id)
            snapshot = self.snapshot_name(snapshot_id)
            with self._open(session, parent, snapshot=snapshot) as source:
                self._fits(source.size(), size_gb)
            with self._making(session, volume_id) as partial:
                rbd.RBD().clone(session.ioctx, parent, snapshot, session.ioctx, partial,
                                features=rbd.RBD_FEATURE_LAYERING)
                self._grow(session, partial, size_gb)

    def extend(self, volume_id, size_gb, in_use=False):
        with _Session(self) as session, self._open(session, self.volume_name(volume_id)) as image:
            image.resize(size_gb * GiB)

    def qemu_source(self, volume_id):
        return self._qemu_path(self.volume_name(volume_id)), "raw"

    def snapshot_source(self, snapshot_id):
        with _Session(self) as session:
            parent = self._snapshot_parent(session, snapshot_id)
        return self._qemu_path(f"{parent}@{self.snapshot_name(snapshot_id)}"), "raw"

    def delete(self, volume_id):
        with _Session(self) as session:
            self._remove(session, self.volume_name(volume_id))

    def create_snapshot(self, snapshot_id, volume_id):
        name, snapshot = self.volume_name(volume_id), self.snapshot_name(snapshot_id)
        with _Session(self) as session:
            with self._open(session, name) as image:
                # Recorded first: a snapshot made but not recorded could not be found.
                self._index_set(session, snapshot_id, name)
                try:
                    image.create_snap(snapshot)
                    image.protect_snap(snapshot)
                except BaseException:
                    self._drop_snapshot(session, image, snapshot)
                    self._index_remove(session, snapshot_id)
                    raise

    def delete_snapshot(self, snapshot_id):
        _, rbd = _modules()
        with _Session(self) as session:
            parent = self._snapshot_parent(session, snapshot_id, missing_ok=True)
            if parent is not None:
                try:
                    with rbd.Image(session.ioctx, parent) as image:
                        self._drop_snapshot(session, image, self.snapshot_name(snapshot_id))
                except rbd.ImageNotFound:
                    pass
            self._index_remove(session, snapshot_id)

    def connection_info(self, volume_id):
        with _Session(self) as session:
            hosts, ports = self._monitors(session.cluster)
            auth_enabled = session.cluster.conf_get("auth_client_required") not in ("none", "")
        return {"driver_volume_type": "rbd",
                "data": {"name": f"{self.pool}/{self.volume_name(volume_id)}", "hosts": hosts, "ports": ports,
                         "cluster_name": "ceph", "auth_enabled": auth_enabled,
                         "auth_username": (self.user or "admin") if auth_enabled else None,
                         "secret_type": "ceph", "secret_uuid": self.secret_uuid or None,
                         "volume_id": str(volume_id), "discard": True, "keyring": None,
                         "access_mode": "rw", "encrypted": False}}

    def volume_ids(self):
        _, rbd = _modules()
        with _Session(self) as session:
            return {name[len("volume-"):] for name in rbd.RBD().list(session.ioctx)
                    if name.startswith("volume-") and not name.endswith(PARTIAL)}

    def snapshot_ids(self):
        with _Session(self) as session:
            return set(self._index(session))

    def discard_partial(self, only_left=False):
        """Removes the images creates killed midway left behind. One the
        killed worker's librbd still watches (Ceph ends a dead client's
        watch after osd_client_watch_timeout, 30 s) is busy until then: it
        is left, named in partial_left, for a later call with `only_left`
        (which touches nothing else: this worker's own creates have
        partial images too by then)."""
        _, rbd = _modules()
        removed, busy = [], set()
        with _Session(self) as session:
            names = set(self.partial_left) if only_left else {
                name for name in rbd.RBD().list(session.ioctx)
                if name.startswith("volume-") and name.endswith(PARTIAL)}
            for name in sorted(names):
                try:
                    self._remove(session, name)
                except rbd.ImageBusy:
                    log.info("%s is still watched by a stopped client: removed later", name)
                    busy.add(name)
                    continue
                removed.append(name)
        self.partial_left = busy
        return removed

    # -- the rest

    @staticmethod
    def _fits(virtual_size, size_gb):
        if virtual_size > size_gb * GiB:
            raise BackendError(f"The source's virtual size of {virtual_size} bytes does not fit in a volume of "
                               f"{size_gb} GiB.")

    def _open(self, session, name, snapshot=None):
        _, rbd = _modules()
        try:
            return rbd.Image(session.ioctx, name, snapshot=snapshot)
        except rbd.ImageNotFound:
            raise BackendError(f"{name}{'@' + snapshot if snapshot else ''} is missing from the back end.") from None

    def _grow(self, session, name, size_gb):
        with self._open(session, name) as image:
            if image.size() < size_gb * GiB:
                image.resize(size_gb * GiB)

    def _qemu_path(self, name):
        path = f"rbd:{self.pool}/{name}:conf={self.ceph_conf}"
        return f"{path}:id={self.user}" if self.user else path

    class _making:
        """The image is made under a partial name and renamed into place only
        once complete; on any error the partial image is removed."""

        def __init__(self, session, volume_id):
            self.session = session
            self.name = RbdBackend.volume_name(volume_id)
            self.partial = self.name + PARTIAL

        def __enter__(self):
            self.session.backend._remove(self.session, self.partial)
            return self.partial

        def __exit__(self, kind, error, traceback):
            _, rbd = _modules()
            if kind is None:
                rbd.RBD().rename(self.session.ioctx, self.partial, self.name)
            else:
                self.session.backend._remove(self.session, self.partial)
            return False

    def _remove(self, session, name):
        """Removes the image and its snapshots; clones made of those are
        flattened first, so they keep their bytes."""
        _, rbd = _modules()
        try:
            with rbd.Image(session.ioctx, name) as image:
                for snapshot in list(image.list_snaps()):
                    self._drop_snapshot(session, image, snapshot["name"])
                    if snapshot["name"].startswith("snapshot-"):
                        self._index_remove(session, snapshot["name"][len("snapshot-"):])
            rbd.RBD().remove(session.ioctx, name)
        except rbd.ImageNotFound:
            pass

    def _drop_snapshot(self, session, image, snapshot):
        _, rbd = _modules()
        if not any(found["name"] == snapshot for found in image.list_snaps()):
            return
        image.set_snap(snapshot)
        children = image.list_children()
        image.set_snap(None)
        for child_pool, child_name in children:
            with session.cluster.open_ioctx(child_pool) as child_ioctx, rbd.Image(child_ioctx, child_name) as child:
                child.flatten()
        if image.is_protected_snap(snapshot):
            image.unprotect_snap(snapshot)
        image.remove_snap(snapshot)

    def _snapshot_parent(self, session, snapshot_id, missing_ok=False):
        parent = self._index(session, snapshot_id)
        if parent is None and not missing_ok:
            raise BackendError(f"{self.snapshot_name(snapshot_id)} is missing from the back end.")
        return parent

    def _index(self, session, snapshot_id=None):
        """{snapshot id: image name}, or the one image holding snapshot_id."""
        rados, _ = _modules()
        found, start = {}, ""
        try:
            while True:
                with rados.ReadOpCtx() as op:
                    if snapshot_id is not None:
                        values, _ = session.ioctx.get_omap_vals_by_keys(op, (str(snapshot_id),))
                    else:
                        values, _ = session.ioctx.get_omap_vals(op, start, "", 1000)
                    session.ioctx.operate_read_op(op, SNAPSHOT_INDEX)
                    page = {key: value.decode() for key, value in values}
                if snapshot_id is not None:
                    return page.get(str(snapshot_id))
                found.update(page)
                if len(page) < 1000:
                    return found
                start = max(page)
        except rados.ObjectNotFound:
            return None if snapshot_id is not None else {}

    def _index_set(self, session, snapshot_id, name):
        rados, _ = _modules()
        with rados.WriteOpCtx() as op:
            session.ioctx.set_omap(op, (str(snapshot_id),), (name.encode(),))
            session.ioctx.operate_write_op(op, SNAPSHOT_INDEX)

    def _index_remove(self, session, snapshot_id):
        rados, _ = _modules()
        try:
            with rados.WriteOpCtx() as op:
                session.ioctx.remove_omap_keys(op, (str(snapshot_id),))
                session.ioctx.operate_write_op(op, SNAPSHOT_INDEX)
        except rados.ObjectNotFound:
            pass

    @staticmethod
    def _monitors(cluster):
        """The monitors' addresses, as Cinder lists them for the node."""
        code, output, status = cluster.mon_command(json.dumps({"prefix": "mon dump", "format": "json"}), b"")
        if code != 0:
            raise BackendError(f"Cannot list the Ceph monitors: {status}.")
        hosts, ports = [], []
        for monitor in json.loads(output)["mons"]:
            match = re.match(r"^\[?([^\]]+?)\]?:(\d+)", monitor["addr"])
            if match:
                hosts.append(match.group(1))
                ports.append(match.group(2))
        return hosts, ports

