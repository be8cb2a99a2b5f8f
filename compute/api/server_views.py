"""How a server looks on the wire: status from vm_state and task_state,
Nova's extension attributes, the flavor by microversion, the fault."""
import hashlib

from compute.api.base import disk_config_of, nova_time
from compute.api.server_tags import tags_of
from compute.models import TaskState, VmState
from network import ports as network_ports
from volumes import attachments

# Nova's status of each vm_state, and the task_states that override it.
STATUS = {
    VmState.BUILDING: "BUILD", VmState.ACTIVE: "ACTIVE", VmState.STOPPED: "SHUTOFF",
    VmState.PAUSED: "PAUSED", VmState.SUSPENDED: "SUSPENDED", VmState.ERROR: "ERROR",
    VmState.DELETED: "DELETED", VmState.RESIZED: "VERIFY_RESIZE", VmState.SHELVED: "SHELVED",
    VmState.SHELVED_OFFLOADED: "SHELVED_OFFLOADED", VmState.RESCUED: "RESCUE",
}
TASK_STATUS = {
    (VmState.ACTIVE, TaskState.REBOOTING): "REBOOT",
    (VmState.ACTIVE, TaskState.REBOOTING_HARD): "HARD_REBOOT",
    (VmState.STOPPED, TaskState.REBOOTING_HARD): "HARD_REBOOT",
    (VmState.PAUSED, TaskState.REBOOTING_HARD): "HARD_REBOOT",
    (VmState.SUSPENDED, TaskState.REBOOTING_HARD): "HARD_REBOOT",
    (VmState.ERROR, TaskState.REBOOTING_HARD): "HARD_REBOOT",
    **{(vm_state, task_state): "REBUILD" for vm_state in (VmState.ACTIVE, VmState.STOPPED, VmState.ERROR)
       for task_state in (TaskState.REBUILDING, TaskState.REBUILD_SPAWNING)},
    **{(vm_state, task_state): "RESIZE" for vm_state in (VmState.ACTIVE, VmState.STOPPED)
       for task_state in TaskState.RESIZING},
    **{(vm_state, TaskState.RESCUING): "RESCUE" for vm_state in (VmState.ACTIVE, VmState.STOPPED, VmState.ERROR)},
    # A failed resize going back on its own (compute.tasks.resize_step_failed).
    **{(vm_state, TaskState.RESIZE_REVERTING): "REVERT_RESIZE"
       for vm_state in (VmState.ACTIVE, VmState.STOPPED, VmState.RESIZED)},
}
# status=... in a list query: the vm_state (and task_states) it means.
STATUS_FILTER = {
    "BUILD": (VmState.BUILDING, None), "ACTIVE": (VmState.ACTIVE, None), "SHUTOFF": (VmState.STOPPED, None),
    "PAUSED": (VmState.PAUSED, None), "SUSPENDED": (VmState.SUSPENDED, None), "ERROR": (VmState.ERROR, None),
    "DELETED": (VmState.DELETED, None), "REBOOT": (VmState.ACTIVE, (TaskState.REBOOTING,)),
    "HARD_REBOOT": (None, (TaskState.REBOOTING_HARD,)),
    "REBUILD": (None, (TaskState.REBUILDING, TaskState.REBUILD_SPAWNING)),
    "RESIZE": (None, TaskState.RESIZING), "VERIFY_RESIZE": (VmState.RESIZED, None),
    "REVERT_RESIZE": (None, (TaskState.RESIZE_REVERTING,)),
    "SHELVED": (VmState.SHELVED, None), "SHELVED_OFFLOADED": (VmState.SHELVED_OFFLOADED, None),
    "RESCUE": (VmState.RESCUED, None),
}


# The statuses whose servers show `progress` (Nova's list).
PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")


def status_of(instance):
    return TASK_STATUS.get((instance.vm_state, instance.task_state), STATUS.get(instance.vm_state, "UNKNOWN"))


def host_id(instance):
    """Nova's hostId: the host, hashed with the project so tenants can
    tell whether two of their servers share a host and nothing more."""
    if not instance.host:
        return ""
    return hashlib.sha224((instance.project_id + instance.host).encode()).hexdigest()


def base_url(request):
    """The absolute URL of the server root, worked out once per request
    (building it per link is most of the cost of a long list)."""
    base = getattr(request, "_stratus_base_url", None)
    if base is None:
        base = request._stratus_base_url = request.build_absolute_uri("/").rstrip("/")
    return base


def link(request, path, rel="self"):
    return {"rel": rel, "href": base_url(request) + path}


def server_links(request, instance):
    return [link(request, f"/compute/v2.1/servers/{instance.id}"),
            link(request, f"/compute/servers/{instance.id}", rel="bookmark")]


def server_summary(request, instance):
    return {"id": str(instance.id), "name": instance.name, "links": server_links(request, instance)}


def flavor_of(request, instance):
    if request.api_version >= (2, 47):
        return {"vcpus": instance.vcpus, "ram": instance.memory_mb, "disk": instance.root_gb,
                "ephemeral": instance.ephemeral_gb, "swap": instance.swap, "original_name": instance.flavor_name,
                "extra_specs": instance.flavor_extra_specs}
    return {"id": instance.flavor_id_at_boot,
            "links": [link(request, f"/compute/flavors/{instance.flavor_id_at_boot}", rel="bookmark")]}


def addresses_body(addresses):
    """Nova's `addresses`: {network name: [{version, addr, OS-EXT-IPS:type,
    OS-EXT-IPS-MAC:mac_addr}]} from network.ports.addresses_of_devices."""
    body = {}
    for address in addresses:
        body.setdefault(address["network"], []).append({
            "version": address["version"], "addr": address["addr"], "OS-EXT-IPS:type": address["type"],
            "OS-EXT-IPS-MAC:mac_addr": address["mac"]})
    return body


def addresses_of(instances):
    """{instance id: addresses body} for a page of servers, read at once."""
    found = network_ports.addresses_of_devices([instance.pk for instance in instances])
    return {instance.pk: addresses_body(found.get(str(instance.pk), [])) for instance in instances}


def volumes_attached_of(instances):
    """{instance id: [(volume id, delete_on_termination)]} for a page of servers, read at once."""
    found = attachments.attached_volume_ids([instance.pk for instance in instances])
    return {instance.pk: found[str(instance.pk)] for instance in instances}


def security_groups_of(instances):
    """{instance id: [group name]} of its ports' security groups, for a page of servers."""
    found = network_ports.security_group_names_of_devices([instance.pk for instance in instances])
    return {instance.pk: found[str(instance.pk)] for instance in instances}


def server_detail(request, instance, fault=None, addresses=None, volumes=None, security_groups=None, tags=None):
    """`fault`: the instance's latest InstanceFault (shown in ERROR);
    `addresses`, `volumes`, `security_groups`, `tags`: its addresses body, (id,
    delete_on_termination) of its attached volumes, its ports' group names and its tags (each read
    here when not given)."""
    if addresses is None:
        addresses = addresses_of([instance])[instance.pk]
    if volumes is None:
        volumes = volumes_attached_of([instance])[instance.pk]
    if security_groups is None:
        security_groups = security_groups_of([instance])[instance.pk]
    admin = request.auth.is_admin
    node = instance.node if instance.node_id else None
    status = status_of(instance)
    data = {
        "id": str(instance.id), "name": instance.name, "status": status,
        "tenant_id": instance.project_id, "user_id": instance.user_id, "metadata": instance.metadata,
        "hostId": host_id(instance),
        "image": {"id": instance.image_id, "links": [
            link(request, f"/compute/images/{instance.image_id}", rel="bookmark")]} if instance.image_id else "",
        "flavor": flavor_of(request, instance),
        "created": nova_time(instance.created_at), "updated": nova_time(instance.updated_at),
        "addresses": addresses,
        "accessIPv4": instance.access_ipv4, "accessIPv6": instance.access_ipv6,
        "links": server_links(request, instance),
        "OS-DCF:diskConfig": disk_config_of(instance),
        "OS-EXT-AZ:availability_zone": node.availability_zone if node else instance.availability_zone,
        "config_drive": "True" if instance.config_drive else "",
        "key_name": instance.key_name,
        "OS-SRV-USG:launched_at": instance.launched_at.strftime("%Y-%m-%dT%H:%M:%S.%f")
        if instance.launched_at else None,
        "OS-SRV-USG:terminated_at": instance.terminated_at.strftime("%Y-%m-%dT%H:%M:%S.%f")
        if instance.terminated_at else None,
        "OS-EXT-STS:task_state": instance.task_state,
        "OS-EXT-STS:vm_state": instance.vm_state,
        "OS-EXT-STS:power_state": instance.power_state,
        # Nova adds delete_on_termination from 2.3: a hot-attached volume's
        # is false, a boot mapping's what it asked.
        "os-extended-volumes:volumes_attached": [
            {"id": volume_id, **({"delete_on_termination": on_termination} if request.api_version >= (2, 3) else {})}
            for volume_id, on_termination in volumes],
    }
    if security_groups:
        # As Nova with Neutron: the groups of the server's ports, by name.
        data["security_groups"] = [{"name": name} for name in security_groups]
    if status in PROGRESS_STATUSES:
        data["progress"] = instance.progress
    if admin:
        data.update({
            "OS-EXT-SRV-ATTR:host": instance.host,
            "OS-EXT-SRV-ATTR:instance_name": f"instance-{instance.id}",
            "OS-EXT-SRV-ATTR:hypervisor_hostname": node.hypervisor_hostname if node else None,
        })
        if request.api_version >= (2, 3):
            data.update({
                "OS-EXT-SRV-ATTR:reservation_id": instance.reservation_id,
                "OS-EXT-SRV-ATTR:launch_index": instance.launch_index,
                "OS-EXT-SRV-ATTR:hostname": instance.hostname,
                "OS-EXT-SRV-ATTR:kernel_id": "", "OS-EXT-SRV-ATTR:ramdisk_id": "",
                "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                "OS-EXT-SRV-ATTR:user_data": instance.user_data,
            })
        if request.api_version >= (2, 16):
            data["host_status"] = host_status(instance)
    if request.api_version >= (2, 9):
        data["locked"] = instance.locked
    if request.api_version >= (2, 19):
        data["description"] = instance.description
    if request.api_version >= (2, 26):
        data["tags"] = tags if tags is not None else tags_of([instance])[instance.pk]
    if fault is not None and instance.vm_state == VmState.ERROR:
        data["fault"] = {"code": fault.code, "created": nova_time(fault.created_at), "message": fault.message}
        if admin:
            data["fault"]["details"] = fault.details
    return data


# What Nova's PUT /servers/{id} and rebuild leave out of the server below
# 2.75 (from 2.75 they answer what GET does; Stratus serves up to 2.60).
NOT_IN_UPDATE_BODY = ("OS-EXT-AZ:availability_zone", "config_drive", "key_name", "OS-SRV-USG:launched_at",
                      "OS-SRV-USG:terminated_at", "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state",
                      "OS-EXT-STS:power_state", "os-extended-volumes:volumes_attached", "security_groups",
                      "host_status")


def server_update_body(request, instance, key_name=False):
    """The server as an update or a rebuild answers it: no extension
    attributes (`key_name` kept when asked: a rebuild from 2.54) and
    addresses with only their version and address."""
    body = server_detail(request, instance)
    for key in list(body):
        if (key in NOT_IN_UPDATE_BODY and not (key_name and key == "key_name")) or \
                key.startswith("OS-EXT-SRV-ATTR:"):
            del body[key]
    body["addresses"] = {network: [{"version": address["version"], "addr": address["addr"]} for address in rows]
                         for network, rows in body["addresses"].items()}
    return body


def host_status(instance):
    if not instance.host or not instance.node_id:
        return ""
    node = instance.node
    if node.disabled:
        return "MAINTENANCE"
    return "UP" if node.is_up else "UNKNOWN"
