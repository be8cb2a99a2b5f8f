"""`manage.py bootstrap` registers the guest image as public `stratus-tiny`
(on the bootstrapped test cloud, which has the admin project)."""
import io

import pytest

from images import bootstrap, data
from images.models import Image
from tests.images.conftest import make_qcow2, md5_of


@pytest.mark.django_db
def test_guest_image_is_registered_once_and_replaced_when_rebuilt(cloud, settings, tmp_path):
    settings.GUEST_IMAGE_PATH = make_qcow2(tmp_path / "tiny.qcow2")
    out = io.StringIO()
    bootstrap.run({}, out)
    bootstrap.run({}, out)
    images = list(Image.objects.filter(name="stratus-tiny"))
    try:
        assert len(images) == 1
        image = images[0]
        assert (image.status, image.visibility, image.disk_format, image.container_format) == (
            "active", "public", "qcow2", "bare")
        assert image.checksum == md5_of(settings.GUEST_IMAGE_PATH)
        assert image.size == settings.GUEST_IMAGE_PATH.stat().st_size
        assert "is registered" in out.getvalue()

        make_qcow2(settings.GUEST_IMAGE_PATH)  # rebuilt: other bytes
        bootstrap.run({}, out)
        images = list(Image.objects.filter(name="stratus-tiny"))
        assert len(images) == 1 and images[0].id != image.id
        assert images[0].checksum == md5_of(settings.GUEST_IMAGE_PATH)
    finally:
        # The test's rows roll back; the store's files would not.
        for image in Image.objects.filter(name="stratus-tiny"):
            data.delete_data(image.locations.values_list("store", "url"))


@pytest.mark.django_db
def test_no_guest_image_registers_nothing(settings, tmp_path):
    settings.GUEST_IMAGE_PATH = tmp_path / "missing.qcow2"
    # The live test cloud may have registered the built guest image already.
    before = set(Image.objects.values_list("id", flat=True))
    out = io.StringIO()
    bootstrap.run({}, out)
    assert "no guest image" in out.getvalue()
    assert set(Image.objects.values_list("id", flat=True)) == before
