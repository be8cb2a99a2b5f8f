"""Servers: create (quota and rows in one transaction, then the boot
pipeline once it commits), list and show, update, delete, actions,
metadata. Another project's server is a 404."""
import base64
import binascii
import ipaddress
import re
import uuid
from datetime import timezone as dt_timezone
from types import SimpleNamespace

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.response import Response

from cloud.errors import ApiError, BadRequest, Conflict, NotFound
from cloud.pagination import paginate, parse_sort
from cloud.viewsets import parse_bool
from compute import block_devices, lifecycle, quotas
from compute import images as image_lookup
from compute.api import consoles, floating_ips, interfaces, server_tags
from compute.api import evacuate as evacuate_actions
from compute.api import rescue as rescue_actions
from compute.api import resize as resize_actions
from compute.api import server_images, server_password
from compute.api import shelve as shelve_actions
from compute.api.base import (
    ComputeView, begin_or_conflict, disk_config_of, is_uuid, request_ids, require_bool, require_disk_config,
    require_int, require_metadata, require_regex, require_string,
)
from compute.api.flavors import flavor_to_use
from compute.api.server_views import (
    STATUS_FILTER, addresses_of, security_groups_of, server_detail, server_links, server_summary, server_update_body,
    volumes_attached_of,
)
from compute.models import (
    LOCKED_BY_ADMIN, LOCKED_BY_OWNER, ComputeNode, Instance, InstanceAction, InstanceFault, InstanceTag, InvalidState,
    KeyPair, LockedByAdmin, ServerGroup, TaskState, UnexpectedState, VmState, finish_action, start_action,
)
from network import ports as network_ports
from network import quotas as network_quotas
from workers import pipelines

SORT_KEYS = {"created_at": "created_at", "display_name": "name", "name": "name", "updated_at": "updated_at",
             "uuid": "id", "vm_state": "vm_state", "task_state": "task_state", "launched_at": "launched_at",
             "host": "host", "availability_zone": "availability_zone", "project_id": "project_id",
             "user_id": "user_id", "key_name": "key_name", "power_state": "power_state",
             "terminated_at": "terminated_at", "hostname": "hostname", "display_description": "description"}
ADMIN_SORT_KEYS = {"host", "project_id", "user_id"}
MAX_USER_DATA = 65535


def visible_instances(request, include_deleted=False):
    instances = Instance.objects.select_related("node")
    if not include_deleted:
        instances = instances.filter(deleted=False)
    if not request.auth.is_admin:
        instances = instances.filter(project_id=request.auth.project_id)
    return instances


def find_instance(request, server_id, for_update=False):
    if not is_uuid(server_id):
        raise NotFound(f"Instance {server_id} could not be found.")
    instances = visible_instances(request)
    if for_update:
        instances = instances.select_for_update(of=("self",))
    instance = instances.filter(pk=server_id).first()
    if instance is None:
        raise NotFound(f"Instance {server_id} could not be found.")
    return instance


def latest_faults(instances):
    """{instance id: latest fault} for the instances in ERROR, in one query."""
    error_ids = [instance.pk for instance in instances if instance.vm_state == VmState.ERROR]
    faults = {}
    if error_ids:
        for fault in InstanceFault.objects.filter(instance_id__in=error_ids).order_by("-created_at", "-id"):
            faults.setdefault(fault.instance_id, fault)
    return faults


def parse_time(value, field):
    try:
        parsed = parse_datetime(value.replace(" ", "+")) if isinstance(value, str) else None
    except ValueError:  # well formed, but no such time (month 13, hour 25)
        parsed = None
    if parsed is None:
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not an ISO 8601 time.")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed


class ServerListView(ComputeView):
    policy = {"get": "reader", "post": "member"}
    detail = False

    def get(self, request):
        params = request.query_params
        admin = request.auth.is_admin
        all_tenants = "all_tenants" in params and (
            params["all_tenants"] == "" or parse_bool(params["all_tenants"], "all_tenants"))
        if all_tenants and not admin:
            raise ApiError("Policy doesn't allow listing the servers of all projects.", status=403)
        only_deleted = admin and params.get("deleted", "").lower() == "true"
        # What a list never shows stays in the database; the few nodes are
        # read once each (one query), not joined into every row.
        instances = Instance.objects.prefetch_related("node").defer("request_spec", "tried_hosts", "key_data")
        if only_deleted:
            instances = instances.filter(deleted=True)
        elif "changes-since" not in params:
            instances = instances.filter(deleted=False)
        project = params.get("project_id") or params.get("tenant_id")
        if all_tenants:
            if project:
                instances = instances.filter(project_id=project)
        elif admin and project:
            instances = instances.filter(project_id=project)
        else:
            instances = instances.filter(project_id=request.auth.project_id)
        instances = self.filter(request, instances, admin)
        sort_keys = SORT_KEYS if admin else {k: v for k, v in SORT_KEYS.items() if k not in ADMIN_SORT_KEYS}
        pairs = parse_sort(request, sort_keys, [("created_at", "desc")])
        # The marker is looked for among the servers the caller may see:
        # another project's server is no position in a member's list.
        markers = None if admin else Instance.objects.filter(project_id=request.auth.project_id)
        rows, next_url = paginate(request, instances, pairs, markers=markers)
        if self.detail:
            faults = latest_faults(rows)
            addresses, volumes, groups = addresses_of(rows), volumes_attached_of(rows), security_groups_of(rows)
            tags = server_tags.tags_of(rows) if request.api_version >= server_tags.MIN_VERSION else {}
            servers = [server_detail(request, row, faults.get(row.pk), addresses[row.pk], volumes[row.pk],
                                     groups[row.pk], tags.get(row.pk))
                       for row in rows]
        else:
            servers = [server_summary(request, row) for row in rows]
        body = {"servers": servers}
        if next_url:
            body["servers_links"] = [{"rel": "next", "href": next_url}]
        return Response(body)

    @staticmethod
    def filter(request, instances, admin):
        params = request.query_params
        if params.get("name"):
            instances = instances.filter(name__regex=require_regex(params["name"], "name"))
        for param, version in (("ip", 4), ("ip6", 6)):
            if params.get(param):
                instances = instances.filter(id__in=network_ports.devices_with_address_like(params[param], version))
        if params.get("status"):
            status = params["status"].upper()
            if status not in STATUS_FILTER:
                if request.api_version >= (2, 38):
                    raise BadRequest(f"Invalid input for field 'status': unknown server status {params['status']!r}.")
                return instances.none()
            vm_state, task_states = STATUS_FILTER[status]
            if vm_state:
                instances = instances.filter(vm_state=vm_state)
            if task_states:
                instances = instances.filter(task_state__in=task_states)
        if "changes-since" in params:
            instances = instances.filter(updated_at__gte=parse_time(params["changes-since"], "changes-since"))
        for param, column in (("image", "image_id"), ("flavor", "flavor_id_at_boot"),
                              ("reservation_id", "reservation_id"), ("key_name", "key_name"),
                              ("availability_zone", "availability_zone")):
            if params.get(param):
                value = params[param].rstrip("/").rsplit("/", 1)[-1] if param in ("image", "flavor") else params[param]
                instances = instances.filter(**{column: value})
        if admin:
            if params.get("host"):
                instances = instances.filter(host=params["host"])
            if params.get("node"):
                instances = instances.filter(node__hypervisor_hostname=params["node"])
            if params.get("user_id"):
                instances = instances.filter(user_id=params["user_id"])
        if params.get("locked") and request.api_version >= (2, 73):
            instances = instances.filter(locked=require_bool(params["locked"], "locked"))
        return server_tags.filter_by_tags(request, instances)

    def post(self, request):
        data = self.body("server")
        hints = request.data.get("os:scheduler_hints") or request.data.get("OS-SCH-HNT:scheduler_hints") or {}
        plan = BootPlan(request, data, hints)
        with transaction.atomic():
            count = quotas.reserve_boot(request.auth.project_id, plan.min_count, plan.max_count,
                                        plan.flavor.vcpus, plan.flavor.memory_mb)
            plan.check_port_quota(count)
            instances = plan.create(count)
            pipelines.boot([instance.pk for instance in instances])
        if data.get("return_reservation_id") and require_bool(data["return_reservation_id"],
                                                              "return_reservation_id"):
            return Response({"reservation_id": instances[0].reservation_id}, status=202)
        first = instances[0]
        # Nova's create body: no name (strict clients check its schema).
        body = {"id": str(first.id), "links": server_links(request, first),
                "OS-DCF:diskConfig": disk_config_of(first), "adminPass": plan.admin_pass}
        if plan.security_groups:
            body["security_groups"] = [{"name": name} for name in plan.security_groups]
        return Response({"server": body}, status=202)


class ServerDetailListView(ServerListView):
    policy = {"get": "reader"}
    detail = True


class BootPlan:
    """A validated server create request: everything is checked before any
    row is written, and each error names its field."""

    def __init__(self, request, data, hints):
        self.request = request
        credentials = request.auth
        self.name = require_string(data.get("name"), "name")
        self.description = None
        if "description" in data and request.api_version >= (2, 19):
            if data["description"] is not None:
                self.description = require_string(data["description"], "description", 255, allow_empty=True)
        self.flavor = flavor_to_use(request, data.get("flavorRef"))
        self.image = self.find_image(data)
        self.config_drive = self.check_config_drive(data.get("config_drive"))
        self.key_name, self.key_data = self.find_key(data.get("key_name"))
        self.user_data = self.check_user_data(data.get("user_data"))
        self.auto_disk_config = require_disk_config(data.get("OS-DCF:diskConfig", "MANUAL"))
        self.access_ipv4 = require_access_ip(data.get("accessIPv4"), "accessIPv4", 4)
        self.access_ipv6 = require_access_ip(data.get("accessIPv6"), "accessIPv6", 6)
        metadata = data.get("metadata", {})
        # The limit is read only when there are items to count against it.
        limit = quotas.limit_of(credentials.project_id, "metadata_items") if metadata else None
        self.metadata = require_metadata(metadata, "metadata", limit=limit)
        self.availability_zone = self.check_zone(data.get("availability_zone"))
        self.min_count = require_int(data.get("min_count", 1), "min_count", 1, 1000)
        self.max_count = require_int(data.get("max_count", self.min_count), "max_count", 1, 1000)
        if self.min_count > self.max_count:
            raise BadRequest("Invalid input for field 'min_count': min_count must be <= max_count.")
        self.networks = self.check_networks(data)
        self.security_groups = self.check_security_groups(data.get("security_groups"))
        self.block_devices = block_devices.parse(
            block_devices.with_image_mappings(data.get("block_device_mapping_v2"), self.image), credentials,
            self.image, self.max_count)
        if self.block_devices and self.block_devices[0]["boot_index"] == 0:
            self.image = None  # the root disk is the volume: the server has no image (Nova's "")
        self.group = self.find_group(hints)
        self.hints = hints if isinstance(hints, dict) else {}
        self.admin_pass = data.get("adminPass") or uuid.uuid4().hex[:12]
        self.tags = []
        if "tags" in data and request.api_version >= (2, 52):
            self.tags = server_tags.require_tags(data["tags"])

    def find_image(self, data):
        """The image of the server's local disk; None when it boots from a
        volume (imageRef "" or absent, a boot_index 0 volume mapping)."""
        image_ref = data.get("imageRef")
        if not image_ref:
            if self.boot_volume_requested(data.get("block_device_mapping_v2")):
                return None
            raise BadRequest("Invalid input for field 'imageRef': an image is required unless "
                             "block_device_mapping_v2 has a volume with boot_index 0.")
        if not isinstance(image_ref, str):
            raise BadRequest(f"Invalid input for field 'imageRef': {image_ref!r} is not an image id.")
        image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
        image = image_lookup.image_for_boot(image_id, self.request.auth.project_id, self.request.auth.is_admin)
        if image is None:
            raise BadRequest(f"Image {image_id} could not be found.")
        if image.status != "active":
            raise BadRequest(f"Image {image_id} is not active.")
        if image.min_ram and self.flavor.memory_mb < image.min_ram:
            raise BadRequest(f"Flavor's memory is too small for requested image: flavor {self.flavor.name} has "
                             f"{self.flavor.memory_mb} MiB, image {image_id} needs {image.min_ram} MiB.")
        if image.min_disk and self.flavor.root_gb and self.flavor.root_gb < image.min_disk:
            raise BadRequest(f"Flavor's disk is too small for requested image: flavor {self.flavor.name} has "
                             f"{self.flavor.root_gb} GiB, image {image_id} needs {image.min_disk} GiB.")
        image_bytes = max(image.size or 0, image.virtual_size or 0)
        if self.flavor.root_gb and image_bytes > self.flavor.root_gb * 2 ** 30:
            raise BadRequest(f"Flavor's disk is too small for requested image: flavor {self.flavor.name} has "
                             f"{self.flavor.root_gb} GiB, image {image_id} is {image_bytes} bytes.")
        return image

    def check_config_drive(self, config_drive):
        """Whether the node attaches a config drive: asked for, or demanded
        by the image (Nova's img_config_drive=mandatory)."""
        wanted = config_drive is not None and require_bool(config_drive, "config_drive")
        return wanted or self.image is not None and (self.image.properties or {}).get("img_config_drive") == \
            "mandatory"

    @staticmethod
    def boot_volume_requested(mappings):
        return isinstance(mappings, list) and any(
            isinstance(mapping, dict) and str(mapping.get("boot_index")) == "0"
            and (mapping.get("destination_type") == "volume" or mapping.get("source_type") in ("volume", "snapshot"))
            for mapping in mappings)

    def find_key(self, key_name):
        if key_name is None:
            return None, None
        keypair = KeyPair.objects.filter(user_id=self.request.auth.user_id, name=key_name).first()
        if keypair is None:
            raise BadRequest(f"Invalid key_name provided: keypair {key_name} not found.")
        return keypair.name, keypair.public_key

    @staticmethod
    def check_user_data(user_data):
        if user_data is None:
            return None
        if not isinstance(user_data, str):
            raise BadRequest("Invalid input for field 'user_data': must be base64-encoded text.")
        try:
            decoded = base64.b64decode(user_data, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("Invalid input for field 'user_data': not valid base64.")
        if len(decoded) > MAX_USER_DATA:
            raise BadRequest(f"Invalid input for field 'user_data': larger than {MAX_USER_DATA} bytes.")
        return user_data

    @staticmethod
    def check_zone(zone):
        if zone in (None, ""):
            return ""
        zone = require_string(zone, "availability_zone")
        if not ComputeNode.objects.filter(availability_zone=zone).exists():
            raise BadRequest(f"The requested availability zone is not available: {zone}.")
        return zone

    def check_port_quota(self, count):
        """Nova's check before any build: the ports the network step will
        make for `count` servers fit the project's port quota."""
        if self.networks == "none":
            return
        per_server = 1 if self.networks == "auto" else sum(1 for entry in self.networks if not entry.get("port_id"))
        free = network_quotas.headroom(self.request.auth.project_id, "port")
        if per_server and free is not None and per_server * count > free:
            raise ApiError("Maximum number of ports exceeded", status=403)

    def check_networks(self, data):
        """The networks the server is to be on, as the network step takes
        them: "none", "auto" (a network made for the project on first use)
        or a list of {"network_id", "port_id", "fixed_ip"}."""
        networks = data.get("networks")
        if networks is None:
            if self.request.api_version >= (2, 37):
                raise BadRequest("Invalid input for field 'networks': required from microversion 2.37 on "
                                 "('none', 'auto' or a list).")
            # Before 2.37 Nova puts the server on the project's one network,
            # and on none when the project has none.
            return self.default_network(ambiguous_ok=False) or "none"
        if networks in ("none", "auto"):
            if self.request.api_version < (2, 37):
                raise BadRequest(f"Invalid input for field 'networks': {networks!r} needs microversion 2.37.")
            if networks == "auto":
                return self.default_network(ambiguous_ok=False) or self.check_auto_allocation()
            return networks
        if not isinstance(networks, list):
            raise BadRequest(f"Invalid input for field 'networks': {networks!r} is not 'none', 'auto' or a list.")
        if not networks:
            return "none"
        return [self.check_requested_network(index, entry) for index, entry in enumerate(networks)]

    def default_network(self, ambiguous_ok):
        """[the project's one network] when it has exactly one, None when it
        has none; several: NetworkAmbiguous (409) as in Nova."""
        candidates = network_ports.networks_for_server_by_default(self.request.auth.project_id)
        if len(candidates) > 1 and not ambiguous_ok:
            raise Conflict("More than one possible network found. Specify network ID(s) to select which one(s) "
                           "to connect to.")
        return [{"network_id": str(candidates[0].pk), "port_id": None, "fixed_ip": None}] if candidates else None

    def check_auto_allocation(self):
        from network import topology

        if not topology.can_allocate(self.request.auth.project_id):
            raise BadRequest(f"Unable to automatically allocate a network for project "
                             f"{self.request.auth.project_id}")
        return "auto"

    def check_requested_network(self, index, entry):
        field = f"networks[{index}]"
        if not isinstance(entry, dict):
            raise BadRequest(f"Invalid input for field '{field}': must be an object with 'uuid' or 'port'.")
        unknown = set(entry) - {"uuid", "port", "fixed_ip", "tag"}
        if unknown:
            raise BadRequest(f"Invalid input for field '{field}': unknown attribute {sorted(unknown)[0]!r}.")
        credentials = self.request.auth
        port_id, network_id, fixed_ip = entry.get("port"), entry.get("uuid"), entry.get("fixed_ip")
        if port_id:
            if not isinstance(port_id, str) or not is_uuid(port_id):
                raise BadRequest(f"Invalid input for field '{field}.port': {port_id!r} is not a UUID.")
            if self.max_count > 1:
                raise BadRequest("Unable to launch multiple instances with a single configured port ID. Please "
                                 "launch your instance one by one with different ports.")
            port = network_ports.port_for_server(port_id, credentials.project_id, credentials.is_admin)
            if port is None:
                raise BadRequest(f"Port id {port_id} could not be found.")
            if port.device_id:
                raise Conflict(f"Port {port_id} is still in use.")
            return {"network_id": str(port.network_id), "port_id": str(port.pk), "fixed_ip": None}
        if not network_id:
            raise BadRequest(f"Invalid input for field '{field}': a network ('uuid') or a port ('port') is "
                             f"required.")
        if not isinstance(network_id, str) or not is_uuid(network_id):
            raise BadRequest(f"Bad networks format: network uuid is not in proper format ({network_id!r}).")
        network = network_ports.network_for_server(network_id, credentials.project_id, credentials.is_admin)
        if network is None:
            raise BadRequest(f"Network {network_id} could not be found.")
        if not network.subnets.exists():
            raise BadRequest(f"Network {network_id} requires a subnet in order to boot instances on.")
        if fixed_ip is not None:
            fixed_ip = self.check_fixed_ip(field, network, fixed_ip)
        return {"network_id": str(network.pk), "port_id": None, "fixed_ip": fixed_ip}

    def check_fixed_ip(self, field, network, fixed_ip):
        try:
            fixed_ip = str(ipaddress.ip_address(fixed_ip if isinstance(fixed_ip, str) else ""))
        except ValueError:
            raise BadRequest(f"Invalid input for field '{field}.fixed_ip': invalid fixed IP address "
                             f"({fixed_ip!r}).") from None
        if self.max_count > 1:
            raise BadRequest("Failed to launch instances: max_count cannot be greater than 1 if an fixed_ip is "
                             "specified.")
        refused = network_ports.check_fixed_ip(network, fixed_ip)
        if refused is not None:
            if refused.status == 409:
                raise BadRequest(f"Fixed IP address {fixed_ip} is already in use on network {network.pk}.")
            raise BadRequest(f"Invalid input for field '{field}.fixed_ip': {fixed_ip} is not in any subnet of "
                             f"network {network.pk}.")
        return fixed_ip

    def check_security_groups(self, groups):
        if groups is None:
            return []
        if not isinstance(groups, list) or not all(isinstance(g, dict) and isinstance(g.get("name"), str)
                                                   for g in groups):
            raise BadRequest("Invalid input for field 'security_groups': must be a list of {\"name\": ...}.")
        names = list(dict.fromkeys(group["name"] for group in groups))
        if self.networks != "none":
            project_id = self.request.auth.project_id
            missing = network_ports.missing_security_group(project_id, names)
            if missing is not None:
                raise BadRequest(f"Security group {missing} not found for project {project_id}.")
        return names

    def find_group(self, hints):
        if not isinstance(hints, dict):
            raise BadRequest("Invalid input for field 'os:scheduler_hints': must be an object.")
        group_id = hints.get("group")
        if not group_id:
            return None
        if not is_uuid(group_id):
            raise BadRequest(f"Invalid input for field 'os:scheduler_hints.group': {group_id!r} is not a UUID.")
        groups = ServerGroup.objects.filter(pk=group_id)
        if not self.request.auth.is_admin:
            groups = groups.filter(project_id=self.request.auth.project_id)
        group = groups.first()
        if group is None:
            raise BadRequest(f"Invalid input for field 'os:scheduler_hints.group': server group {group_id} "
                             f"not found.")
        return group

    def create(self, count):
        """The instances and their `create` actions; caller's transaction."""
        credentials = self.request.auth
        flavor = self.flavor
        reservation_id = f"r-{uuid.uuid4().hex[:8]}"
        now = timezone.now()
        request_spec = {"networks": self.networks, "security_groups": self.security_groups,
                        "scheduler_hints": self.hints}
        if self.block_devices:
            request_spec.update(block_devices.spec_entries(self.block_devices, credentials))
        instances = []
        for index in range(count):
            name = self.name if count == 1 else f"{self.name}-{index + 1}"
            instances.append(Instance(
                id=uuid.uuid4(), name=name, description=self.description,
                hostname=re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "server",
                project_id=credentials.project_id, user_id=credentials.user_id, flavor=flavor,
                flavor_id_at_boot=flavor.id, flavor_name=flavor.name, vcpus=flavor.vcpus,
                memory_mb=flavor.memory_mb, root_gb=flavor.root_gb, ephemeral_gb=flavor.ephemeral_gb,
                swap=flavor.swap, flavor_extra_specs=flavor.extra_specs, image_id=self.image.id if self.image else "",
                key_name=self.key_name, key_data=self.key_data, user_data=self.user_data,
                access_ipv4=self.access_ipv4, access_ipv6=self.access_ipv6, auto_disk_config=self.auto_disk_config,
                metadata=self.metadata, config_drive=self.config_drive, availability_zone=self.availability_zone,
                request_spec=request_spec, server_group=self.group, reservation_id=reservation_id, launch_index=index,
                vm_state=VmState.BUILDING, task_state=TaskState.SCHEDULING, created_at=now, updated_at=now))
        Instance.objects.bulk_create(instances)
        if self.tags:
            InstanceTag.objects.bulk_create([InstanceTag(instance=instance, tag=tag)
                                             for instance in instances for tag in self.tags])
        request_id = getattr(self.request._request, "request_id", "")
        InstanceAction.objects.bulk_create([
            InstanceAction(instance=instance, action="create", request_id=request_id,
                           user_id=credentials.user_id, project_id=credentials.project_id, start_time=now,
                           updated_at=now)
            for instance in instances])
        return instances


def require_access_ip(value, field, version):
    """accessIPv4 / accessIPv6: an address of that IP version, or empty."""
    if value in (None, ""):
        return ""
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not an IPv{version} address.")
    return str(address)


def locked_by_of(request):
    """Who a lock or unlock by this caller is: an admin or the owner."""
    return LOCKED_BY_ADMIN if request.auth.is_admin else LOCKED_BY_OWNER


def check_unlocked(request, instance):
    if instance.locked and not request.auth.is_admin:
        raise Conflict(f"Instance {instance.id} is locked.")


def check_on_live_host(instance, action):
    """An action the node carries out needs the instance on a node that is up."""
    if not instance.host or instance.node is None:
        raise Conflict(f"Cannot '{action}' instance {instance.id}: it is not on any host "
                       f"(vm_state {instance.vm_state}).")
    if not instance.node.is_up:
        raise Conflict(f"Compute host {instance.host} is not available: cannot '{action}' instance "
                       f"{instance.id} now.")


class ServerView(ComputeView):
    policy = {"get": "reader", "put": "member", "delete": "member"}

    def get(self, request, server_id):
        instance = find_instance(request, server_id)
        fault = None
        if instance.vm_state == VmState.ERROR:
            fault = InstanceFault.objects.filter(instance_id=instance.pk).order_by("-created_at", "-id").first()
        return Response({"server": server_detail(request, instance, fault)})

    def put(self, request, server_id):
        data = self.body("server")
        allowed = {"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}
        if request.api_version >= (2, 19):
            allowed.add("description")
        unknown = set(data) - allowed
        if unknown:
            raise BadRequest(f"Invalid input for field 'server': unknown attribute {sorted(unknown)[0]!r}.")
        with transaction.atomic():
            instance = find_instance(request, server_id, for_update=True)
            check_unlocked(request, instance)
            fields = {}
            if "name" in data:
                fields["name"] = require_string(data["name"], "name")
            if "description" in data:
                fields["description"] = None if data["description"] is None else require_string(
                    data["description"], "description", allow_empty=True)
            for key, column, version in (("accessIPv4", "access_ipv4", 4), ("accessIPv6", "access_ipv6", 6)):
                if key in data:
                    fields[column] = require_access_ip(data[key], key, version)
            if "OS-DCF:diskConfig" in data:
                fields["auto_disk_config"] = require_disk_config(data["OS-DCF:diskConfig"])
            fields["updated_at"] = timezone.now()
            Instance.objects.filter(pk=instance.pk).update(**fields)
            for key, value in fields.items():
                setattr(instance, key, value)
        return Response({"server": server_update_body(request, instance)})

    def delete(self, request, server_id):
        instance = find_instance(request, server_id)
        check_unlocked(request, instance)
        delete_instance(request, instance)
        return Response(status=204)


def delete_instance(request, instance):
    try:
        lifecycle.delete(instance, *request_ids(request))
    except InvalidState as error:
        raise Conflict(str(error)) from None


# Server actions on the node: body key -> (transition name, action name recorded).
POWER_ACTIONS = {
    "os-start": ("start", "start"), "os-stop": ("stop", "stop"), "pause": ("pause", "pause"),
    "unpause": ("unpause", "unpause"), "suspend": ("suspend", "suspend"), "resume": ("resume", "resume"),
}


class ServerActionView(ComputeView):
    policy = {"post": "member"}

    def post(self, request, server_id):
        data = request.data
        if not isinstance(data, dict) or len(data) != 1:
            raise BadRequest("Invalid input: the body must hold exactly one action, e.g. {\"os-stop\": null}.")
        (name, argument), = data.items()
        instance = find_instance(request, server_id)
        if name == "os-getConsoleOutput":
            return consoles.console_output(instance, argument)
        if name == "lock":
            return self.lock(request, instance, argument)
        if name == "unlock":
            return self.unlock(request, instance)
        if name == "os-resetState":
            return self.reset_state(request, instance, argument)
        if name == "os-getVNCConsole":
            return consoles.vnc_console(instance, argument)
        if name == "reboot":
            if not isinstance(argument, dict) or str(argument.get("type", "")).upper() not in ("SOFT", "HARD"):
                raise BadRequest("Invalid input for field 'reboot.type': must be 'SOFT' or 'HARD'.")
            transition = "reboot_hard" if argument["type"].upper() == "HARD" else "reboot_soft"
            return self.power(request, instance, transition, "reboot")
        if name in POWER_ACTIONS:
            transition, action = POWER_ACTIONS[name]
            return self.power(request, instance, transition, action)
        if name == "rebuild":
            return self.rebuild(request, instance, argument)
        if name in ("resize", "migrate", "revertResize"):
            check_unlocked(request, instance)
            check_on_live_host(instance, name)
            if name == "resize":
                return resize_actions.resize(request, instance, argument)
            if name == "migrate":
                return resize_actions.migrate(request, instance, argument)
            return resize_actions.revert_resize(request, instance)
        if name in ("shelve", "shelveOffload"):
            check_unlocked(request, instance)
            check_on_live_host(instance, name)
            if name == "shelve":
                return shelve_actions.shelve(request, instance, argument)
            return shelve_actions.shelve_offload(request, instance, argument)
        if name == "unshelve":
            check_unlocked(request, instance)
            return shelve_actions.unshelve(request, instance, argument)
        if name in ("rescue", "unrescue"):
            check_unlocked(request, instance)
            check_on_live_host(instance, name)
            if name == "rescue":
                return rescue_actions.rescue(request, instance, argument)
            return rescue_actions.unrescue(request, instance, argument)
        if name == "evacuate":
            return evacuate_actions.evacuate(request, instance, argument)
        if name == "changePassword":
            check_unlocked(request, instance)
            return server_password.change_password(request, instance, argument)
        if name == "createImage":
            check_on_live_host(instance, name)
            return server_images.create_image(request, instance, argument)
        if name == "createBackup":
            check_on_live_host(instance, name)
            return server_images.create_backup(request, instance, argument)
        if name in interfaces.ACTIONS:
            check_unlocked(request, instance)
            return interfaces.ACTIONS[name](request, instance, argument)
        if name in floating_ips.ACTIONS and request.api_version < (2, 44):
            check_unlocked(request, instance)
            return floating_ips.ACTIONS[name](request, instance, argument)
        if name == "confirmResize":
            check_unlocked(request, instance)
            return resize_actions.confirm_resize(request, instance)
        raise BadRequest(f"There is no such action: {name}.")

    def power(self, request, instance, transition, action):
        check_unlocked(request, instance)
        check_on_live_host(instance, action)
        with transaction.atomic():
            begin_or_conflict(instance, transition)
            start_action(instance, action, *request_ids(request))
            pipelines.power_action(instance.pk, instance.host, transition)
        return Response(status=202)

    def rebuild(self, request, instance, argument):
        """A new root disk from `imageRef` (checked as on create, against
        the server's flavor), optionally a new name and metadata."""
        if not isinstance(argument, dict):
            raise BadRequest("Invalid input for field 'rebuild': must be an object holding 'imageRef'.")
        if not argument.get("imageRef"):
            raise BadRequest("Invalid input for field 'rebuild.imageRef': an image is required.")
        if block_devices.boots_from_volume(instance):
            # Nova's words before 2.93: the root disk is a volume, not the image's.
            raise BadRequest("Unable to rebuild with a different image for a volume-backed server.")
        flavor = SimpleNamespace(name=instance.flavor_name, memory_mb=instance.memory_mb, root_gb=instance.root_gb)
        image = BootPlan.find_image(SimpleNamespace(request=request, flavor=flavor), argument)
        changes = {}
        if "name" in argument:
            changes["name"] = require_string(argument["name"], "name")
        if "metadata" in argument:
            limit = quotas.limit_of(request.auth.project_id, "metadata_items")
            changes["metadata"] = require_metadata(argument["metadata"], "metadata", limit=limit)
        for key, column, version in (("accessIPv4", "access_ipv4", 4), ("accessIPv6", "access_ipv6", 6)):
            if key in argument:
                changes[column] = require_access_ip(argument[key], key, version)
        if "description" in argument and request.api_version >= (2, 19):
            changes["description"] = None if argument["description"] is None else require_string(
                argument["description"], "description", 255, allow_empty=True)
        if "OS-DCF:diskConfig" in argument:
            changes["auto_disk_config"] = require_disk_config(argument["OS-DCF:diskConfig"])
        if "key_name" in argument and request.api_version >= (2, 54):
            # A new key, or none (null), as Nova's rebuild from 2.54.
            plan = SimpleNamespace(request=request)
            changes["key_name"], changes["key_data"] = BootPlan.find_key(plan, argument["key_name"])
        if "user_data" in argument and request.api_version >= (2, 57):
            changes["user_data"] = BootPlan.check_user_data(argument["user_data"])
        admin_pass = require_string(argument["adminPass"], "adminPass", allow_empty=True) \
            if "adminPass" in argument else uuid.uuid4().hex[:12]
        check_unlocked(request, instance)
        check_on_live_host(instance, "rebuild")
        with transaction.atomic():
            begin_or_conflict(instance, "rebuild")
            Instance.objects.filter(pk=instance.pk).update(image_id=image.id, updated_at=timezone.now(), **changes)
            start_action(instance, "rebuild", *request_ids(request))
            pipelines.rebuild(instance.pk, instance.host)
        instance.refresh_from_db()
        body = server_update_body(request, instance, key_name=request.api_version >= (2, 54))
        body["adminPass"] = admin_pass
        if request.api_version >= (2, 57):
            body["user_data"] = instance.user_data
        return Response({"server": body}, status=202)

    def lock(self, request, instance, argument):
        reason = None
        if isinstance(argument, dict) and argument.get("locked_reason") is not None:
            if request.api_version < (2, 73):
                raise BadRequest("Invalid input for field 'lock': locked_reason needs microversion 2.73.")
            reason = require_string(argument["locked_reason"], "locked_reason")
        with transaction.atomic():
            instance.lock(locked_by_of(request), reason)
            action = start_action(instance, "lock", *request_ids(request))
            finish_action(instance, action)
        return Response(status=202)

    def unlock(self, request, instance):
        with transaction.atomic():
            try:
                instance.unlock(locked_by_of(request))
            except LockedByAdmin as error:
                raise Conflict(str(error)) from None
            action = start_action(instance, "unlock", *request_ids(request))
            finish_action(instance, action)
        return Response(status=202)

    def reset_state(self, request, instance, argument):
        if not request.auth.is_admin:
            raise ApiError("Policy doesn't allow os-resetState to be performed.", status=403)
        state = argument.get("state") if isinstance(argument, dict) else None
        if state not in (VmState.ACTIVE, VmState.ERROR):
            raise BadRequest("Invalid input for field 'os-resetState.state': must be 'active' or 'error'.")
        with transaction.atomic():
            try:
                instance.reset_state(state)
            except UnexpectedState:
                raise NotFound(f"Instance {instance.id} could not be found.")
            action = start_action(instance, "reset_state", *request_ids(request))
            finish_action(instance, action)
        return Response(status=202)


def change_metadata(request, server_id, change):
    """Replaces a server's metadata by change(current), the row locked so
    concurrent writers do not lose each other's keys; the result must stay
    within the project's metadata_items quota."""
    limit = quotas.limit_of(request.auth.project_id, "metadata_items")
    with transaction.atomic():
        instance = find_instance(request, server_id, for_update=True)
        check_unlocked(request, instance)
        metadata = require_metadata(change(instance.metadata), limit=limit)
        Instance.objects.filter(pk=instance.pk).update(metadata=metadata, updated_at=timezone.now())
    return metadata


class RemoteConsoleView(ComputeView):
    """POST /servers/{id}/remote-consoles (2.6+)."""

    policy = {"post": "member"}

    def post(self, request, server_id):
        if request.api_version < (2, 6):
            raise NotFound("Remote consoles need microversion 2.6 or later (before: os-getVNCConsole).")
        body = self.body("remote_console")
        if body.get("protocol") != "vnc":
            raise BadRequest(f"Invalid input for field 'remote_console.protocol': {body.get('protocol')!r} is "
                             f"not offered; Stratus offers 'vnc'.")
        instance = find_instance(request, server_id)
        url = consoles.novnc_url_of(instance, body.get("type"))
        return Response({"remote_console": {"protocol": "vnc", "type": "novnc", "url": url}})


class MetadataView(ComputeView):
    """/servers/{id}/metadata: GET, POST (merge), PUT (replace)."""

    policy = {"get": "reader", "post": "member", "put": "member"}

    def get(self, request, server_id):
        return Response({"metadata": find_instance(request, server_id).metadata})

    def post(self, request, server_id):
        new = self.new_metadata(request)
        return Response({"metadata": change_metadata(request, server_id, lambda current: {**current, **new})})

    def put(self, request, server_id):
        new = self.new_metadata(request)
        return Response({"metadata": change_metadata(request, server_id, lambda current: new)})

    @staticmethod
    def new_metadata(request):
        if not isinstance(request.data, dict) or "metadata" not in request.data:
            raise BadRequest("Invalid input for field 'metadata': the body must be {\"metadata\": {...}}.")
        return require_metadata(request.data["metadata"])


class MetadataItemView(ComputeView):
    policy = {"get": "reader", "put": "member", "delete": "member"}

    def get(self, request, server_id, key):
        metadata = find_instance(request, server_id).metadata
        if key not in metadata:
            raise NotFound(f"Metadata item {key} was not found.")
        return Response({"meta": {key: metadata[key]}})

    def put(self, request, server_id, key):
        meta = request.data.get("meta") if isinstance(request.data, dict) else None
        if not isinstance(meta, dict) or list(meta) != [key]:
            raise BadRequest("Invalid input for field 'meta': must hold exactly the key in the URL.")
        require_metadata(meta, "meta")
        change_metadata(request, server_id, lambda current: {**current, **meta})
        return Response({"meta": meta})

    def delete(self, request, server_id, key):
        def without_key(current):
            if key not in current:
                raise NotFound(f"Metadata item {key} was not found.")
            return {k: v for k, v in current.items() if k != key}

        change_metadata(request, server_id, without_key)
        return Response(status=204)
