"""Volume back ends: where a volume's data lives, behind one small
interface that the volume worker's tasks alone call.

    backend.capacity_gb() -> int               what it can hold, for the heartbeat
    backend.create(volume_id, size_gb)         an empty volume
    backend.create_from_image(volume_id, size_gb, image_path, image_format)
                                               the image's bytes, then up to size
    backend.create_from_volume(volume_id, size_gb, source_volume_id)
    backend.create_from_snapshot(volume_id, size_gb, snapshot_id)
    backend.extend(volume_id, size_gb, in_use)  in_use: attached, a QEMU holds it open
    backend.delete(volume_id)                  gone already: fine
    backend.qemu_source(volume_id) -> (str, format)  what qemu-img reads the volume as
    backend.snapshot_source(snapshot_id) -> (str, format)  the same for a snapshot
    backend.create_snapshot(snapshot_id, volume_id)
    backend.delete_snapshot(snapshot_id)       gone already: fine
    backend.connection_info(volume_id) -> dict what a node needs for its disk XML
    backend.volume_ids() / snapshot_ids()      what it holds, to find strays

Every create either finishes or leaves nothing behind (a worker killed
mid-create leaves only a partial file that `discard_partial` removes on the
next start; it returns what it removed and names in `partial_left` what
could not go yet, which the worker's `discard_partial(only_left=True)`
tries again later).

A back end that can make a volume from an image without copying its bytes
(RBD, from the RBD image store) also has
    backend.clone_image(volume_id, size_gb, image_url, image_format) -> bool
                                               False: not possible, copy instead"""
import shutil
import subprocess

DRIVERS = ("file", "rbd")
# qemu-img dies with the worker that runs it: a worker killed mid-create
# leaves no orphan writing on into (and, on RBD, holding open) the partial
# volume its next start removes.
_DIE_WITH_WORKER = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []


class BackendError(Exception):
    """The back end could not do it; the message says why, for the user."""


def qemu_img(*args):
    """Runs qemu-img; its output, or a BackendError with its message."""
    result = subprocess.run([*_DIE_WITH_WORKER, "qemu-img", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise BackendError(f"qemu-img {args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def get(driver, **options):
    if driver == "file":
        from volumes.backends.file import FileBackend

        return FileBackend(**options)
    if driver == "rbd":
        from volumes.backends.rbd import RbdBackend

        return RbdBackend(**options)
    raise BackendError(f"Unknown volume back end driver {driver!r} (known: {', '.join(DRIVERS)}).")
