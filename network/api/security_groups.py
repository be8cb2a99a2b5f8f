"""Security groups and their rules; a project's `default` group is made on
its first use."""
import ipaddress

from django.db import transaction

from network import changes, errors, quotas
from network.api import serializers as bodies
from network.api.base import NeutronViewSet, as_int, as_uuid
from network.models import SecurityGroup, SecurityGroupRule
from network.ports import default_security_group

# Protocol names Neutron accepts, and their IP protocol numbers.
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132, "gre": 47, "esp": 50,
             "ah": 51, "vrrp": 112, "igmp": 2, "udplite": 136, "dccp": 33}
PORTED = {"tcp", "udp", "sctp", "udplite", "dccp", "6", "17", "132", "136", "33"}
ICMP = {"icmp", "icmpv6", "ipv6-icmp", "1", "58"}


def render_rule(rule):
    return {
        "id": str(rule.id), "project_id": rule.project_id, "tenant_id": rule.project_id,
        "security_group_id": str(rule.security_group_id), "direction": rule.direction,
        "ethertype": rule.ethertype, "protocol": rule.protocol, "port_range_min": rule.port_range_min,
        "port_range_max": rule.port_range_max, "remote_ip_prefix": rule.remote_ip_prefix,
        "normalized_cidr": rule.remote_ip_prefix,
        "remote_group_id": str(rule.remote_group_id) if rule.remote_group_id else None,
        "remote_address_group_id": None, "description": rule.description,
        "created_at": rule.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated_at": rule.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "revision_number": rule.revision_number,
    }


class SecurityGroupViewSet(NeutronViewSet):
    queryset = SecurityGroup.objects.prefetch_related("rules")
    serializer_class = bodies.SecurityGroupSerializer
    kind, member_name, collection_name = "SecurityGroup", "security_group", "security_groups"
    filters = {"stateful": ("stateful", lambda value, field: value.lower() == "true")}

    def list(self, request, *args, **kwargs):
        default_security_group(self.caller.project_id)
        return super().list(request, *args, **kwargs)

    def render(self, group, tags):
        body = self.common(group, tags)
        body.update({"stateful": group.stateful,
                     "security_group_rules": [render_rule(rule) for rule in group.rules.all()]})
        return body

    def create(self, request, *args, **kwargs):
        values = self.validated()
        project_id = self.owner_of(values)
        if values.get("name") == "default":
            raise errors.conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
        default_security_group(project_id)
        with transaction.atomic():
            quotas.reserve(project_id, "security_group")
            group = SecurityGroup.objects.create(project_id=project_id, **values)
            # A new group lets its ports talk out, as Neutron's do.
            SecurityGroupRule.objects.bulk_create([
                SecurityGroupRule(project_id=project_id, security_group=group, direction="egress", ethertype=ether)
                for ether in ("IPv4", "IPv6")])
        return self.show(self.get_queryset().get(pk=group.pk), 201)

    def partial_update(self, request, *args, **kwargs):
        group = self.writable(self.get_object())
        values = self.validated(partial=True)
        if group.name == "default" and values.get("name", "default") != "default":
            raise errors.conflict("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
        if group.name != "default" and values.get("name") == "default":
            # A project has one default group; renaming another to it is
            # the same conflict as creating a second one.
            raise errors.conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
        with transaction.atomic():
            for name, value in values.items():
                setattr(group, name, value)
            group.save()
        return self.show(self.get_queryset().get(pk=group.pk))

    def perform_destroy(self, group):
        if group.name == "default" and not self.caller.is_admin:
            raise errors.conflict("SecurityGroupCannotRemoveDefault", "Removing default security group not allowed.")
        if group.ports.exists():
            raise errors.conflict("SecurityGroupInUse", f"Security Group {group.id} in use.")
        group.delete()


class SecurityGroupRuleViewSet(NeutronViewSet):
    queryset = SecurityGroupRule.objects.all()
    serializer_class = bodies.SecurityGroupRuleSerializer
    bulk = True
    kind, member_name, collection_name = "SecurityGroupRule", "security_group_rule", "security_group_rules"
    tagged = False
    filters = {"security_group_id": ("security_group_id", as_uuid), "direction": "direction",
               "ethertype": "ethertype", "protocol": "protocol", "port_range_min": ("port_range_min", as_int),
               "port_range_max": ("port_range_max", as_int), "remote_ip_prefix": "remote_ip_prefix",
               "remote_group_id": ("remote_group_id", as_uuid)}
    policy = {**NeutronViewSet.policy, "partial_update": "admin", "update": "admin"}
    # Neutron's rules cannot be changed, only made and deleted.
    http_method_names = ["get", "post", "delete", "head", "options"]

    def render(self, rule, tags):
        return render_rule(rule)

    def group(self, group_id, lock=False):
        if as_uuid(group_id, "security_group_id") is None:
            raise errors.not_found("SecurityGroup", group_id)
        groups = SecurityGroup.objects.filter(pk=group_id)
        if lock:
            # Until commit: a group deleted meanwhile is a 404, not a rule left pointing at nothing.
            groups = groups.select_for_update(no_key=True)
        if not self.caller.is_admin:
            groups = groups.filter(project_id=self.caller.project_id)
        group = groups.first()
        if group is None:
            raise errors.not_found("SecurityGroup", group_id)
        return group

    @staticmethod
    def check_protocol(values):
        """Neutron's checks of protocol, ports and remote."""
        protocol = values.get("protocol")
        if protocol is not None:
            protocol = str(protocol).lower()
            if protocol in ("any", "", "0"):
                protocol = None
            elif protocol not in PROTOCOLS and not (protocol.isdigit() and 0 <= int(protocol) <= 255):
                raise errors.bad_request("SecurityGroupRuleInvalidProtocol",
                                         f"Security group rule protocol {protocol} not supported. Only protocol "
                                         f"values {sorted(PROTOCOLS)} and integer representations [0 to 255] "
                                         f"are supported.")
        values["protocol"] = protocol
        low, high = values.get("port_range_min"), values.get("port_range_max")
        for port in (low, high):
            if port is not None and not 0 <= port <= 65535:
                raise errors.bad_request("SecurityGroupInvalidPortValue", f"Invalid value for port {port}")
        if protocol is None and (low is not None or high is not None):
            raise errors.bad_request("SecurityGroupProtocolRequiredWithPorts",
                                     "Must also specify protocol if port range is given.")
        if protocol in PORTED:
            if low is None and high is not None:
                raise errors.bad_request("SecurityGroupInvalidPortRange",
                                         "For TCP/UDP protocols, port_range_min must be <= port_range_max")
            if high is None:
                high = low
            if low is not None and (low < 1 or high > 65535 or low > high):
                raise errors.bad_request("SecurityGroupInvalidPortRange",
                                         "For TCP/UDP protocols, port_range_min must be <= port_range_max")
        elif protocol in ICMP:
            for field, value in (("type", low), ("code", high)):
                if value is not None and value > 255:
                    raise errors.bad_request("SecurityGroupInvalidIcmpValue",
                                             f"Invalid value for ICMP {field} (port-range-"
                                             f"{'min' if field == 'type' else 'max'}): {value}. It must be 0 to 255.")
            if high is not None and low is None:
                raise errors.bad_request("SecurityGroupMissingIcmpType",
                                         f"ICMP code (port-range-max) {high} is provided but ICMP type "
                                         f"(port-range-min) is missing.")
        elif low is not None or high is not None:
            raise errors.bad_request("SecurityGroupInvalidProtocolForPort",
                                     f"Invalid protocol {protocol} for port range, only supported for TCP, UDP, "
                                     f"UDPLITE, SCTP and DCCP.")
        values["port_range_min"], values["port_range_max"] = low, high
        ethertype = values.setdefault("ethertype", "IPv4")
        prefix = values.get("remote_ip_prefix")
        if prefix is not None and values.get("remote_group_id") is not None:
            raise errors.bad_request("SecurityGroupRemoteGroupAndRemoteIpPrefix",
                                     "Only remote_ip_prefix or remote_group_id may be provided.")
        if prefix is not None and ipaddress.ip_network(prefix).version != int(ethertype[-1]):
            raise errors.bad_request("SecurityGroupRuleParameterConflict",
                                     f"Conflicting value ethertype {ethertype} for CIDR {prefix}")

    def create_one(self):
        values = self.validated()
        self.owner_of(values)  # a rule belongs to its group's project; only an admin may name another
        values.pop("remote_address_group_id", None)
        self.check_protocol(values)
        group_id, remote = values.pop("security_group_id"), values.pop("remote_group_id", None)
        project_id = self.group(group_id).project_id
        with transaction.atomic():
            # The project's quota lock first, as every create takes it.
            quotas.reserve(project_id, "security_group_rule")
            group = self.group(group_id, lock=True)
            remote_group = self.group(remote, lock=True) if remote is not None else None
            existing = SecurityGroupRule.objects.filter(
                security_group=group, direction=values["direction"], ethertype=values["ethertype"],
                protocol=values["protocol"], port_range_min=values["port_range_min"],
                port_range_max=values["port_range_max"], remote_ip_prefix=values.get("remote_ip_prefix"),
                remote_group=remote_group).first()
            if existing is not None:
                raise errors.conflict("SecurityGroupRuleExists",
                                      f"Security group rule already exists. Rule id is {existing.id}.")
            rule = SecurityGroupRule.objects.create(security_group=group, project_id=group.project_id,
                                                    remote_group=remote_group, **values)
            changes.security_group_changed(group.pk)
        return self.show(rule, 201)

    def perform_destroy(self, rule):
        changes.security_group_changed(rule.security_group_id)
        rule.delete()
