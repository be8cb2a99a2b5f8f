"""Images' part of `manage.py bootstrap`: the guest image built by
`manage.py build_guest_image` (at settings.GUEST_IMAGE_PATH) becomes the
public image `stratus-tiny` of the admin project. Idempotent: an active
image with the same data is kept; a rebuilt file replaces it."""
import hashlib

from django.conf import settings

from identity.models import Project
from images import data, stores
from images.models import ACTIVE, Image

GUEST_IMAGE_NAME = "stratus-tiny"


def file_chunks(path):
    with open(path, "rb") as handle:
        while chunk := handle.read(data.CHUNK_SIZE):
            yield chunk


def file_md5(path):
    md5 = hashlib.md5(usedforsecurity=False)
    for chunk in file_chunks(path):
        md5.update(chunk)
    return md5.hexdigest()


def run(options, out):
    path = settings.GUEST_IMAGE_PATH
    if not path.exists():
        out.write(f"images: no guest image at {path} (make guest-image builds it); {GUEST_IMAGE_NAME} not registered")
        return
    owner = Project.objects.get(name="admin", domain_id="default").id
    existing = list(Image.objects.filter(name=GUEST_IMAGE_NAME, owner=owner))
    checksum = file_md5(path)
    if any(image.status == ACTIVE and image.checksum == checksum for image in existing):
        out.write(f"images: {GUEST_IMAGE_NAME} is registered")
        return
    image = Image.objects.create(
        name=GUEST_IMAGE_NAME, owner=owner, visibility="public", disk_format="qcow2", container_format="bare")
    data.upload(image, file_chunks(path), stores.default(), path.stat().st_size)
    for old in existing:
        locations = list(old.locations.values_list("store", "url"))
        old.delete()
        data.delete_data(locations)
    out.write(f"images: registered {GUEST_IMAGE_NAME} ({image.id}, {image.size} bytes) from {path}")
