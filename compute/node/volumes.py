"""Volumes on the node: an attachment's connection info asked of the
volumes app (volumes.attachments, which owns every volume row), its disk
plugged into the domain, and the attachment completed; the reverse for a
detach. The domain's definition holds its volumes too (domain_spec), so a
stop/start, hard reboot or rebuild keeps them."""
import string
import time

from compute.node import conf
from compute.virt import VolumeDisk
from volumes import attachments, lifecycle


def connector(node):
    """What the volumes app is told about the node that attaches (Cinder's
    connector: host, ip)."""
    return {"host": node.host, "ip": node.my_ip, "multipath": False, "platform": "x86_64", "os_type": "linux"}


def target_of(mountpoint):
    return (mountpoint or "").removeprefix("/dev/")


def volume_disks(instance_id):
    """The domain's volume disks: each attachment with a connection, in the
    order they were attached."""
    return [VolumeDisk(dev=target_of(attachment.mountpoint), serial=str(attachment.volume_id),
                       connection_info=attachments.connection_info(attachment.volume, attachment))
            for attachment in attachments.attachments_of(instance_id)
            if attachment.status != attachment.Status.RESERVED and attachment.mountpoint]


def connect_here(node, instance):
    """The server's attachments recorded on this node (its domain is about
    to be defined here, after a resize moved it)."""
    attachments.move_instance(instance.pk, connector(node))


def hot_plug(node, instance, attachment_id):
    """The reserved attachment connected to this node and its disk plugged
    into the domain (running or stopped); the volume is in-use after."""
    (attachment,) = [found for found in attachments.attachments_of(instance.pk) if str(found.pk) == attachment_id]
    info = attachments.update(attachment_id, connector(node))
    node.driver.attach_volume(node.domain_name(instance.pk), VolumeDisk(
        dev=target_of(attachment.mountpoint), serial=str(attachment.volume_id), connection_info=info))
    attachments.complete(attachment_id, attachment.mountpoint)


def hot_unplug(node, instance, attachment_id):
    """The volume's disk out of the domain (the driver waits for the guest
    to let go), then the attachment removed; if the disk cannot be
    unplugged, the volume is in-use again and the error raised."""
    found = [attachment for attachment in attachments.attachments_of(instance.pk)
             if str(attachment.pk) == attachment_id]
    if not found:
        return
    if found[0].mountpoint:
        try:
            node.driver.detach_volume(node.domain_name(instance.pk), target_of(found[0].mountpoint))
        except Exception:
            attachments.roll_detaching(found[0].volume_id)
            raise
    attachments.detach(attachment_id)


class VolumeNotCreated(Exception):
    """A volume of a booting server did not become available (Nova's
    VolumeNotCreated): the build is aborted, no other host would help."""


class BootCaller:
    """Who makes a booting server's volumes: its project and user, with an
    admin's rights when an admin booted it (an image or snapshot of another
    project that the admin could name)."""

    def __init__(self, instance):
        from compute import block_devices

        self.project_id, self.user_id = instance.project_id, instance.user_id
        self.is_admin = block_devices.requested_by_admin(instance)


def connect_block_devices(node, instance, timeout=None, interval=0.5):
    """The boot's volume step on this node: the volumes of the server's
    block device mappings made through the volumes app (from an image, a
    snapshot, or empty), waited for until available, and each attached to
    this node (the boot volume as vda, then vdb, ...): the domain's
    definition takes them at spawn. A repeat finds what it made."""
    from compute import block_devices

    devices = block_devices.of(instance)
    for position, device in enumerate(devices):
        if device.get("volume_id"):
            continue
        try:
            volume = lifecycle.create_volume(
                BootCaller(instance), size=device["volume_size"], name=f"{instance.name}-volume-{position}",
                volume_type=device.get("volume_type"), availability_zone=None,
                snapshot_id=device["uuid"] if device["source_type"] == "snapshot" else None,
                image_ref=device["uuid"] if device["source_type"] == "image" else None)
        except Exception as error:  # noqa: BLE001  (Cinder's refusal, e.g. over quota, is the fault)
            raise VolumeNotCreated(f"Volume for block device {position} could not be created: "
                                   f"{getattr(error, 'message', None) or error}") from error
        block_devices.set_volume_id(instance, position, volume.pk)
    devices = block_devices.of(instance)
    wait_available([device["volume_id"] for device in devices], timeout or conf.BLOCK_DEVICE_TIMEOUT, interval)
    held = {str(attachment.volume_id) for attachment in attachments.attachments_of(instance.pk)}
    for position, device in enumerate(devices):
        if device["volume_id"] in held:
            continue
        mountpoint = f"/dev/vd{string.ascii_lowercase[position]}" if devices[0]["boot_index"] == 0 else \
            f"/dev/vd{string.ascii_lowercase[position + 1]}"
        attachment, _info = attachments.reserve(device["volume_id"], str(instance.pk), mountpoint=mountpoint,
                                                delete_on_termination=device["delete_on_termination"])
        attachments.update(attachment.pk, connector(node))
        attachments.complete(attachment.pk, mountpoint)


def wait_available(volume_ids, timeout, interval):
    deadline = time.monotonic() + timeout
    waiting = list(volume_ids)
    while waiting:
        for volume_id in list(waiting):
            status, reason = lifecycle.progress_of(volume_id)
            if status in ("available", "in-use"):
                waiting.remove(volume_id)
            elif status is None or status.startswith("error"):
                raise VolumeNotCreated(f"Volume {volume_id} did not become available (status "
                                       f"{status or 'deleted'}){': ' + reason if reason else ''}.")
        if waiting and time.monotonic() > deadline:
            raise VolumeNotCreated(f"Volume {waiting[0]} did not finish being created even after we waited "
                                   f"{timeout:g} seconds.")
        if waiting:
            time.sleep(interval)


def grow(node, instance, volume_id, size_bytes):
    """The attached volume's disk resized in the running domain (libvirt
    blockResize); a stopped domain reads the new size at its next start."""
    found = [attachment for attachment in attachments.attachments_of(instance.pk)
             if str(attachment.volume_id) == str(volume_id) and attachment.mountpoint]
    if found:
        node.driver.resize_volume(node.domain_name(instance.pk), target_of(found[0].mountpoint), size_bytes)
