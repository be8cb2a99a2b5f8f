"""Volume backups through the real `openstack` CLI, against the live server,
a control worker and a file back end's worker: the data lands in the
project's object store container (listed by `openstack object list`), an
incremental backup stores only what changed, and restores give back the
same bytes and the volume's metadata, into a new volume or an existing one."""
import base64
import json
import os
import uuid
from datetime import timedelta

from django.utils import timezone

from objects import client as object_store
from tests.compute.nodes import wait_until
from tests.volumes.conftest import path, wait_status
from tests.volumes.test_bad_input import fault
from tests.volumes.test_cli import read_volume, same_contents, upload_raw_image
from volumes import backups
from volumes.models import Backup, Volume
from volumes.tasks import reconcile

# No django_db mark: the module's rows are committed (live_db), as the
# reconciler test's must be for the live server to see them.
MiB = 2**20


def wait_backup(cloud, backup_id, wanted=("available", "error"), cloud_name="stratus"):
    conn = cloud.connect(cloud_name)
    wait_until(lambda: conn.block_storage.get_backup(backup_id).status in wanted, timeout=120, interval=0.2,
               message=f"backup {backup_id} to be {wanted}")
    return cloud.openstack("volume", "backup", "show", backup_id, "-f", "json", cloud=cloud_name)


def object_names(cloud, container, prefix):
    listed = cloud.openstack("object", "list", container, "--prefix", prefix, "-f", "json")
    return sorted(row["Name"] for row in listed)


def write_into(volume_path, offset, data):
    """What a guest writing to the volume leaves in its file."""
    with open(volume_path, "r+b") as disk:
        disk.seek(offset)
        disk.write(data)


def test_full_then_incremental_backup_restore_into_new_and_existing_volumes(cloud, volume_worker, tmp_path):
    image_id, image_data = upload_raw_image(cloud, tmp_path, 3 * MiB + 512)
    volume = cloud.openstack("volume", "create", "--image", image_id, "--size", "1", "--property", "team=a",
                             f"backed-{uuid.uuid4().hex[:6]}", "-f", "json")
    assert wait_status(cloud, volume["id"], ("available", "error"))["status"] == "available"
    source = volume_worker.directory / f"volume-{volume['id']}"

    full = cloud.openstack("volume", "backup", "create", "--name", "b-full", volume["id"], "-f", "json")
    shown = wait_backup(cloud, full["id"])
    assert shown["status"] == "available", shown
    assert shown["container"] == "volumebackups" and shown["size"] == 1 and shown["is_incremental"] is False
    # One chunk holds the image's bytes; the rest of the GiB is zeros, which take no object.
    assert shown["object_count"] == 2
    prefix = f"volume_{volume['id']}/backup_{full['id']}/"
    assert object_names(cloud, "volumebackups", prefix) == [f"{prefix}00000", f"{prefix}metadata"]
    assert wait_status(cloud, volume["id"], "available")["status"] == "available"

    # The guest writes 1 MiB at 40 MiB: only that chunk is new to the incremental backup.
    change = os.urandom(MiB)
    write_into(source, 40 * MiB, change)
    incremental = cloud.openstack("volume", "backup", "create", "--incremental", "--name", "b-inc",
                                  volume["id"], "-f", "json")
    shown = wait_backup(cloud, incremental["id"])
    assert shown["status"] == "available" and shown["is_incremental"] is True, shown
    assert shown["object_count"] == 2
    inc_prefix = f"volume_{volume['id']}/backup_{incremental['id']}/"
    assert object_names(cloud, "volumebackups", inc_prefix) == [f"{inc_prefix}00001", f"{inc_prefix}metadata"]
    assert cloud.openstack("volume", "backup", "show", full["id"], "-f", "json")["has_dependent_backups"] is True

    # Into a new volume: the incremental chain's bytes, the volume's metadata and bootable flag.
    restore = cloud.openstack("volume", "backup", "restore", incremental["id"], "restored", "-f", "json")
    restored = wait_status(cloud, restore["volume_id"], ("available", "error"))
    assert restored["status"] == "available", restored
    assert restored["name"] == "restored" and restored["properties"].get("team") == "a"
    assert restored["bootable"] in (True, "true")
    assert same_contents(source, volume_worker.directory / f"volume-{restore['volume_id']}")
    assert wait_backup(cloud, incremental["id"])["status"] == "available"

    # Into an existing volume: the full backup's bytes, without the later change.
    target = cloud.openstack("volume", "create", "--size", "1", f"target-{uuid.uuid4().hex[:6]}", "-f", "json")
    wait_status(cloud, target["id"], "available")
    cloud.openstack("volume", "backup", "restore", "--force", full["id"], target["id"], "-f", "json")
    wait_until(lambda: Volume.objects.get(pk=target["id"]).status == "available" and
               Backup.objects.get(pk=full["id"]).status == "available", timeout=120, message="the restore")
    target_path = volume_worker.directory / f"volume-{target['id']}"
    assert read_volume(target_path, 0, len(image_data)) == image_data
    assert read_volume(target_path, 40 * MiB, MiB) == bytes(MiB)

    # The full backup stays while the incremental one builds on it.
    failed = cloud.openstack("volume", "backup", "delete", full["id"], expect_fail=True)
    assert "Incremental backups exist for this backup" in failed.stderr
    cloud.openstack("volume", "backup", "delete", incremental["id"])
    wait_until(lambda: not Backup.objects.filter(pk=incremental["id"]).exists(), timeout=60, message="the delete")
    cloud.openstack("volume", "backup", "delete", full["id"])
    wait_until(lambda: not Backup.objects.filter(pk=full["id"]).exists(), timeout=60, message="the delete")
    assert object_names(cloud, "volumebackups", f"volume_{volume['id']}/") == []
    for volume_id in (volume["id"], restore["volume_id"], target["id"]):
        cloud.openstack("volume", "delete", volume_id)
    cloud.openstack("image", "delete", image_id)


def test_a_backup_of_a_snapshot_holds_the_snapshot_not_the_volume_after_it(cloud, volume_worker):
    volume = cloud.openstack("volume", "create", "--size", "1", f"snapped-{uuid.uuid4().hex[:6]}", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    source = volume_worker.directory / f"volume-{volume['id']}"
    before = os.urandom(MiB)
    write_into(source, 0, before)
    snapshot = cloud.openstack("volume", "snapshot", "create", "--volume", volume["id"], "s-for-backup", "-f", "json")
    wait_status(cloud, snapshot["id"], "available", kind="volume snapshot")
    write_into(source, 0, os.urandom(MiB))

    backup = cloud.openstack("volume", "backup", "create", "--snapshot", snapshot["id"], "--container", "from-snaps",
                             volume["id"], "-f", "json")
    shown = wait_backup(cloud, backup["id"])
    assert shown["status"] == "available" and shown["snapshot_id"] == snapshot["id"], shown
    restore = cloud.openstack("volume", "backup", "restore", backup["id"], "from-snapshot-backup", "-f", "json")
    assert wait_status(cloud, restore["volume_id"], ("available", "error"))["status"] == "available"
    assert read_volume(volume_worker.directory / f"volume-{restore['volume_id']}", 0, MiB) == before

    cloud.openstack("volume", "backup", "delete", backup["id"])
    wait_until(lambda: not Backup.objects.filter(pk=backup["id"]).exists(), timeout=60, message="the delete")
    cloud.openstack("volume", "snapshot", "delete", snapshot["id"])
    wait_until(lambda: not volume_worker.directory.joinpath(f"snapshot-{snapshot['id']}").exists(), timeout=60,
               message="the snapshot to go")
    for volume_id in (volume["id"], restore["volume_id"]):
        cloud.openstack("volume", "delete", volume_id)


def test_bad_backup_requests_are_refused_and_change_nothing(cloud, api, admin, demo, volume_worker):
    volume = cloud.openstack("volume", "create", "--size", "1", f"guarded-{uuid.uuid4().hex[:6]}", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    before = Backup.objects.count()

    def create(who, body):
        return api.post(path(who, "backups"), token=who["token"], json={"backup": body})

    message = fault(create(admin, {"volume_id": str(uuid.uuid4())}), 404, "itemNotFound")
    assert "could not be found" in message
    message = fault(create(admin, {"volume_id": volume["id"], "incremental": True}), 400, "badRequest")
    assert "No backups available to do an incremental backup" in message
    message = fault(create(admin, {"volume_id": volume["id"], "container": "a/b"}), 400, "badRequest")
    assert "container" in message
    # Another project's volume is not there for demo to back up.
    fault(create(demo, {"volume_id": volume["id"]}), 404, "itemNotFound")
    assert Backup.objects.count() == before

    backup = create(admin, {"volume_id": volume["id"], "name": "mine"}).json()["backup"]
    assert wait_backup(cloud, backup["id"])["status"] == "available"
    # Nor are another project's backups: not listed, not shown, not restored or deleted.
    listed = api.get(path(demo, "backups/detail"), token=demo["token"]).json()["backups"]
    assert backup["id"] not in [row["id"] for row in listed]
    fault(api.get(path(demo, f"backups/{backup['id']}"), token=demo["token"]), 404, "itemNotFound")
    fault(api.post(path(demo, f"backups/{backup['id']}/restore"), token=demo["token"], json={"restore": {}}), 404,
          "itemNotFound")
    fault(api.delete(path(demo, f"backups/{backup['id']}"), token=demo["token"]), 404, "itemNotFound")
    # A restore into a volume smaller than the backup is refused, the volume left as it was.
    big = cloud.openstack("volume", "create", "--size", "2", f"big-{uuid.uuid4().hex[:6]}", "-f", "json")
    wait_status(cloud, big["id"], "available")
    big_backup = create(admin, {"volume_id": big["id"]}).json()["backup"]
    assert wait_backup(cloud, big_backup["id"])["status"] == "available"
    message = fault(api.post(path(admin, f"backups/{big_backup['id']}/restore"), token=admin["token"],
                             json={"restore": {"volume_id": volume["id"]}}), 400, "badRequest")
    assert "smaller than backup size" in message
    assert Volume.objects.get(pk=volume["id"]).status == "available"

    # The backups quota: 413 naming it, nothing made.
    cloud.openstack("quota", "set", "--backups", "2", admin["project"])
    try:
        message = fault(create(admin, {"volume_id": volume["id"]}), 413, "overLimit")
        assert "backups" in message
    finally:
        cloud.openstack("quota", "set", "--backups", "10", admin["project"])
    assert Backup.objects.filter(volume_id=volume["id"]).count() == 1
    for backup_id in (backup["id"], big_backup["id"]):
        cloud.openstack("volume", "backup", "delete", backup_id)
    wait_until(lambda: not Backup.objects.filter(pk__in=[backup["id"], big_backup["id"]]).exists(), timeout=60,
               message="the deletes")
    for volume_id in (volume["id"], big["id"]):
        cloud.openstack("volume", "delete", volume_id)


def test_a_backup_whose_worker_died_ends_in_error_with_its_objects_gone(cloud, admin, volume_worker):
    """A create stuck past the deadline (its worker killed midway) is ended
    by the reconciler: in error with the reason, the chunks it had written
    removed from the container, the volume given its status back."""
    volume = cloud.openstack("volume", "create", "--size", "1", f"orphan-{uuid.uuid4().hex[:6]}", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    backup = Backup.objects.create(project_id=admin["project"], user_id=admin["user"], volume_id=volume["id"],
                                   container="volumebackups", size=1, host=volume_worker.host,
                                   volume_previous_status="available")
    Volume.objects.filter(pk=volume["id"]).update(status="backing-up")
    object_store.put(admin["project"], "volumebackups", f"{backup.object_prefix}00000", [b"half a backup"])
    Backup.objects.filter(pk=backup.pk).update(updated_at=timezone.now() - timedelta(hours=1))

    reconcile()

    backup.refresh_from_db()
    assert backup.status == "error" and "did not finish" in backup.fail_reason
    assert object_names(cloud, "volumebackups", backup.object_prefix) == []
    assert Volume.objects.get(pk=volume["id"]).status == "available"
    shown = cloud.openstack("volume", "backup", "show", str(backup.pk), "-f", "json")
    assert shown["status"] == "error" and "did not finish" in shown["fail_reason"]
    backups.delete(backup)
    wait_until(lambda: not Backup.objects.filter(pk=backup.pk).exists(), timeout=60, message="the delete")
    cloud.openstack("volume", "delete", volume["id"])


def test_admins_reset_a_backups_status_and_export_and_import_its_record(cloud, api, admin, demo, volume_worker):
    volume = cloud.openstack("volume", "create", "--size", "1", f"exported-{uuid.uuid4().hex[:6]}", "-f", "json")
    wait_status(cloud, volume["id"], "available")
    write_into(volume_worker.directory / f"volume-{volume['id']}", 5 * MiB, b"exported bytes")
    backup = api.post(path(admin, "backups"), token=admin["token"],
                      json={"backup": {"volume_id": volume["id"]}}).json()["backup"]
    assert wait_backup(cloud, backup["id"])["status"] == "available"

    # Members may not touch a backup's status or records.
    demo_backup = cloud.openstack("volume", "create", "--size", "1", "demo-vol", "-f", "json", cloud="stratus-demo")
    wait_status(cloud, demo_backup["id"], "available", cloud_name="stratus-demo")
    mine = api.post(path(demo, "backups"), token=demo["token"],
                    json={"backup": {"volume_id": demo_backup["id"]}}).json()["backup"]
    assert wait_backup(cloud, mine["id"], cloud_name="stratus-demo")["status"] == "available"
    fault(api.post(path(demo, f"backups/{mine['id']}/action"), token=demo["token"],
                   json={"os-reset_status": {"status": "error"}}), 403, "forbidden")
    fault(api.get(path(demo, f"backups/{mine['id']}/export_record"), token=demo["token"]), 403, "forbidden")
    assert Backup.objects.get(pk=mine["id"]).status == "available"

    record = api.get(path(admin, f"backups/{backup['id']}/export_record"), token=admin["token"]).json()
    record = record["backup-record"]
    assert record["backup_service"].startswith("cinder.backup.drivers")
    # Imported under a new id (the old one is still here), it names the same data.
    exported = json.loads(base64.b64decode(record["backup_url"]))
    new_id = str(uuid.uuid4())
    forged = base64.b64encode(json.dumps({**exported, "id": new_id}).encode()).decode()
    imported = api.post(path(admin, "backups/import_record"), token=admin["token"],
                        json={"backup-record": {"backup_service": record["backup_service"], "backup_url": forged}})
    assert imported.status_code == 201, imported.text
    assert imported.json()["backup"]["id"] == new_id
    restore = api.post(path(admin, f"backups/{new_id}/restore"), token=admin["token"], json={"restore": {}})
    restored = wait_status(cloud, restore.json()["restore"]["volume_id"], ("available", "error"))
    assert restored["status"] == "available", restored
    assert read_volume(volume_worker.directory / f"volume-{restored['id']}", 5 * MiB, 14) == b"exported bytes"
    # A record that is not one, or whose data is not in the store, imports nothing.
    for url in ("not base64!", base64.b64encode(b"[]").decode(),
                base64.b64encode(json.dumps({**exported, "id": str(uuid.uuid4()),
                                             "object_prefix": "nowhere/"}).encode()).decode()):
        fault(api.post(path(admin, "backups/import_record"), token=admin["token"],
                       json={"backup-record": {"backup_service": record["backup_service"], "backup_url": url}}),
              400, "badRequest")

    response = api.post(path(admin, f"backups/{backup['id']}/action"), token=admin["token"],
                        json={"os-reset_status": {"status": "error"}})
    assert response.status_code == 202, response.text
    assert cloud.openstack("volume", "backup", "show", backup["id"], "-f", "json")["status"] == "error"

    for who, backup_id in ((admin, new_id), (admin, backup["id"]), (demo, mine["id"])):
        assert api.delete(path(who, f"backups/{backup_id}"), token=who["token"]).status_code == 202
    wait_until(lambda: not Backup.objects.filter(pk__in=[new_id, backup["id"], mine["id"]]).exists(), timeout=60,
               message="the deletes")
    for volume_id in (volume["id"], restored["id"]):
        cloud.openstack("volume", "delete", volume_id)
    cloud.openstack("volume", "delete", demo_backup["id"], cloud="stratus-demo")
