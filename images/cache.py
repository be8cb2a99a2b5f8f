"""The compute node's image cache: one verified local copy of each image an
instance on this node boots from, and instance disks as qcow2 overlays on it.

    cache = ImageCache(directory=settings.IMAGE_CACHE_DIR)

    cache.fetch(image_id) -> pathlib.Path
        The cached copy, downloaded once through the Image API (as the
        `stratus` service user, endpoint from the catalog) and verified
        against the image's os_hash_value (sha512) and md5 checksum.
        Concurrent fetches of one image on this node download it once (a
        file lock per image). On a hash mismatch the partial copy is
        discarded and ImageCacheError says so; an image that is not active
        raises ImageCacheError too, and so does data that is not its
        disk_format or refers to files outside itself (images.inspection,
        checked before any qemu-img call). Formats other than qcow2 and raw
        are converted to qcow2 once, on download.

    cache.create_overlay(image_id, dest_path, size_bytes=None) -> pathlib.Path
        A new qcow2 file at dest_path backed by the cached copy (fetched
        first if needed), of the image's virtual size or size_bytes
        (ImageCacheError when smaller than the image). The overlay is
        remembered: while it exists, its image counts as in use. Overlays
        of an image already cached are made concurrently.

    cache.evict(max_bytes, in_use_image_ids=()) -> [image ids evicted]
        Removes cached images, least recently used first, until the cache
        holds at most max_bytes; never one in in_use_image_ids, one with a
        live overlay, or one being downloaded.

    cache.adopt(image_id, path, image) -> bool
        A local file holding exactly an active image's data (a snapshot
        this node just uploaded) becomes its cached copy, with no download.

Layout of the directory: `<image id>` (the data, read-only), `<image
id>.json` (format, sizes, hash), `.<image id>.overlays/` (a symlink to each
disk made on it), `.<image id>.lock`, and `.<image id>.*.part` while
downloading."""
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import requests
from django.conf import settings

from images import inspection

CHUNK_SIZE = 1 << 20
# Kept as they are; anything else qemu-img reads becomes qcow2 on download.
BACKING_FORMATS = {"qcow2": "qcow2", "raw": "raw", "iso": "raw"}
CONVERTIBLE_FORMATS = {"vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx"}
SERVICE_USER = "stratus"


class ImageCacheError(Exception):
    """An image could not be made available on this node; the message says
    why, for the instance's fault."""


class ImageUnacceptable(ImageCacheError):
    """The image itself cannot back a disk (not active, not a disk format,
    data refused by the format check): no other node would do better, so a
    boot from it ends instead of being rescheduled."""


class ImageCache:
    def __init__(self, directory=None, auth_url=None, password=None, timeout=60):
        self.directory = Path(directory or settings.IMAGE_CACHE_DIR)
        self.auth_url = (auth_url or f"{settings.PUBLIC_URL}/identity").rstrip("/")
        self.password = password or settings.SERVICE_PASSWORD
        self.timeout = timeout
        self.session = requests.Session()
        self._token = None
        self._endpoint = None

    # -- the interface --------------------------------------------------

    def fetch(self, image_id):
        path = self.path(image_id)
        if not path.exists():
            with self._locked(image_id):
                self._ensure(image_id)
        os.utime(path)  # last use, for eviction
        return path

    def create_overlay(self, image_id, dest_path, size_bytes=None):
        dest_path = Path(dest_path)
        while True:
            # Overlays of a cached image are made side by side under a shared
            # lock; only a download (or an eviction) needs the image alone.
            with self._locked(image_id, shared=True):
                if self.path(image_id).exists() and self._meta_path(image_id).exists():
                    self._make_overlay(image_id, dest_path, size_bytes)
                    break
            with self._locked(image_id):
                self._ensure(image_id)
        os.utime(self.path(image_id))
        return dest_path

    def adopt(self, image_id, path, image):
        """Moves the file at `path`, which holds exactly the stored data of
        active image `image` (its Image API fields: disk_format, size,
        virtual_size, os_hash_algo, os_hash_value), into the cache as that
        image's copy: a snapshot made on this node needs no download to
        boot here. Leaves an existing copy as it is (and `path` in place)."""
        if image.get("disk_format") not in BACKING_FORMATS:
            return False
        with self._locked(image_id):
            if self.path(image_id).exists() and self._meta_path(image_id).exists():
                return False
            self._write_meta(image_id, {
                "format": BACKING_FORMATS[image["disk_format"]], "size": image.get("size"),
                "virtual_size": image.get("virtual_size"), "os_hash_algo": image.get("os_hash_algo"),
                "os_hash_value": image.get("os_hash_value"), "fetched_at": time.time(),
            })
            Path(path).chmod(0o444)
            os.rename(path, self.path(image_id))
        return True

    def holds(self, image_id):
        """Whether the image is cached here (a disk on it needs no download)."""
        return self.path(image_id).exists() and self._meta_path(image_id).exists()

    def cached_format(self, image_id):
        """The format of the cached copy (qcow2 or raw), once fetched."""
        return self._read_meta(image_id)["format"]

    def _make_overlay(self, image_id, dest_path, size_bytes):
        meta = self._read_meta(image_id)
        if size_bytes is not None and meta.get("virtual_size") and size_bytes < meta["virtual_size"]:
            raise ImageCacheError(
                f"The disk of {size_bytes} bytes is smaller than image {image_id} ({meta['virtual_size']} bytes).")
        partial = dest_path.with_name(f".{dest_path.name}.{uuid.uuid4().hex}.part")
        try:
            shutil.copyfile(self._overlay_template(image_id, meta, size_bytes), partial)
            os.rename(partial, dest_path)
        finally:
            partial.unlink(missing_ok=True)
        # One symlink per overlay: registering is atomic and needs no
        # read-modify-write of shared metadata.
        target = dest_path.resolve()
        registry = self._overlay_dir(image_id)
        registry.mkdir(exist_ok=True)
        link = registry / hashlib.sha1(str(target).encode()).hexdigest()
        link.unlink(missing_ok=True)
        link.symlink_to(target)

    def _overlay_template(self, image_id, meta, size_bytes):
        """An empty qcow2 overlay on the cached image, made by qemu-img once
        per disk size: each disk of that size is a copy of it (an overlay
        names its backing file, never its own path), far cheaper than one
        qemu-img run per disk."""
        template = self._template_path(image_id, size_bytes)
        if template.exists():
            return template
        partial = template.with_name(f"{template.name}.{uuid.uuid4().hex}.part")
        command = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", meta["format"],
                   "-b", str(self.path(image_id)), str(partial)]
        if size_bytes is not None:
            command.append(str(size_bytes))
        try:
            self._run(command, f"Could not create a disk on image {image_id}")
            os.rename(partial, template)
        finally:
            partial.unlink(missing_ok=True)
        return template

    def evict(self, max_bytes, in_use_image_ids=()):
        in_use = set(in_use_image_ids)
        entries = []
        for path in self.directory.glob("*.json"):
            image_id = path.stem
            data = self.path(image_id)
            if data.exists():
                stat = data.stat()
                entries.append((stat.st_mtime, stat.st_size, image_id))
        total = sum(size for _, size, _ in entries)
        evicted = []
        for _, size, image_id in sorted(entries):
            if total <= max_bytes:
                break
            if image_id in in_use:
                continue
            with self._locked(image_id, wait=False) as locked:
                if not locked or self._has_live_overlay(image_id):
                    continue
                self.path(image_id).unlink(missing_ok=True)
                self._meta_path(image_id).unlink(missing_ok=True)
                shutil.rmtree(self._overlay_dir(image_id), ignore_errors=True)
                for template in self.directory.glob(f".{image_id}.*.overlay"):
                    template.unlink(missing_ok=True)
            total -= size
            evicted.append(image_id)
        return evicted

    # -- the rest -------------------------------------------------------

    def path(self, image_id):
        if not image_id or "/" in image_id or image_id.startswith("."):
            raise ImageCacheError(f"{image_id!r} is not an image id.")
        return self.directory / image_id

    def _meta_path(self, image_id):
        return self.directory / f"{image_id}.json"

    def _read_meta(self, image_id):
        return json.loads(self._meta_path(image_id).read_text())

    def _write_meta(self, image_id, meta):
        temporary = self.directory / f".{image_id}.{uuid.uuid4().hex}.json"
        temporary.write_text(json.dumps(meta))
        os.rename(temporary, self._meta_path(image_id))

    def _template_path(self, image_id, size_bytes):
        return self.directory / f".{self.path(image_id).name}.{size_bytes or 'image-size'}.overlay"

    def _overlay_dir(self, image_id):
        return self.directory / f".{self.path(image_id).name}.overlays"

    def _has_live_overlay(self, image_id):
        """Whether a disk made on this image still exists (dead entries are
        dropped on the way)."""
        live = False
        try:
            links = list(self._overlay_dir(image_id).iterdir())
        except FileNotFoundError:
            return False
        for link in links:
            if link.exists():  # follows the symlink to the overlay
                live = True
            else:
                link.unlink(missing_ok=True)
        return live

    @contextmanager
    def _locked(self, image_id, wait=True, shared=False):
        """A lock on one image's cache entry, between processes and threads
        alike (flock belongs to the open file): exclusive to download or
        evict, shared to build overlays on a cached copy."""
        self.directory.mkdir(parents=True, exist_ok=True)
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        with open(self.directory / f".{self.path(image_id).name}.lock", "w") as handle:
            try:
                fcntl.flock(handle, mode | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _ensure(self, image_id):
        """Downloads the image unless it is here (the caller holds its lock)."""
        if self.path(image_id).exists() and self._meta_path(image_id).exists():
            return
        image = self._request("GET", f"/v2/images/{image_id}").json()
        if image.get("status") != "active":
            raise ImageUnacceptable(f"Image {image_id} is {image.get('status')}, not active: it cannot be used.")
        partial = self.directory / f".{image_id}.{uuid.uuid4().hex}.part"
        try:
            format_check = self._download(image, partial)
            disk_format = image.get("disk_format")
            if disk_format not in CONVERTIBLE_FORMATS and disk_format not in BACKING_FORMATS:
                raise ImageUnacceptable(f"Image {image_id} has disk format {disk_format}, which cannot back a disk.")
            # Whatever the API let in once (an older upload, a store written
            # behind its back), nothing reaches qemu-img here unchecked.
            try:
                format_check.verdict(disk_format, partial.stat().st_size)
            except inspection.UnsafeImage as error:
                raise ImageUnacceptable(f"Image {image_id} is refused: {error}")
            if disk_format in CONVERTIBLE_FORMATS:
                converted = partial.with_suffix(".qcow2.part")
                self._run(["qemu-img", "convert", "-q", "-f", CONVERTIBLE_FORMATS[disk_format], "-O", "qcow2",
                           str(partial), str(converted)], f"Could not convert image {image_id} to qcow2")
                os.rename(converted, partial)
                backing_format = "qcow2"
            else:
                backing_format = BACKING_FORMATS[disk_format]
            self._write_meta(image_id, {
                "format": backing_format, "size": image.get("size"), "virtual_size": image.get("virtual_size"),
                "os_hash_algo": image.get("os_hash_algo"), "os_hash_value": image.get("os_hash_value"),
                "fetched_at": time.time(),
            })
            partial.chmod(0o444)
            os.rename(partial, self.path(image_id))
        finally:
            partial.unlink(missing_ok=True)
            partial.with_suffix(".qcow2.part").unlink(missing_ok=True)

    def _download(self, image, partial):
        """Downloads the image's data into `partial`, checking its hashes;
        returns the format inspection of the data read on the way."""
        image_id = image["id"]
        format_check = inspection.FormatCheck()
        md5 = hashlib.md5(usedforsecurity=False)
        algo = image.get("os_hash_algo")
        os_hash = hashlib.new(algo) if algo else None
        with self._request("GET", f"/v2/images/{image_id}/file", stream=True) as response, \
                open(partial, "xb") as handle:
            for chunk in response.iter_content(CHUNK_SIZE):
                md5.update(chunk)
                format_check.feed(chunk)
                if os_hash:
                    os_hash.update(chunk)
                handle.write(chunk)
        checks = [(algo, image.get("os_hash_value"), os_hash), ("md5", image.get("checksum"), md5)]
        for name, expected, hasher in checks:
            if expected and hasher and hasher.hexdigest() != expected:
                raise ImageCacheError(
                    f"Image {image_id}: the downloaded data does not match the image's {name} hash "
                    f"(expected {expected}, got {hasher.hexdigest()}); the partial copy was discarded.")
        return format_check

    def _run(self, command, what):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise ImageCacheError(f"{what}: {result.stderr.strip()}")

    # -- the Image API, as the service user ------------------------------

    def _authenticate(self):
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": SERVICE_USER, "domain": {"id": "default"}, "password": self.password}}},
            "scope": {"system": {"all": True}},  # it reads every project's images
        }}
        try:
            response = self.session.post(f"{self.auth_url}/v3/auth/tokens", json=body, timeout=self.timeout)
        except requests.RequestException as error:
            raise ImageCacheError(f"Cannot reach the identity service at {self.auth_url}: {error}.")
        if response.status_code != 201:
            raise ImageCacheError(f"The identity service refused the {SERVICE_USER} service user "
                                  f"({response.status_code}).")
        token = response.json()["token"]
        endpoints = [endpoint for service in token.get("catalog", []) if service["type"] == "image"
                     for endpoint in service["endpoints"] if endpoint["region_id"] == settings.REGION]
        by_interface = {endpoint["interface"]: endpoint["url"] for endpoint in endpoints}
        url = by_interface.get("internal") or by_interface.get("public")
        if not url:
            raise ImageCacheError(f"The catalog has no image endpoint in region {settings.REGION}.")
        self._token, self._endpoint = response.headers["X-Subject-Token"], url.rstrip("/")

    def _request(self, method, path, **kwargs):
        for attempt in (1, 2):
            if self._token is None:
                self._authenticate()
            try:
                response = self.session.request(method, self._endpoint + path, timeout=self.timeout,
                                                headers={"X-Auth-Token": self._token}, **kwargs)
            except requests.RequestException as error:
                raise ImageCacheError(f"Cannot reach the image service at {self._endpoint}: {error}.")
            if response.status_code == 401 and attempt == 1:
                self._token = None  # expired: once more with a new token
                continue
            if response.status_code == 404:
                raise ImageUnacceptable(f"Image {path.split('/')[3]} does not exist.")
            if response.status_code >= 400:
                raise ImageCacheError(f"The image service answered {response.status_code} to {method} {path}: "
                                      f"{response.text[:200]}")
            return response
