"""createBackup through the real CLI and the API, a real control worker and
a simulated node: a backup is a snapshot with image_type backup and its
backup_type, and once it is stored the server's backups of that type past
the newest `rotation` are deleted (0 keeps none); other types and plain
snapshots are left alone. Bad input names its field and changes nothing."""
import uuid

import pytest

from compute.models import InstanceAction
from images.models import Image
from tests.compute import test_server_snapshot
from tests.compute.nodes import wait_until
from tests.compute.test_server_snapshot import boot, idle

live_db, control = test_server_snapshot.live_db, test_server_snapshot.control
image, node = test_server_snapshot.image, test_server_snapshot.node

pytestmark = pytest.mark.live


def backups_of(server_id, backup_type):
    return list(Image.objects.filter(properties__instance_uuid=str(server_id), properties__image_type="backup",
                                     properties__backup_type=backup_type).order_by("created_at")
                .values_list("name", flat=True))


def backup(api, server_id, body, token, version="2.45"):
    return api.post(f"/compute/v2.1/servers/{server_id}/action", json={"createBackup": body}, token=token,
                    headers={"OpenStack-API-Version": f"compute {version}"})


def wait_active(image_id):
    wait_until(lambda: Image.objects.filter(pk=image_id, status="active").exists(), timeout=90,
               message=f"image {image_id} active")


def test_backups_rotate_per_type_and_leave_snapshots_alone(cloud, api, node, image):
    server_id, = boot(cloud, image)
    token = cloud.token()
    prefix = uuid.uuid4().hex[:6]
    made = cloud.openstack("server", "backup", "create", "--name", f"{prefix}-daily-1", "--type", "daily",
                           "--rotate", "2", "--wait", server_id, "-f", "json")
    shown = Image.objects.get(pk=made["id"])
    assert shown.status == "active" and shown.visibility == "private"
    assert shown.properties["image_type"] == "backup" and shown.properties["backup_type"] == "daily"
    assert shown.properties["instance_uuid"] == server_id
    wait_until(lambda: idle(server_id), timeout=60, message="the server idle again")

    snapshot = cloud.openstack("server", "image", "create", "--name", f"{prefix}-snap", "--wait", server_id,
                               "-f", "json")
    for name, backup_type in ((f"{prefix}-weekly-1", "weekly"), (f"{prefix}-daily-2", "daily"),
                              (f"{prefix}-daily-3", "daily")):
        wait_until(lambda: idle(server_id), timeout=60, message="the server idle again")
        response = backup(api, server_id, {"name": name, "backup_type": backup_type, "rotation": 2}, token)
        assert response.status_code == 202, response.text
        wait_active(response.json()["image_id"])
    wait_until(lambda: idle(server_id) and backups_of(server_id, "daily") == [f"{prefix}-daily-2",
                                                                             f"{prefix}-daily-3"],
               timeout=60, message="the oldest daily backup rotated out")
    assert backups_of(server_id, "weekly") == [f"{prefix}-weekly-1"]
    assert Image.objects.filter(pk=snapshot["id"], status="active").exists()

    # Rotation 0 keeps none of that type, the new one included (as Nova).
    wait_until(lambda: idle(server_id), timeout=60, message="the server idle again")
    zero = backup(api, server_id, {"name": f"{prefix}-weekly-2", "backup_type": "weekly", "rotation": "0"}, token)
    assert zero.status_code == 202, zero.text
    wait_until(lambda: idle(server_id) and backups_of(server_id, "weekly") == [], timeout=90,
               message="every weekly backup rotated out")
    assert backups_of(server_id, "daily") == [f"{prefix}-daily-2", f"{prefix}-daily-3"]
    actions = list(InstanceAction.objects.filter(instance_id=server_id, action="createBackup")
                   .values_list("finish_time", flat=True))
    assert len(actions) == 5 and all(actions)


def test_bad_backups_name_the_field_and_change_nothing(cloud, api, node, image):
    server_id, = boot(cloud, image)
    token = cloud.token()
    before = Image.objects.count()
    for body, field in (({"backup_type": "daily", "rotation": 1}, "createBackup.name"),
                        ({"name": "b", "rotation": 1}, "createBackup.backup_type"),
                        ({"name": "b", "backup_type": "daily"}, "createBackup.rotation"),
                        ({"name": "b", "backup_type": "daily", "rotation": -1}, "createBackup.rotation"),
                        ({"name": "b", "backup_type": "daily", "rotation": "many"}, "createBackup.rotation"),
                        ({"name": "b", "backup_type": 7, "rotation": 1}, "createBackup.backup_type"),
                        ({"name": "b", "backup_type": "daily", "rotation": 1, "colour": "red"}, "createBackup")):
        response = backup(api, server_id, body, token)
        assert response.status_code == 400, (body, response.content)
        assert f"'{field}'" in response.text, (body, response.text)
    assert Image.objects.count() == before
    assert idle(server_id)
    stranger = cloud.token("stratus-demo")
    assert backup(api, server_id, {"name": "b", "backup_type": "daily", "rotation": 1}, stranger).status_code == 404
