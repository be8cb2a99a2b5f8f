"""APIs Nova still serves to old microversions, as Tempest's compute API
tests call them: the /images proxy (below 2.36) and its metadata (below
2.39), 404 from those versions on."""
import io
import uuid

import pytest

pytestmark = pytest.mark.live


def version(minor):
    return {"OpenStack-API-Version": f"compute 2.{minor}"}


@pytest.fixture(scope="module")
def tokens(cloud):
    return {"admin": cloud.token("stratus"), "demo": cloud.token("stratus-demo")}


def glance_image(api, token, visibility="private"):
    """An active raw image of 1 KiB made through the Image API, as Tempest makes them."""
    response = api.post("/image/v2/images", token=token, json={
        "name": f"proxy-{uuid.uuid4().hex[:8]}", "disk_format": "raw", "container_format": "bare",
        "visibility": visibility})
    assert response.status_code == 201, response.text
    image_id = response.json()["id"]
    response = api.request("PUT", f"/image/v2/images/{image_id}/file", token=token, data=io.BytesIO(b"*" * 1024),
                           headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 204, response.text
    return image_id


def test_the_image_proxy_lists_shows_and_deletes_as_nova(cloud, api, tokens):
    demo = tokens["demo"]
    image_id = glance_image(api, demo)
    listed = api.get("/compute/v2.1/images", token=demo).json()["images"]
    summary = next(row for row in listed if row["id"] == image_id)
    assert set(summary) == {"id", "name", "links"}
    assert [link["rel"] for link in summary["links"]] == ["self", "bookmark", "alternate"]
    detail = api.get("/compute/v2.1/images/detail", token=demo, params={"status": "ACTIVE"}).json()["images"]
    shown = api.get(f"/compute/v2.1/images/{image_id}", token=demo).json()["image"]
    assert shown in detail
    assert shown["status"] == "ACTIVE" and shown["progress"] == 100 and shown["OS-EXT-IMG-SIZE:size"] == 1024
    assert {"minRam", "minDisk", "metadata", "created", "updated"} <= set(shown)
    by_name = api.get("/compute/v2.1/images", token=demo, params={"name": summary["name"]}).json()["images"]
    assert [row["id"] for row in by_name] == [image_id]
    assert len(api.get("/compute/v2.1/images", token=demo, params={"limit": 1}).json()["images"]) == 1
    # openstacksdk's compute image calls go through the same proxy.
    assert cloud.connect("stratus-demo").compute.get_image(image_id).status == "ACTIVE"
    # Gone from 2.36 on, as in Nova.
    for path in ("images", "images/detail", f"images/{image_id}"):
        assert api.get(f"/compute/v2.1/{path}", token=demo, headers=version(36)).status_code == 404
    assert api.get(f"/compute/v2.1/images/{image_id}", token=demo, headers=version(35)).status_code == 200
    assert api.delete(f"/compute/v2.1/images/{image_id}", token=demo).status_code == 204
    assert api.get(f"/compute/v2.1/images/{image_id}", token=demo).status_code == 404
    assert api.get(f"/image/v2/images/{image_id}", token=demo).status_code == 404


def test_another_projects_image_is_404_and_a_public_one_is_not_theirs_to_delete(api, tokens):
    private = glance_image(api, tokens["admin"])
    public = glance_image(api, tokens["admin"], visibility="public")
    try:
        for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/metadata"), ("PUT", "/metadata/k")):
            response = api.request(method, f"/compute/v2.1/images/{private}{path}", token=tokens["demo"],
                                   json={"meta": {"k": "v"}} if method == "PUT" else None)
            assert response.status_code == 404 and "itemNotFound" in response.json(), (method, path)
        assert api.get(f"/compute/v2.1/images/{public}", token=tokens["demo"]).status_code == 200
        response = api.delete(f"/compute/v2.1/images/{public}", token=tokens["demo"])
        assert response.status_code == 403 and "forbidden" in response.json()
        assert api.get("/compute/v2.1/images/nope", token=tokens["demo"]).status_code == 404
    finally:
        for image_id in (private, public):
            api.delete(f"/image/v2/images/{image_id}", token=tokens["admin"])


def test_image_metadata_through_the_proxy(api, tokens):
    demo = tokens["demo"]
    image_id = glance_image(api, demo)
    meta = f"/compute/v2.1/images/{image_id}/metadata"
    try:
        response = api.put(meta, token=demo, json={"metadata": {"os_version": "value1", "os_distro": "value2"}})
        assert response.json() == {"metadata": {"os_version": "value1", "os_distro": "value2"}}, response.text
        response = api.post(meta, token=demo, json={"metadata": {"os_version": "value3", "architecture": "x86_64"}})
        assert response.json()["metadata"] == {"os_version": "value3", "os_distro": "value2",
                                               "architecture": "x86_64"}
        assert api.get(f"{meta}/os_distro", token=demo).json() == {"meta": {"os_distro": "value2"}}
        assert api.put(f"{meta}/os_distro", token=demo, json={"meta": {"os_distro": "alpha"}}).status_code == 200
        assert api.delete(f"{meta}/architecture", token=demo).status_code == 204
        assert api.get(meta, token=demo).json() == {"metadata": {"os_version": "value3", "os_distro": "alpha"}}
        # The properties are the image's own, as Glance shows them.
        glance = api.get(f"/image/v2/images/{image_id}", token=demo).json()
        assert glance["os_distro"] == "alpha" and "architecture" not in glance
        # Bad input names the field; a missing key is a 404; Glance's reserved names stay refused.
        response = api.put(f"{meta}/os_distro", token=demo, json={"meta": {"other": "x"}})
        assert response.status_code == 400 and "meta" in response.json()["badRequest"]["message"]
        assert api.get(f"{meta}/architecture", token=demo).status_code == 404
        assert api.delete(f"{meta}/architecture", token=demo).status_code == 404
        assert api.post(meta, token=demo, json={"metadata": {"os_glance_x": "1"}}).status_code == 403
        assert api.post(meta, token=demo, json={"metadata": {"k": 1}}).status_code == 400
        assert api.get(meta, token=demo, headers=version(38)).status_code == 200
        assert api.get(meta, token=demo, headers=version(39)).status_code == 404
    finally:
        api.delete(f"/image/v2/images/{image_id}", token=demo)
