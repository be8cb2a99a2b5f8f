"""Images through the real `openstack` CLI and openstacksdk against the
live server."""
import pytest

from tests.images.conftest import make_qcow2, md5_of, store_files, unique

pytestmark = pytest.mark.live


def test_create_with_file_then_show_and_save_give_back_the_same_bytes(cloud, image_of, qcow2, tmp_path):
    created = image_of(qcow2)
    shown = cloud.openstack("image", "show", created["name"], "-f", "json")
    assert shown["status"] == "active"
    assert shown["size"] == qcow2.stat().st_size
    assert shown["checksum"] == md5_of(qcow2)
    assert shown["disk_format"] == "qcow2" and shown["container_format"] == "bare"
    assert shown["virtual_size"] == 2 * 2**20  # what qemu-img reads in the qcow2 header

    saved = tmp_path / "saved.qcow2"
    cloud.openstack("image", "save", "--file", saved, shown["id"])
    assert saved.read_bytes() == qcow2.read_bytes()


def test_set_property_tags_and_min_ram_then_unset(cloud, image_of, qcow2):
    image = image_of(qcow2)
    cloud.openstack("image", "set", "--property", "os_distro=debian", "--tag", "blue", "--tag", "small",
                    "--min-ram", "64", image["id"])
    shown = cloud.openstack("image", "show", image["id"], "-f", "json")
    assert shown["properties"]["os_distro"] == "debian"
    assert sorted(shown["tags"]) == ["blue", "small"]
    assert shown["min_ram"] == 64

    cloud.openstack("image", "unset", "--property", "os_distro", "--tag", "blue", image["id"])
    shown = cloud.openstack("image", "show", image["id"], "-f", "json")
    assert "os_distro" not in shown["properties"]
    assert shown["tags"] == ["small"]


def test_list_filters_and_pages(cloud, image_of, tmp_path):
    tag = unique("batch")
    names = [unique(f"list{index}") for index in range(3)]
    for index, name in enumerate(names):
        image_of(make_file(tmp_path, index), "--tag", tag, "--property", f"position={index}", name=name)

    tagged = cloud.openstack("image", "list", "--tag", tag, "--long", "-f", "json")
    assert sorted(row["Name"] for row in tagged) == sorted(names)
    by_name = cloud.openstack("image", "list", "--name", names[1], "-f", "json")
    assert [row["Name"] for row in by_name] == [names[1]]
    by_property = cloud.openstack("image", "list", "--property", "position=2", "--tag", tag, "-f", "json")
    assert [row["Name"] for row in by_property] == [names[2]]

    # Pages of one, following `next`, in name order.
    conn = cloud.connect()
    paged = [image.name for image in conn.image.images(tag=tag, sort="name:asc", limit=1)]
    assert paged == sorted(names)
    first_page = conn.image.get("/images", params={"tag": tag, "limit": 2, "sort": "name:desc"}).json()
    assert [image["name"] for image in first_page["images"]] == sorted(names, reverse=True)[:2]
    assert first_page["next"].startswith("/v2/images?")


def make_file(tmp_path, index):
    return make_qcow2(tmp_path / f"disk{index}.qcow2", data_bytes=64 * 1024)


def test_delete_removes_the_image_and_its_data(cloud, image_of, qcow2):
    image = image_of(qcow2)
    assert image["id"] in store_files()
    cloud.openstack("image", "delete", image["id"])
    failed = cloud.openstack("image", "show", image["id"], expect_fail=True)
    assert "No Image found" in failed.stderr or "404" in failed.stderr
    assert image["id"] not in store_files()


def test_protected_image_refuses_delete(cloud, image_of, qcow2):
    image = image_of(qcow2, "--protected")
    failed = cloud.openstack("image", "delete", image["id"], expect_fail=True)
    assert "protected" in failed.stderr
    assert cloud.openstack("image", "show", image["id"], "-f", "json")["status"] == "active"
    cloud.openstack("image", "set", "--unprotected", image["id"])


def test_private_image_is_invisible_to_another_project(cloud, image_of, qcow2):
    image = image_of(qcow2, "--private")
    demo_names = [row["Name"] for row in cloud.openstack("image", "list", "-f", "json", cloud="stratus-demo")]
    assert image["name"] not in demo_names
    failed = cloud.openstack("image", "show", image["id"], cloud="stratus-demo", expect_fail=True)
    assert "No Image found" in failed.stderr or "404" in failed.stderr


def test_shared_image_is_listed_after_the_member_accepts(cloud, image_of, qcow2):
    image = image_of(qcow2, "--shared")
    demo_project = cloud.openstack("project", "show", "demo", "-f", "json")["id"]
    cloud.openstack("image", "add", "project", image["id"], demo_project, "-f", "json")

    def demo_sees():
        return image["name"] in [row["Name"] for row in cloud.openstack("image", "list", "-f", "json",
                                                                        cloud="stratus-demo")]

    assert not demo_sees()  # pending: not in the default list yet
    cloud.openstack("image", "set", "--accept", image["id"], cloud="stratus-demo")
    assert demo_sees()
    members = cloud.openstack("image", "member", "list", image["id"], "-f", "json")
    assert [(row["Member ID"], row["Status"]) for row in members] == [(demo_project, "accepted")]

    # The member may download it, not change it.
    conn = cloud.connect("stratus-demo")
    assert conn.image.download_image(image["id"]) is not None
    failed = cloud.openstack("image", "set", "--name", "taken", image["id"], cloud="stratus-demo",
                             expect_fail=True)
    assert "403" in failed.stderr

    cloud.openstack("image", "set", "--reject", image["id"], cloud="stratus-demo")
    assert not demo_sees()


def test_deactivated_image_cannot_be_downloaded_until_reactivated(cloud, image_of, qcow2, api):
    image = image_of(qcow2, "--public")
    cloud.openstack("image", "set", "--deactivate", image["id"])
    assert cloud.openstack("image", "show", image["id"], "-f", "json")["status"] == "deactivated"
    response = api.get(f"/image/v2/images/{image['id']}/file", token=cloud.token("stratus-demo"))
    assert response.status_code == 403
    cloud.openstack("image", "set", "--activate", image["id"])
    response = api.get(f"/image/v2/images/{image['id']}/file", token=cloud.token("stratus-demo"))
    assert response.status_code == 200 and response.content == qcow2.read_bytes()


def test_sdk_create_image_uploads_and_verifies(cloud, qcow2):
    conn = cloud.connect("stratus-demo")
    image = conn.create_image(unique("sdk"), filename=str(qcow2), disk_format="qcow2", container_format="bare",
                              wait=True)
    try:
        assert image.status == "active"
        assert image.checksum == md5_of(qcow2)
        assert image.visibility == "shared"
    finally:
        conn.delete_image(image.id)
