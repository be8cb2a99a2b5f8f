"""Image operations other apps call with Glance's rules: compute's proxy of
Nova's /images (microversions below 2.36) lists, shows, deletes images and
writes their custom properties through these, as the Image API does.
`project_id` None is an administrator (every image)."""
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cloud.errors import Conflict, Forbidden, NotFound
from images import data, importing
from images.api.serializers import WRITABLE, check_name, check_value
from images.models import Image


def listed(project_id):
    """Glance's default listing: the project's own images, public ones and
    those shared with it that it accepted."""
    if project_id is None:
        return Image.objects.all()
    return Image.objects.filter(Q(owner=project_id) | Q(visibility="public")
                                | Image.objects.shared_with_q(project_id, ("accepted",)))


def visible(image_id, project_id):
    """The image if the project may see it, else None."""
    return Image.objects.visible_to(project_id).filter(pk=image_id).first()


def owned_for_update(image_id, project_id):
    """The image, locked, when the project may change it (in a
    transaction): unseen is a 404, seen but another's a 403."""
    image = visible(image_id, project_id)
    if image is None:
        raise NotFound(f"Could not find image: {image_id}.")
    if project_id is not None and image.owner != project_id:
        raise Forbidden(f"You are not permitted to modify image {image.id}.")
    return Image.objects.select_for_update().get(pk=image.pk)


def delete(image):
    """Deletes a locked image row (owned_for_update), then its data once
    the transaction commits. Protected: 403; data in use: 409."""
    if image.protected:
        raise Forbidden(f"Image {image.id} is protected and cannot be deleted.")
    locations = list(image.locations.values_list("store", "url"))
    if data.data_in_use(locations):
        raise Conflict(f"Image {image.id} could not be deleted because it is in use: the image cannot be "
                       "deleted because it is in use through the backend store outside of the image service.")
    image_id = image.id  # gone from the object once deleted
    image.delete()
    # The data goes once the row is surely gone; an upload still
    # streaming notices the image vanished and removes its own data.
    transaction.on_commit(lambda: data.delete_data(locations))
    # Data staged for an import goes too (an import still running notices
    # the image vanished and removes what it stored).
    transaction.on_commit(lambda: importing.discard_staged(image_id))


def change_properties(image_id, project_id, change, field="metadata"):
    """Replaces an image's custom properties by change(current), each new
    or changed one checked as the Image API checks it; returns them."""
    with transaction.atomic():
        image = owned_for_update(image_id, project_id)
        properties = change(dict(image.properties))
        for name, value in properties.items():
            if image.properties.get(name) != value:
                if name in WRITABLE:
                    raise Forbidden(f"Attribute '{name}' is not a custom property.")
                check_name(name, f"{field}/{name}")
                properties[name] = check_value(name, value, f"{field}/{name}")
        Image.objects.filter(pk=image.pk).update(properties=properties, updated_at=timezone.now())
    return properties
