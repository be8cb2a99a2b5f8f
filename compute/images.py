"""What compute needs to know of an image to boot it: visible to the
project, active, and its min_ram/min_disk. A read-only look at the images
app's records, kept in this one function."""
from dataclasses import dataclass

from django.db.models import Q


@dataclass(frozen=True)
class BootImage:
    id: str
    status: str
    min_ram: int
    min_disk: int
    size: int | None
    virtual_size: int | None
    properties: dict


def image_for_boot(image_id, project_id, is_admin=False):
    """The image `project_id` may boot, or None if there is none it can see."""
    from images.models import Image, ImageMember

    images = Image.objects.filter(pk=image_id).exclude(status="deleted")
    if not is_admin:
        shared = ImageMember.objects.filter(member=project_id, status="accepted").values("image_id")
        images = images.filter(Q(visibility__in=("public", "community")) | Q(owner=project_id)
                               | Q(visibility="shared", pk__in=shared))
    image = images.only("id", "status", "min_ram", "min_disk", "size", "virtual_size", "properties").first()
    if image is None:
        return None
    return BootImage(id=image.id, status=image.status, min_ram=image.min_ram, min_disk=image.min_disk,
                     size=image.size, virtual_size=image.virtual_size, properties=image.properties)
