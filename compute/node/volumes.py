"""Volumes on the node: an attachment's connection info asked of the
volumes app (volumes.attachments, which owns every volume row), its disk
plugged into the domain, and the attachment completed; the reverse for a
detach. The domain's definition holds its volumes too (domain_spec), so a
stop/start, hard reboot or rebuild keeps them."""
from compute.virt import VolumeDisk
from volumes import attachments


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


def hot_plug(node, instance, attachment_id):
    """The reserved attachment connected to this node and its disk plugged
    into the domain (running or stopped); the volume is in-use after."""
    (attachment,) = [found for found in attachments.attachments_of(instance.pk) if str(found.pk) == attachment_id]
    info = attachments.update(attachment_id, connector(node))
    node.driver.attach_volume(node.domain_name(instance.pk), VolumeDisk(
        dev=target_of(attachment.mountpoint), serial=str(attachment.volume_id), connection_info=info))
    attachments.complete(attachment_id, attachment.mountpoint)


def hot_unplug(node, instance, attachment_id):
    """The volume's disk out of the domain, then the attachment removed."""
    found = [attachment for attachment in attachments.attachments_of(instance.pk)
             if str(attachment.pk) == attachment_id]
    if found and found[0].mountpoint:
        node.driver.detach_volume(node.domain_name(instance.pk), target_of(found[0].mountpoint))
    if found:
        attachments.detach(attachment_id)
