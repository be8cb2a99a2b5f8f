"""Volume transfers: a project offers an available volume (it waits in
`awaiting-transfer`), and the project that shows the transfer's auth key
takes it over with its snapshots. The key is shown once, at creation, and
kept only as a salted hash. Quota follows the volume: the receiving
project's is checked and taken in the accepting transaction, and the
giving project's usage drops with the rows (usage is counted from them)."""
import hashlib
import hmac
import secrets

from django.db import transaction

from cloud.errors import BadRequest, NotFound
from volumes import quotas
from volumes.models import Snapshot, Transfer, Volume

AUTH_KEY_LENGTH = 16


def key_hash(salt, auth_key):
    return hashlib.sha256(f"{salt}{auth_key}".encode()).hexdigest()


def create(volume, name):
    """Inside the caller's transaction, `volume` locked: returns the
    transfer and its auth key."""
    if volume.status != Volume.Status.AVAILABLE:
        raise BadRequest(f"Invalid volume: Status of volume {volume.pk} must be available to be transferred, "
                         f"but it is {volume.status}.")
    if volume.snapshots.exclude(status=Snapshot.Status.AVAILABLE).exists():
        raise BadRequest(f"Invalid volume: Volume {volume.pk} has snapshots that are not available.")
    auth_key = secrets.token_hex(AUTH_KEY_LENGTH // 2)
    salt = secrets.token_hex(8)
    volume.set_status(Volume.Status.AWAITING_TRANSFER, expected=Volume.Status.AVAILABLE)
    transfer = Transfer.objects.create(volume=volume, name=name, salt=salt, key_hash=key_hash(salt, auth_key))
    return transfer, auth_key


def cancel(transfer):
    """Deletes the offer; the volume is available to its project again."""
    with transaction.atomic():
        volume = Volume.objects.select_for_update().get(pk=transfer.volume_id)
        Transfer.objects.filter(pk=transfer.pk).delete()
        if volume.status == Volume.Status.AWAITING_TRANSFER:
            volume.set_status(Volume.Status.AVAILABLE)


def accept(transfer_id, auth_key, project_id, user_id):
    """Moves the volume and its snapshots to `project_id` (and `user_id`)
    if `auth_key` is the transfer's; returns the transfer as it was."""
    with transaction.atomic():
        transfer = Transfer.objects.select_for_update().filter(pk=transfer_id).first()
        if transfer is None:
            raise NotFound(f"Transfer {transfer_id} could not be found.")
        if not isinstance(auth_key, str) or not hmac.compare_digest(transfer.key_hash,
                                                                   key_hash(transfer.salt, auth_key)):
            raise BadRequest(f"Invalid auth key: Attempt to transfer {transfer_id} with invalid auth key.")
        volume = Volume.objects.select_for_update().select_related("volume_type").get(pk=transfer.volume_id)
        if volume.status != Volume.Status.AWAITING_TRANSFER:
            raise BadRequest(f"Invalid volume: Status of volume {volume.pk} must be awaiting-transfer, "
                             f"but it is {volume.status}.")
        snapshots = list(Snapshot.objects.select_for_update().filter(volume=volume))
        moving = volume.project_id != project_id
        if moving:
            quotas.reserve(project_id, volume.volume_type, volumes=1, gigabytes=volume.size)
        volume.set_status(Volume.Status.AVAILABLE, expected=Volume.Status.AWAITING_TRANSFER, project_id=project_id,
                          user_id=user_id)
        if moving and snapshots:
            # Counted with the volume, which is the receiving project's now.
            quotas.reserve(project_id, volume.volume_type, snapshots=len(snapshots),
                           gigabytes=sum(snapshot.size for snapshot in snapshots))
        Snapshot.objects.filter(volume=volume).update(project_id=project_id, user_id=user_id)
        Transfer.objects.filter(pk=transfer.pk).delete()
    return transfer
