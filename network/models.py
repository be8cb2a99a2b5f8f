"""Neutron's resources as rows the node agent converges the kernel to:
a network carries its segment (VXLAN VNI or flat physical network), a port
its MAC, fixed IPs, binding host and status (DOWN until plumbed)."""
import uuid
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from network.agent import resources


def new_id():
    return uuid.uuid4()


class NetworkResource(models.Model):
    """What every Neutron resource has: id, owner, name, description,
    timestamps and a revision bumped on every write."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    project_id = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=255, blank=True, default="")
    description = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    revision_number = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            self.revision_number += 1
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "revision_number", "updated_at"}
        super().save(*args, **kwargs)


class Network(NetworkResource):
    class Type(models.TextChoices):
        VXLAN = "vxlan"
        FLAT = "flat"

    admin_state_up = models.BooleanField(default=True)
    status = models.CharField(max_length=16, default="ACTIVE")
    shared = models.BooleanField(default=False)
    external = models.BooleanField(default=False)  # router:external
    port_security_enabled = models.BooleanField(default=True)
    mtu = models.PositiveIntegerField(default=1450)
    network_type = models.CharField(max_length=16, choices=Type.choices, default=Type.VXLAN)
    physical_network = models.CharField(max_length=64, null=True, blank=True)
    segmentation_id = models.PositiveIntegerField(null=True, blank=True)
    availability_zone_hints = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            # One VNI is one tenant network; one flat physical network is one network.
            models.UniqueConstraint(fields=["segmentation_id"], condition=Q(network_type="vxlan"),
                                    name="network_unique_vni"),
            models.UniqueConstraint(fields=["physical_network"], condition=Q(network_type="flat"),
                                    name="network_unique_flat_physnet"),
        ]


class SubnetPool(NetworkResource):
    """Prefixes subnets are cut from (Neutron's subnet_allocation): a
    subnet that names the pool gets a free block of its prefixes."""

    ip_version = models.PositiveSmallIntegerField(default=4)
    prefixes = models.JSONField(default=list)  # CIDRs, collapsed
    default_prefixlen = models.PositiveSmallIntegerField()
    min_prefixlen = models.PositiveSmallIntegerField()
    max_prefixlen = models.PositiveSmallIntegerField()
    shared = models.BooleanField(default=False)
    is_default = models.BooleanField(default=False)


class Subnet(NetworkResource):
    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="subnets")
    subnetpool = models.ForeignKey(SubnetPool, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="subnets")
    ip_version = models.PositiveSmallIntegerField(default=4)
    cidr = models.CharField(max_length=64)
    gateway_ip = models.GenericIPAddressField(null=True, blank=True)
    allocation_pools = models.JSONField(default=list)  # [{"start": ip, "end": ip}]
    dns_nameservers = models.JSONField(default=list)
    host_routes = models.JSONField(default=list)  # [{"destination": cidr, "nexthop": ip}]
    enable_dhcp = models.BooleanField(default=True)
    # IPv6 only: how hosts get addresses (slaac, dhcpv6-stateful,
    # dhcpv6-stateless) and who sends router advertisements; None: static.
    ipv6_ra_mode = models.CharField(max_length=16, null=True, blank=True)
    ipv6_address_mode = models.CharField(max_length=16, null=True, blank=True)

    @property
    def auto_address(self):
        """Addresses come from each port's MAC (EUI-64), not from the pools."""
        return self.ip_version == 6 and (self.ipv6_address_mode or self.ipv6_ra_mode) in ("slaac", "dhcpv6-stateless")


class SecurityGroup(NetworkResource):
    stateful = models.BooleanField(default=True)

    class Meta:
        constraints = [
            # The `default` group is made on a project's first use: once.
            models.UniqueConstraint(fields=["project_id"], condition=Q(name="default"),
                                    name="securitygroup_one_default"),
        ]


class SecurityGroupRule(NetworkResource):
    security_group = models.ForeignKey(SecurityGroup, on_delete=models.CASCADE, related_name="rules")
    direction = models.CharField(max_length=8)  # ingress / egress
    ethertype = models.CharField(max_length=8, default="IPv4")
    protocol = models.CharField(max_length=16, null=True, blank=True)
    port_range_min = models.PositiveIntegerField(null=True, blank=True)
    port_range_max = models.PositiveIntegerField(null=True, blank=True)
    remote_ip_prefix = models.CharField(max_length=64, null=True, blank=True)
    remote_group = models.ForeignKey(SecurityGroup, on_delete=models.CASCADE, null=True, blank=True,
                                     related_name="remote_of")


class Port(NetworkResource):
    class Status(models.TextChoices):
        DOWN = "DOWN"
        ACTIVE = "ACTIVE"
        BUILD = "BUILD"
        ERROR = "ERROR"

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="ports")
    mac_address = models.CharField(max_length=17, unique=True)
    admin_state_up = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DOWN)
    device_owner = models.CharField(max_length=255, blank=True, default="", db_index=True)
    device_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    binding_host_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    binding_vnic_type = models.CharField(max_length=32, default="normal")
    binding_profile = models.JSONField(default=dict, blank=True)
    port_security_enabled = models.BooleanField(default=True)
    allowed_address_pairs = models.JSONField(default=list, blank=True)  # [{"ip_address", "mac_address"}]
    security_groups = models.ManyToManyField(SecurityGroup, blank=True, related_name="ports")

    @property
    def vif_type(self):
        # Bound once a host is named: the node agent plugs it into a Linux bridge.
        return "bridge" if self.binding_host_id else "unbound"

    @property
    def vif_details(self):
        if not self.binding_host_id:
            return {}
        return {"connectivity": "l2", "port_filter": True,
                "bridge_name": resources.bridge_name(str(self.network_id))}


class IPAllocation(models.Model):
    """One fixed IP of one port; unique per subnet, so no address is ever
    handed out twice."""

    port = models.ForeignKey(Port, on_delete=models.CASCADE, related_name="fixed_ips")
    subnet = models.ForeignKey(Subnet, on_delete=models.PROTECT, related_name="allocations")
    ip_address = models.GenericIPAddressField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subnet", "ip_address"], name="ipallocation_unique_ip")]
        # The allocator starts after the subnet's last allocation: found without reading the others.
        indexes = [models.Index(fields=["subnet", "id"], name="ipallocation_subnet_last")]
        ordering = ["id"]


class Router(NetworkResource):
    admin_state_up = models.BooleanField(default=True)
    status = models.CharField(max_length=16, default="ACTIVE")
    gateway_network = models.ForeignKey(Network, on_delete=models.PROTECT, null=True, blank=True,
                                        related_name="gateway_routers")
    gateway_port = models.OneToOneField(Port, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="gateway_of")
    enable_snat = models.BooleanField(default=True)
    routes = models.JSONField(default=list, blank=True)  # [{"destination", "nexthop"}]
    availability_zone_hints = models.JSONField(default=list, blank=True)


class FloatingIP(NetworkResource):
    floating_network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="floating_ips")
    floating_port = models.OneToOneField(Port, on_delete=models.PROTECT, related_name="floating_ip_of")
    floating_ip_address = models.GenericIPAddressField()
    port = models.ForeignKey(Port, on_delete=models.SET_NULL, null=True, blank=True, related_name="floating_ips")
    fixed_ip_address = models.GenericIPAddressField(null=True, blank=True)
    router = models.ForeignKey(Router, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="floating_ips")
    status = models.CharField(max_length=16, default="DOWN")


class Tag(models.Model):
    """A tag on any resource, found by the resource's id."""

    resource_id = models.UUIDField(db_index=True)
    tag = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["resource_id", "tag"], name="tag_unique")]
        ordering = ["id"]


class Quota(models.Model):
    """A project's limit on one resource where it differs from the default."""

    project_id = models.CharField(max_length=64)
    resource = models.CharField(max_length=32)
    limit = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project_id", "resource"], name="quota_unique")]


class QuotaLock(models.Model):
    """One row per project that a create locks (SELECT ... FOR UPDATE) while
    it counts the project's rows, so concurrent creates are counted one
    after the other."""

    project_id = models.CharField(max_length=64, primary_key=True)


class Agent(models.Model):
    """A node agent's report of itself, one row per host and kind (Linux
    bridge, DHCP, L3), as Neutron's `agents` resource shows it. Alive while
    its heartbeats keep coming; an operator may disable it."""

    LINUX_BRIDGE = "Linux bridge agent"
    DHCP = "DHCP agent"
    L3 = "L3 agent"
    BINARIES = {LINUX_BRIDGE: "stratus-linuxbridge-agent", DHCP: "stratus-dhcp-agent", L3: "stratus-l3-agent"}
    TOPICS = {LINUX_BRIDGE: "N/A", DHCP: "dhcp_agent", L3: "l3_agent"}

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    agent_type = models.CharField(max_length=64)
    binary = models.CharField(max_length=255)
    topic = models.CharField(max_length=255)
    host = models.CharField(max_length=255)
    admin_state_up = models.BooleanField(default=True)
    description = models.CharField(max_length=255, blank=True, default="")
    configurations = models.JSONField(default=dict, blank=True)
    # Seconds between the agent's heartbeats: it is dead once it has missed a few.
    report_interval = models.FloatField(default=30)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField()
    heartbeat_timestamp = models.DateTimeField()

    class Meta:
        ordering = ["host", "agent_type"]
        constraints = [models.UniqueConstraint(fields=["host", "agent_type"], name="agent_unique_per_host")]

    def __str__(self):
        return f"{self.agent_type}@{self.host}"

    @property
    def is_alive(self):
        """Dead once it has missed a few of its own reports, and at the
        latest after AGENT_DOWN_TIME seconds."""
        from network import conf

        down_after = min(conf.AGENT_DOWN_TIME, conf.AGENT_MISSED_REPORTS * self.report_interval)
        return self.heartbeat_timestamp >= timezone.now() - timedelta(seconds=down_after)

    @classmethod
    def alive(cls, **filters):
        """The agents alive now, among those `filters` select."""
        return [agent for agent in cls.objects.filter(**filters) if agent.is_alive]
