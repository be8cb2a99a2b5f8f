"""Operators see images in Django's admin site."""
import pytest

from images.models import Image, ImageMember, ImageTag, ImageTask


@pytest.mark.django_db
def test_admin_lists_and_shows_images(admin_client):
    image = Image.objects.create(name="for-the-admin", owner="p1", disk_format="raw", container_format="bare")
    ImageTag.objects.create(image=image, value="gold")
    ImageMember.objects.create(image=image, member="p2")
    listing = admin_client.get("/admin/images/image/?q=for-the-admin")
    assert listing.status_code == 200 and b"for-the-admin" in listing.content
    page = admin_client.get(f"/admin/images/image/{image.pk}/change/")
    assert page.status_code == 200
    assert b"gold" in page.content and b"p2" in page.content


@pytest.mark.django_db
def test_admin_lists_and_shows_import_tasks(admin_client):
    task = ImageTask.objects.create(image_id="0b9e7d5c-1d2a-4c8e-9d3f-0a1b2c3d4e5f", owner="p1", status="failure",
                                    message="URI for web-download does not pass filtering: file:///etc/passwd",
                                    input={"import_req": {"method": {"name": "web-download"}}})
    listing = admin_client.get("/admin/images/imagetask/?status__exact=failure")
    assert listing.status_code == 200 and task.id.encode() in listing.content
    page = admin_client.get(f"/admin/images/imagetask/{task.pk}/change/")
    assert page.status_code == 200 and b"does not pass filtering" in page.content
