"""What block storage needs of an image to make a volume from it: visible
to the project, active, its sizes. Who sees which image is the images
app's rule (Image.objects.visible_to); this is the one place volumes ask it."""


def image_for_volume(image_id, project_id, is_admin=False):
    """{"id", "name", "status", "size", "virtual_size", "min_disk", ...} of
    the image the project may see, or None."""
    from images.models import Image

    images = Image.objects.visible_to(None if is_admin else project_id).filter(pk=image_id).exclude(status="deleted")
    image = images.first()
    if image is None:
        return None
    return {"id": str(image.id), "name": image.name, "status": image.status, "size": image.size,
            "virtual_size": image.virtual_size, "min_disk": image.min_disk, "min_ram": image.min_ram,
            "disk_format": image.disk_format, "container_format": image.container_format,
            "checksum": image.checksum}


def store_locations(image_id):
    """(disk_format, [location url, ...]) of the image's data in the image
    stores, for a back end that can clone it in place."""
    from images.models import Image

    image = Image.objects.filter(pk=image_id).first()
    if image is None:
        return None, []
    return image.disk_format, list(image.locations.values_list("url", flat=True))
