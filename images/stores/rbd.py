"""The Ceph RBD store: one RBD image per image in a pool, with a protected
snapshot `snap` that instance disks can be cloned from. Needs Debian's
python3-rados/python3-rbd (see ../shared/notes/storage.md) and a cluster."""
import io

from cloud.files import SeekableReader
from images.stores import StoreError, StoreFull

SNAPSHOT = "snap"
# RBD images are grown in steps while data streams in, then cut to size.
GROWTH_STEP = 256 * 2**20


def _modules():
    try:
        import rados
        import rbd
    except ImportError as error:
        raise StoreError("The Ceph RBD store needs the rados and rbd Python modules (python3-rbd).") from error
    return rados, rbd


class RbdReader(SeekableReader):
    """A read-only, seekable file over an RBD snapshot."""

    def __init__(self, cluster, ioctx, image):
        super().__init__(image.size())
        self.cluster, self.ioctx, self.image = cluster, ioctx, image

    def readinto(self, buffer):
        count = min(len(buffer), self.length - self.position)
        if count <= 0:
            return 0
        data = self.image.read(self.position, count)
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)

    def close(self):
        if not self.closed:
            self.image.close()
            self.ioctx.close()
            self.cluster.shutdown()
        super().close()


class RbdStore:
    id = "ceph"
    description = "Ceph RBD"

    def __init__(self, ceph_conf, pool):
        self.ceph_conf, self.pool = ceph_conf, pool

    def _connect(self):
        rados, _ = _modules()
        cluster = rados.Rados(conffile=self.ceph_conf)
        try:
            cluster.connect(timeout=10)
            return cluster, cluster.open_ioctx(self.pool)
        except rados.Error as error:
            cluster.shutdown()
            raise StoreError(f"Cannot reach the Ceph pool {self.pool}: {error}.") from error

    def _name(self, url):
        # rbd://<fsid>/<pool>/<image>/<snapshot>
        parts = url[len("rbd://"):].split("/")
        if not url.startswith("rbd://") or len(parts) != 4 or parts[1] != self.pool:
            raise StoreError(f"{url} is not in the Ceph pool {self.pool}.")
        return parts[2]

    def add(self, image_id, chunks):
        rados, rbd = _modules()
        cluster, ioctx = self._connect()
        try:
            try:
                rbd.RBD().create(ioctx, image_id, 0, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
            except rbd.ImageExists:
                # Left by an upload of this image that died (only one upload
                # of an image runs at a time): its data is nobody's.
                self._remove(rbd, ioctx, image_id)
                rbd.RBD().create(ioctx, image_id, 0, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
            try:
                with rbd.Image(ioctx, image_id) as image:
                    allocated = written = 0
                    for chunk in chunks:
                        if written + len(chunk) > allocated:
                            allocated = written + len(chunk) + GROWTH_STEP
                            image.resize(allocated)
                        image.write(bytes(chunk), written)
                        written += len(chunk)
                    image.resize(written)
                    image.create_snap(SNAPSHOT)
                    image.protect_snap(SNAPSHOT)
                fsid = cluster.get_fsid()
            except BaseException as error:
                self._remove(rbd, ioctx, image_id)
                if isinstance(error, rados.NoSpace):
                    raise StoreFull("The Ceph pool is full.") from error
                if isinstance(error, (rados.Error, rbd.Error)):
                    raise StoreError(f"Could not write the image data to Ceph: {error}.") from error
                raise
        finally:
            ioctx.close()
            cluster.shutdown()
        return f"rbd://{fsid}/{self.pool}/{image_id}/{SNAPSHOT}"

    @staticmethod
    def _remove(rbd, ioctx, name):
        try:
            with rbd.Image(ioctx, name) as image:
                for snapshot in image.list_snaps():
                    if image.is_protected_snap(snapshot["name"]):
                        image.unprotect_snap(snapshot["name"])
                    image.remove_snap(snapshot["name"])
            rbd.RBD().remove(ioctx, name)
        except rbd.ImageNotFound:
            pass

    def open(self, url):
        _, rbd = _modules()
        name = self._name(url)
        cluster, ioctx = self._connect()
        try:
            image = rbd.Image(ioctx, name, snapshot=SNAPSHOT, read_only=True)
        except rbd.Error as error:
            ioctx.close()
            cluster.shutdown()
            raise StoreError(f"The image data is missing from Ceph: {error}.") from error
        return io.BufferedReader(RbdReader(cluster, ioctx, image), buffer_size=4 * 2**20)

    def qemu_path(self, url):
        return f"rbd:{self.pool}/{self._name(url)}@{SNAPSHOT}:conf={self.ceph_conf}"

    def in_use(self, url):
        """Whether RBD images are cloned from the image's snapshot (volumes
        made from it copy-on-write): its data cannot go while they live."""
        _, rbd = _modules()
        cluster, ioctx = self._connect()
        try:
            with rbd.Image(ioctx, self._name(url), snapshot=SNAPSHOT, read_only=True) as image:
                return bool(list(image.list_children()))
        except rbd.ImageNotFound:
            return False
        except rbd.Error as error:
            raise StoreError(f"Cannot read the image data in Ceph: {error}.") from error
        finally:
            ioctx.close()
            cluster.shutdown()

    def delete(self, url):
        _, rbd = _modules()
        cluster, ioctx = self._connect()
        try:
            self._remove(rbd, ioctx, self._name(url))
        finally:
            ioctx.close()
            cluster.shutdown()

    def discard_partial(self, image_id, older_than):
        """An upload writes straight into the RBD image named after the
        image; the image it left is removed (its location was never recorded,
        so nothing refers to it)."""
        _, rbd = _modules()
        cluster, ioctx = self._connect()
        try:
            self._remove(rbd, ioctx, image_id)
        finally:
            ioctx.close()
            cluster.shutdown()
