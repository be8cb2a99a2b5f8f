"""Object data in Ceph RADOS (Debian's python3-rados), striped over RADOS
objects of STRIPE bytes in one pool:

    <key>.<n>            the n-th stripe (n from 0, zero-padded)
    <key>                the head, written last: the size; its presence
                         is what makes the data visible
    stratus.writing      omap: key -> unix time of each write in progress,
                         so the reaper finds the stripes of a killed write
"""
import errno
import json
import os
import time
import uuid
from collections import deque

from cloud.files import SeekableReader
from objects.stores import StoreError, StoreFull

STRIPE = 4 * 2**20
# Stripes of one write in flight at once (each a copy librados holds).
WRITES_IN_FLIGHT = 2
WRITING = "stratus.writing"


def _rados():
    try:
        import rados
    except ImportError as error:
        raise StoreError("The RADOS object store needs the rados Python module (python3-rados).") from error
    return rados


def _stripe(key, index):
    return f"{key}.{index:08d}"


class RadosReader(SeekableReader):
    """A read-only, seekable file over a key's stripes. A stripe is read
    whole and held while it is read from; reading one starts reading the
    next (aio_read), so the OSD reads ahead while the caller sends."""

    def __init__(self, ioctx, key, length):
        super().__init__(length)
        self.ioctx, self.key = ioctx, key
        self.held = (None, b"")  # (stripe index, its bytes)
        self.ahead = None  # (stripe index, completion, [its bytes once read])

    def _start(self, index):
        if index * STRIPE >= self.length:
            return None
        result = []
        completion = self.ioctx.aio_read(_stripe(self.key, index), STRIPE, 0,
                                         lambda _, data: result.append(data))
        return index, completion, result

    def _stripe_bytes(self, index):
        if self.ahead is not None and self.ahead[0] == index:
            _, completion, result = self.ahead
            completion.wait_for_complete_and_cb()
            data = result[0] if result else None
        else:
            if self.ahead is not None:  # a seek elsewhere: not wanted
                self.ahead[1].wait_for_complete_and_cb()
            data = self._read_now(index)
        self.ahead = self._start(index + 1)
        if not data:
            raise StoreError("The object's data is missing from the store.")
        return data

    def _read_now(self, index):
        rados = _rados()
        try:
            return self.ioctx.read(_stripe(self.key, index), STRIPE, 0)
        except rados.ObjectNotFound:
            return None

    def readinto(self, buffer):
        """Fills the buffer (across stripes) up to the end of the data."""
        wanted = min(len(buffer), self.length - self.position)
        filled = 0
        while filled < wanted:
            index, offset = divmod(self.position, STRIPE)
            if self.held[0] != index:
                self.held = (index, self._stripe_bytes(index))
            data = self.held[1]
            count = min(wanted - filled, len(data) - offset)
            if count <= 0:
                raise StoreError("The object's data is missing from the store.")
            buffer[filled:filled + count] = memoryview(data)[offset:offset + count]
            filled += count
            self.position += count
        return filled

    def close(self):
        if self.ahead is not None:
            self.ahead[1].wait_for_complete_and_cb()
            self.ahead = None
        self.held = (None, b"")
        super().close()


class RadosStore:
    def __init__(self, ceph_conf, pool="objects"):
        rados = _rados()
        self.pool = pool
        self.cluster = rados.Rados(conffile=ceph_conf)
        try:
            self.cluster.connect(timeout=10)
            self.ioctx = self.cluster.open_ioctx(pool)
        except rados.Error as error:
            self.cluster.shutdown()
            raise StoreError(f"Cannot reach the Ceph pool {pool}: {error}.") from error

    def close(self):
        self.ioctx.close()
        self.cluster.shutdown()

    @staticmethod
    def _check(key):
        if len(key) != 32 or not all(c in "0123456789abcdef" for c in key):
            raise StoreError(f"{key!r} is not a key of this store.")
        return key

    def write(self, chunks):
        rados = _rados()
        key = uuid.uuid4().hex
        self._set_writing(key, time.time())
        size, index, held, parts = 0, 0, 0, []
        # Stripes are written asynchronously, WRITES_IN_FLIGHT at once while
        # the next is received: the OSD's writes and the request's reading
        # overlap, and memory stays bounded.
        in_flight = deque()

        def send(stripe):
            nonlocal index
            in_flight.append(self.ioctx.aio_write_full(_stripe(key, index), stripe))
            index += 1
            while len(in_flight) > WRITES_IN_FLIGHT:
                self._wait(in_flight.popleft())

        try:
            for chunk in chunks:
                parts.append(chunk)
                held += len(chunk)
                size += len(chunk)
                while held >= STRIPE:
                    joined = b"".join(parts)
                    send(joined if held == STRIPE else joined[:STRIPE])
                    parts = [joined[STRIPE:]] if held > STRIPE else []
                    held -= STRIPE
            if held or index == 0:
                send(b"".join(parts))
            while in_flight:
                self._wait(in_flight.popleft())
            self.ioctx.write_full(key, json.dumps({"size": size, "stripe": STRIPE}).encode())
        except BaseException as error:
            for completion in in_flight:
                completion.wait_for_complete()
            self._remove_stripes(key)
            self._clear_writing(key)
            if isinstance(error, rados.NoSpace):
                raise StoreFull("The object store is full.") from error
            if isinstance(error, rados.Error):
                raise StoreError(f"Could not write the object data: {error}.") from error
            raise
        self._clear_writing(key)
        return key

    @staticmethod
    def _wait(completion):
        completion.wait_for_complete()
        result = completion.get_return_value()
        if result == -errno.ENOSPC:
            raise StoreFull("The object store is full.")
        if result < 0:
            raise StoreError(f"Could not write the object data: {os.strerror(-result)}.")

    def _head(self, key):
        rados = _rados()
        try:
            return json.loads(self.ioctx.read(self._check(key), 4096))
        except rados.ObjectNotFound as error:
            raise StoreError("The object's data is missing from the store.") from error

    def open(self, key):
        head = self._head(key)
        return RadosReader(self.ioctx, key, head["size"])

    def delete(self, key):
        rados = _rados()
        try:
            self.ioctx.remove_object(self._check(key))
        except rados.ObjectNotFound:
            pass
        self._remove_stripes(key)

    def _remove_stripes(self, key):
        """Removes stripe 0, 1, ... up to the first one missing."""
        rados = _rados()
        index = 0
        while True:
            try:
                self.ioctx.remove_object(_stripe(key, index))
            except rados.ObjectNotFound:
                return
            index += 1

    def discard_temporary(self, older_than):
        """The stripes of writes that died (their process killed) before
        `older_than` (a unix time); newer ones may still be written."""
        removed = 0
        for key, started in self._writing().items():
            if started < older_than:
                self._remove_stripes(key)
                self._clear_writing(key)
                removed += 1
        return removed

    def _writing(self):
        rados = _rados()
        found, start = {}, ""
        try:
            while True:
                with rados.ReadOpCtx() as op:
                    values, _ = self.ioctx.get_omap_vals(op, start, "", 1000)
                    self.ioctx.operate_read_op(op, WRITING)
                    page = {key: float(value) for key, value in values}
                found.update(page)
                if len(page) < 1000:
                    return found
                start = max(page)
        except rados.ObjectNotFound:
            return {}

    def _set_writing(self, key, started):
        rados = _rados()
        with rados.WriteOpCtx() as op:
            self.ioctx.set_omap(op, (key,), (str(started).encode(),))
            self.ioctx.operate_write_op(op, WRITING)

    def _clear_writing(self, key):
        rados = _rados()
        with rados.WriteOpCtx() as op:
            self.ioctx.remove_omap_keys(op, (key,))
            self.ioctx.operate_write_op(op, WRITING)
