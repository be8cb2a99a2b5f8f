"""Nova's security-group proxy below microversion 2.36: os-security-groups
(list, show, create, update, delete), os-security-group-rules (create,
delete) and a server's groups (/servers/{id}/os-security-groups), answered
by the Networking API as Nova answers them from Neutron: only a group's
ingress rules show, in Nova's shape."""
import ipaddress

from rest_framework.response import Response

from cloud.errors import BadRequest, NotFound
from compute.api.base import ServiceProxy, is_uuid, require_int
from network import ports as network_ports

PROTOCOLS = ("tcp", "udp", "icmp")
MAX_TEXT = 255


def nova_rule(rule, group_names):
    """One Neutron ingress rule as Nova shows it."""
    protocol = rule["protocol"]
    low, high = rule["port_range_min"], rule["port_range_max"]
    if protocol and low is None and high is None:
        # Neutron's "any port" is Nova's whole range (-1 for ICMP's type/code).
        low, high = (1, 65535) if protocol.upper() in ("TCP", "UDP") else (-1, -1)
    body = {"id": rule["id"], "parent_group_id": rule["security_group_id"], "ip_protocol": protocol,
            "from_port": low, "to_port": high, "group": {}, "ip_range": {}}
    if rule["remote_group_id"]:
        body["group"] = {"name": group_names.get(rule["remote_group_id"], ""), "tenant_id": rule["project_id"]}
    else:
        cidr = rule["remote_ip_prefix"] or ("::/0" if rule["ethertype"] == "IPv6" else "0.0.0.0/0")
        body["ip_range"] = {"cidr": cidr}
    return body


def checked_text(body, field):
    value = body.get(field)
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise BadRequest(f"Invalid input for field '{field}': a string of at most {MAX_TEXT} characters is needed.")
    if field == "name" and not value.strip():
        raise BadRequest("Invalid input for field 'name': it must not be blank.")
    return value


class SecurityGroupProxy(ServiceProxy):
    policy = {"get": "reader", "post": "reader", "put": "reader", "delete": "reader"}

    def names_of(self, groups):
        """Names of the groups the rules of `groups` point to, by id (one call)."""
        known = {group["id"]: group["name"] for group in groups}
        wanted = {rule["remote_group_id"] for group in groups for rule in group["security_group_rules"]
                  if rule["remote_group_id"] and rule["remote_group_id"] not in known}
        if wanted:
            found = self.neutron("GET", "/security-groups", params={"id": sorted(wanted), "fields": ["id", "name"]})
            known.update((group["id"], group["name"]) for group in found["security_groups"])
        return known

    def render_all(self, groups):
        names = self.names_of(groups)
        return [{"id": group["id"], "name": group["name"], "description": group["description"],
                 "tenant_id": group["project_id"],
                 "rules": [nova_rule(rule, names) for rule in group["security_group_rules"]
                           if rule["direction"] == "ingress"]}
                for group in groups]

    def group_values(self):
        """The name and description of the request's group, as Nova checks them."""
        body = self.body("security_group")
        return {"name": checked_text(body, "name"), "description": checked_text(body, "description")}

    def group(self, group_id):
        if not is_uuid(group_id):
            raise NotFound(f"Security group {group_id} not found.")
        return self.neutron("GET", f"/security-groups/{group_id}")["security_group"]


class SecurityGroupListView(SecurityGroupProxy):
    def get(self, request):
        params = {}
        if not (request.auth.is_admin and request.query_params.get("all_tenants")):
            params["project_id"] = request.auth.project_id
        groups = self.neutron("GET", "/security-groups", params={**params, "sort_key": "name", "sort_dir": "asc"})
        return Response({"security_groups": self.render_all(groups["security_groups"])})

    def post(self, request):
        group = self.neutron("POST", "/security-groups", {"security_group": self.group_values()})["security_group"]
        return Response({"security_group": self.render_all([group])[0]})


class SecurityGroupView(SecurityGroupProxy):
    def get(self, request, group_id):
        return Response({"security_group": self.render_all([self.group(group_id)])[0]})

    def put(self, request, group_id):
        self.group(group_id)
        group = self.neutron("PUT", f"/security-groups/{group_id}",
                             {"security_group": self.group_values()})["security_group"]
        return Response({"security_group": self.render_all([group])[0]})

    def delete(self, request, group_id):
        self.group(group_id)
        self.neutron("DELETE", f"/security-groups/{group_id}")
        return Response(status=202)


def rule_ports(protocol, body):
    """(from_port, to_port) as Neutron takes them, checked as Nova does."""
    low, high = body.get("from_port"), body.get("to_port")
    if low is None and high is None:
        return None, None
    low = require_int(low, "from_port", minimum=-1, maximum=65535)
    high = require_int(high, "to_port", minimum=-1, maximum=65535)
    if protocol == "icmp":
        if not (-1 <= low <= 255 and -1 <= high <= 255):
            raise BadRequest(f"Type ({low}) and code ({high}) must be between -1 and 255 for ICMP.")
        # -1 is any type or code: Neutron's null.
        return (None if low == -1 else low), (None if high == -1 else high)
    if low < 1 or high < 1 or low > high:
        raise BadRequest(f"Invalid port range {low}:{high}. Valid TCP/UDP ports are 1 to 65535, from <= to.")
    return low, high


class SecurityGroupRuleListView(SecurityGroupProxy):
    def post(self, request):
        body = self.body("security_group_rule")
        parent = body.get("parent_group_id")
        if not isinstance(parent, str) or not is_uuid(parent):
            raise BadRequest("Invalid input for field 'parent_group_id': a security group id is needed.")
        self.group(parent)
        protocol = body.get("ip_protocol")
        if protocol is not None:
            if not isinstance(protocol, str) or protocol.lower() not in PROTOCOLS:
                raise BadRequest(f"Invalid IP protocol {protocol!r}: tcp, udp or icmp.")
            protocol = protocol.lower()
        low, high = rule_ports(protocol, body) if protocol else (None, None)
        rule = {"security_group_id": parent, "direction": "ingress", "protocol": protocol,
                "port_range_min": low, "port_range_max": high, "ethertype": "IPv4"}
        if body.get("group_id") is not None:
            if not isinstance(body["group_id"], str) or not is_uuid(body["group_id"]):
                raise BadRequest("Invalid input for field 'group_id': a security group id is needed.")
            self.group(body["group_id"])
            rule["remote_group_id"] = body["group_id"]
        else:
            cidr = body.get("cidr") or "0.0.0.0/0"
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except (TypeError, ValueError):
                raise BadRequest(f"Invalid input for field 'cidr': {cidr!r} is not a CIDR.") from None
            rule.update(remote_ip_prefix=str(network), ethertype=f"IPv{network.version}")
        made = self.neutron("POST", "/security-group-rules", {"security_group_rule": rule})["security_group_rule"]
        names = self.names_of([{"id": "", "name": "", "security_group_rules": [made]}])
        shown = nova_rule(made, names)
        if shown["ip_range"]:
            # Nova answers the create with the CIDR as it was given (10.2.3.124/24).
            shown["ip_range"] = {"cidr": cidr}
        return Response({"security_group_rule": shown})


class SecurityGroupRuleView(SecurityGroupProxy):
    def delete(self, request, rule_id):
        if not is_uuid(rule_id):
            raise NotFound(f"Security group rule {rule_id} not found.")
        self.neutron("DELETE", f"/security-group-rules/{rule_id}")
        return Response(status=202)


class ServerSecurityGroupsView(SecurityGroupProxy):
    """GET /servers/{id}/os-security-groups: the groups of the server's ports."""

    def get(self, request, server_id):
        from compute.api.servers import find_instance

        instance = find_instance(request, server_id)
        group_ids = sorted(network_ports.security_group_ids_of_device(instance.pk))
        groups = self.neutron("GET", "/security-groups", params={"id": group_ids})["security_groups"] \
            if group_ids else []
        return Response({"security_groups": self.render_all(groups)})
