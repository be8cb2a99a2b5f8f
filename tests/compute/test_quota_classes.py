"""os-quota-class-sets (admins): the `default` class's limits are every
project's defaults, shown by os-quota-sets/{id}/defaults and limits and
enforced when a project boots or makes a server group; each microversion
shows Nova's fields (the network ones below 2.50, the server group ones
from 2.50, the injected file ones below 2.57)."""
import pytest

from compute.models import Instance, QuotaClass, ServerGroup
from tests.compute.pipeline import live_db, upload_tiny_image  # noqa: F401  (committed rows the server sees)

pytestmark = pytest.mark.live

DEFAULT = "/compute/v2.1/os-quota-class-sets/default"
BASE = {"cores", "instances", "key_pairs", "metadata_items", "ram"}
NETWORK = {"fixed_ips", "floating_ips", "security_groups", "security_group_rules"}
INJECTED = {"injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}
GROUPS = {"server_groups", "server_group_members"}


def version(minor):
    return {"OpenStack-API-Version": f"compute 2.{minor}"}


@pytest.fixture(scope="module")
def world(cloud, live_db, tmp_path_factory):  # noqa: F811
    admin, demo = cloud.connect("stratus"), cloud.connect("stratus-demo")
    image_id = upload_tiny_image(cloud, tmp_path_factory.mktemp("quota-classes"))
    yield {"admin": admin.auth_token, "demo": demo.auth_token, "demo_project": demo.current_project_id,
           "image": image_id}
    QuotaClass.objects.filter(class_name="default").delete()
    Instance.objects.filter(project_id=demo.current_project_id, name__startswith="qc-").delete()
    ServerGroup.objects.filter(project_id=demo.current_project_id, name__startswith="qc-").delete()


def test_each_microversion_shows_novas_fields(api, world):
    for minor, fields in ((1, BASE | NETWORK | INJECTED), (49, BASE | NETWORK | INJECTED),
                          (50, BASE | INJECTED | GROUPS), (57, BASE | GROUPS), (60, BASE | GROUPS)):
        answer = api.get(DEFAULT, token=world["admin"], headers=version(minor))
        assert answer.status_code == 200, answer.text
        body = answer.json()["quota_class_set"]
        assert set(body) == fields | {"id"}, minor
        assert body["id"] == "default" and body["instances"] == 10 and body["cores"] == 20
    # A class nobody set shows the configured defaults too.
    other = api.get("/compute/v2.1/os-quota-class-sets/gold", token=world["admin"]).json()["quota_class_set"]
    assert other["id"] == "gold" and other["ram"] == 51200 and other["fixed_ips"] == -1


def test_the_default_class_is_every_projects_defaults_and_enforced(cloud, api, world):
    cloud.openstack("quota", "set", "--class", "--instances", "1", "--cores", "7", "default")
    answer = api.put(DEFAULT, token=world["admin"], headers=version(50), json={"quota_class_set": {
        "server_groups": 0, "key_pairs": "50"}})
    assert answer.status_code == 200, answer.text
    body = answer.json()["quota_class_set"]
    assert "id" not in body and (body["instances"], body["cores"], body["server_groups"], body["key_pairs"]) == (
        1, 7, 0, 50)
    rows = cloud.openstack("quota", "show", "--default", "--compute", world["demo_project"], "-f", "json")
    defaults = {row["Resource"]: row["Limit"] for row in rows}
    assert (defaults["instances"], defaults["cores"]) == (1, 7)
    limits = api.get("/compute/v2.1/limits", token=world["demo"]).json()["limits"]["absolute"]
    assert (limits["maxTotalInstances"], limits["maxTotalCores"], limits["maxServerGroups"]) == (1, 7, 0)

    def boot(name):
        return api.post("/compute/v2.1/servers", token=world["demo"], headers=version(37), json={"server": {
            "name": name, "imageRef": world["image"], "flavorRef": "42", "networks": "none"}})

    first = boot("qc-one")
    assert first.status_code == 202, first.text
    second = boot("qc-two")
    assert second.status_code == 403 and "instances" in second.json()["forbidden"]["message"]
    group = api.post("/compute/v2.1/os-server-groups", token=world["demo"], headers=version(60), json={
        "server_group": {"name": "qc-group", "policies": ["affinity"]}})
    assert group.status_code == 403 and "server_groups" in group.json()["forbidden"]["message"]
    # A project's own limit still wins over the class's.
    assert api.put(f"/compute/v2.1/os-quota-sets/{world['demo_project']}", token=world["admin"],
                   json={"quota_set": {"instances": 2}}).status_code == 200
    try:
        assert boot("qc-two").status_code == 202
    finally:
        api.delete(f"/compute/v2.1/os-quota-sets/{world['demo_project']}", token=world["admin"])


@pytest.mark.parametrize("minor, body, field", [
    (1, {"instances": -2}, "instances"),
    (1, {"instances": "many"}, "instances"),
    (1, {"instances": True}, "instances"),
    (1, {"widgets": 3}, "widgets"),
    (1, {"id": "default"}, "id"),
    (50, {"floating_ips": 5}, "floating_ips"),
    (57, {"injected_files": 5}, "injected_files"),
])
def test_bad_input_is_400_naming_the_field_and_changes_nothing(api, world, minor, body, field):
    before = api.get(DEFAULT, token=world["admin"], headers=version(minor)).json()
    answer = api.put(DEFAULT, token=world["admin"], headers=version(minor), json={"quota_class_set": {
        "ram": 1, **body}})
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["badRequest"]["message"]
    assert api.get(DEFAULT, token=world["admin"], headers=version(minor)).json() == before
    envelope = api.put(DEFAULT, token=world["admin"], json={"instances": 3})
    assert envelope.status_code == 400 and "quota_class_set" in envelope.json()["badRequest"]["message"]
    too_long = api.put(f"/compute/v2.1/os-quota-class-sets/{'c' * 256}", token=world["admin"],
                       json={"quota_class_set": {"ram": 1}})
    assert too_long.status_code == 400 and "quota_class_name" in too_long.json()["badRequest"]["message"]


def test_network_quotas_of_a_class_are_kept_below_2_50(api, world):
    answer = api.put("/compute/v2.1/os-quota-class-sets/silver", token=world["admin"], json={"quota_class_set": {
        "floating_ips": 33, "server_groups": 4}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["quota_class_set"]["floating_ips"] == 33 and "server_groups" not in answer.json()[
        "quota_class_set"]
    shown = api.get("/compute/v2.1/os-quota-class-sets/silver", token=world["admin"], headers=version(50)).json()
    assert shown["quota_class_set"]["server_groups"] == 4 and "floating_ips" not in shown["quota_class_set"]
    QuotaClass.objects.filter(class_name="silver").delete()


def test_members_and_forged_tokens_are_refused(api, world):
    for method, body in (("GET", None), ("PUT", {"quota_class_set": {"instances": 100}})):
        refused = api.request(method, DEFAULT, token=world["demo"], json=body)
        assert refused.status_code == 403 and "forbidden" in refused.json(), method
        assert api.request(method, DEFAULT, token="forged", json=body).status_code == 401
    assert not QuotaClass.objects.filter(class_name="default", resource="instances", hard_limit=100).exists()
