"""Images made from volumes (Cinder's os-volume_upload_image): the one
place block storage makes an image. The volumes API asks for the image
record (`new_image`), its volume worker hands over the volume's data as a
file (`store_file`), or gives up (`forget`)."""
from images import data, stores
from images.models import Image


def new_image(owner, name, disk_format, container_format, visibility="private", protected=False):
    """A queued image of project `owner` waiting for its data; its id."""
    image = Image.objects.create(name=name, owner=owner, visibility=visibility, protected=protected,
                                 disk_format=disk_format, container_format=container_format)
    return str(image.id)


def store_file(image_id, path):
    """The file's bytes as the image's data in the default store: the
    image is active after (or back in queued with nothing stored, raising)."""
    from images.bootstrap import file_chunks

    image = Image.objects.get(pk=image_id)
    data.upload(image, file_chunks(path), stores.default(), path.stat().st_size)
    return image.size


def forget(image_id):
    """The upload could not happen: the image goes, as Cinder deletes it."""
    image = Image.objects.filter(pk=image_id).first()
    if image is None:
        return
    locations = list(image.locations.values_list("store", "url"))
    image.delete()
    data.delete_data(locations)
