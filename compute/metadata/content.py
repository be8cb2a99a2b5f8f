"""What an instance learns about itself, in Nova's layouts: the OpenStack
tree (meta_data.json, user_data, network_data.json, vendor_data.json) and
the EC2 tree (meta-data/..., user-data). The metadata API serves it and
the node writes it on the config drive: both from `InstanceMetadata`, so
the two never differ."""
import base64
import binascii
import ipaddress
import json

from compute.models import DEFAULT_AVAILABILITY_ZONE
from network import ports as network_ports
from network.models import FloatingIP

# The dated versions Nova serves, oldest first ("latest" is the newest).
OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06",
                      "2017-02-22", "2018-08-27", "2020-10-14")
EC2_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01",
                "2008-09-01", "2009-04-04")
LATEST = "latest"

# From which OpenStack version on each file exists (as in Nova).
OPENSTACK_FILES_SINCE = {
    "meta_data.json": "2012-08-10",
    "user_data": "2012-08-10",
    "vendor_data.json": "2013-10-17",
    "network_data.json": "2015-10-15",
    "vendor_data2.json": "2016-10-06",
}


# The password file, in the metadata service only (never on a config
# drive), from this version on; and the most a guest may post to it.
PASSWORD_SINCE = "2013-04-04"
PASSWORD_MAX_BYTES = 256


def has_password_file(version):
    return version == LATEST or version >= PASSWORD_SINCE


def openstack_version_exists(version):
    return version == LATEST or version in OPENSTACK_VERSIONS


def ec2_version_exists(version):
    return version == LATEST or version in EC2_VERSIONS


def _short_id(prefix, value):
    """EC2's i-%08x / ami-%08x: the first 32 bits of a UUID."""
    text = str(value).replace("-", "")
    try:
        number = int(text[:8], 16)
    except ValueError:
        number = binascii.crc32(str(value).encode())
    return f"{prefix}-{number:08x}"


def _json(data):
    return json.dumps(data, sort_keys=True).encode()


class InstanceMetadata:
    """An instance's metadata, read once from its row and its ports."""

    def __init__(self, instance):
        self.instance = instance
        self.ports = list(network_ports.ports_of_device(str(instance.pk))
                          .select_related("network").prefetch_related("fixed_ips__subnet", "security_groups")
                          .order_by("created_at", "id"))
        self.floating_ips = {}
        for floating in FloatingIP.objects.filter(port__in=self.ports).order_by("created_at"):
            self.floating_ips.setdefault(floating.port_id, []).append(floating.floating_ip_address)

    # -- the OpenStack tree -------------------------------------------------

    @property
    def availability_zone(self):
        node = self.instance.node
        return (node.availability_zone if node else None) or self.instance.availability_zone or \
            DEFAULT_AVAILABILITY_ZONE

    def meta_data(self):
        instance = self.instance
        keys = []
        if instance.key_name and instance.key_data:
            keys.append({"name": instance.key_name, "type": "ssh", "data": instance.key_data})
        return {
            "uuid": str(instance.pk),
            "name": instance.name,
            "hostname": instance.hostname,
            "launch_index": instance.launch_index,
            "availability_zone": self.availability_zone,
            "project_id": instance.project_id,
            "public_keys": {key["name"]: key["data"] for key in keys},
            "keys": keys,
            "meta": {str(k): str(v) for k, v in (instance.metadata or {}).items()},
            "devices": [],
            # Nova's key for the admin password; only once one was set.
            **({"admin_pass": instance.admin_password} if instance.admin_password else {}),
        }

    def user_data(self):
        """The user data as the user gave it (decoded from the API's
        base64), or None."""
        if not self.instance.user_data:
            return None
        return base64.b64decode(self.instance.user_data)

    def network_data(self):
        """Nova's network_data.json: a link per port, a network per fixed
        IP (static, or DHCP where the subnet has it), the DNS servers."""
        links, networks, services = [], [], []
        for port in self.ports:
            link_id = f"tap{str(port.pk)[:11]}"
            links.append({"id": link_id, "vif_id": str(port.pk), "type": "bridge", "mtu": port.network.mtu,
                          "ethernet_mac_address": port.mac_address})
            for fixed in port.fixed_ips.all():
                subnet = fixed.subnet
                cidr = ipaddress.ip_network(subnet.cidr)
                routes = [_route(destination, nexthop) for destination, nexthop in _host_routes(subnet)]
                if subnet.gateway_ip and cidr.version == 4:
                    routes.append({"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": subnet.gateway_ip})
                kind = f"ipv{cidr.version}" + ("_dhcp" if subnet.enable_dhcp and cidr.version == 4 else "")
                dns = [{"type": "dns", "address": address} for address in subnet.dns_nameservers]
                networks.append({
                    "id": f"network{len(networks)}", "type": kind, "link": link_id,
                    "ip_address": fixed.ip_address, "netmask": str(cidr.netmask), "routes": routes,
                    "network_id": str(port.network_id), "services": dns})
                services += [entry for entry in dns if entry not in services]
        return {"links": links, "networks": networks, "services": services}

    def vendor_data(self):
        return {}

    def openstack_files(self, version):
        """{file name: bytes} of one OpenStack version's directory."""
        makers = {
            "meta_data.json": lambda: _json(self.meta_data()),
            "user_data": self.user_data,
            "vendor_data.json": lambda: _json(self.vendor_data()),
            "network_data.json": lambda: _json(self.network_data()),
            "vendor_data2.json": lambda: _json({}),
        }
        files = {}
        for name, since in OPENSTACK_FILES_SINCE.items():
            if version == LATEST or version >= since:
                content = makers[name]()
                if content is not None:
                    files[name] = content
        return files

    # -- the EC2 tree -------------------------------------------------------

    def first_port_addresses(self):
        """(the first fixed IPv4 address, its floating IP or ''), Nova's
        local-ipv4 and public-ipv4."""
        for port in self.ports:
            for fixed in port.fixed_ips.all():
                if ipaddress.ip_address(fixed.ip_address).version == 4:
                    floating = self.floating_ips.get(port.pk, [])
                    return fixed.ip_address, floating[0] if floating else ""
        return "", ""

    def ec2_meta_data(self):
        """The meta-data tree: dicts are directories; a dict's `_name` is how
        its parent lists it (public-keys/ lists "0=keyname")."""
        instance = self.instance
        local_ipv4, public_ipv4 = self.first_port_addresses()
        groups = list(dict.fromkeys(group.name for port in self.ports for group in port.security_groups.all()))
        data = {
            "ami-id": _short_id("ami", instance.image_id) if instance.image_id else "",
            "ami-launch-index": str(instance.launch_index),
            "ami-manifest-path": "FIXME",
            "block-device-mapping": {"ami": "vda", "root": "/dev/vda"},
            "hostname": instance.hostname,
            "instance-action": "none",
            "instance-id": _short_id("i", instance.pk),
            "instance-type": instance.flavor_name,
            "local-hostname": instance.hostname,
            "local-ipv4": local_ipv4,
            "placement": {"availability-zone": self.availability_zone},
            "public-hostname": instance.hostname,
            "public-ipv4": public_ipv4,
            "reservation-id": instance.reservation_id,
            "security-groups": "\n".join(groups),
        }
        if instance.key_name and instance.key_data:
            data["public-keys"] = {"0": {"_name": f"0={instance.key_name}", "openssh-key": instance.key_data}}
        return data

    def ec2_version(self):
        """One EC2 version's directory: meta-data/ and user-data."""
        tree = {"meta-data": self.ec2_meta_data()}
        user_data = self.user_data()
        if user_data is not None:
            tree["user-data"] = user_data
        return tree

    # -- the config drive -----------------------------------------------------

    def config_drive_files(self):
        """{path: bytes} of the config drive (Nova's layout): every
        OpenStack version and `latest`, EC2's 2009-04-04 and `latest`."""
        files = {}
        for version in OPENSTACK_VERSIONS + (LATEST,):
            for name, content in self.openstack_files(version).items():
                files[f"openstack/{version}/{name}"] = content
        user_data = self.user_data()
        for version in ("2009-04-04", LATEST):
            files[f"ec2/{version}/meta-data.json"] = _json(_without_names(self.ec2_meta_data()))
            if user_data is not None:
                files[f"ec2/{version}/user-data"] = user_data
        return files


def _host_routes(subnet):
    for route in subnet.host_routes or []:
        if isinstance(route, dict):
            yield route.get("destination"), route.get("nexthop")
        else:
            yield route[0], route[1]


def _route(destination, nexthop):
    network = ipaddress.ip_network(destination, strict=False)
    return {"network": str(network.network_address), "netmask": str(network.netmask), "gateway": nexthop}


def _without_names(tree):
    return {key: _without_names(value) if isinstance(value, dict) else value
            for key, value in tree.items() if key != "_name"}


def ec2_listing(data):
    """Nova's ec2_md_print: a directory as its names (a subdirectory with a
    slash, or its `_name`), a leaf as itself."""
    if isinstance(data, dict):
        lines = []
        for key in sorted(data):
            if key == "_name":
                continue
            value = data[key]
            if isinstance(value, dict):
                lines.append(value.get("_name", f"{key}/"))
            else:
                lines.append(key)
        return "\n".join(lines)
    return data
