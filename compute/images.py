"""What compute needs to know of an image to boot it: visible to the
project, active, and its min_ram/min_disk. Who sees which image is the
images app's rule (Image.objects.visible_to); this is where the boot
path asks it (Nova's /images proxy asks images.service)."""
from dataclasses import dataclass


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
    from images.models import Image

    images = Image.objects.visible_to(None if is_admin else project_id).filter(pk=image_id).exclude(status="deleted")
    image = images.only("id", "status", "min_ram", "min_disk", "size", "virtual_size", "properties").first()
    if image is None:
        return None
    return BootImage(id=image.id, status=image.status, min_ram=image.min_ram, min_disk=image.min_disk,
                     size=image.size, virtual_size=image.virtual_size, properties=image.properties)
