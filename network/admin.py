"""Operators' view of networking: the rows the node agent converges to."""
from django.contrib import admin

from network.models import FloatingIP, IPAllocation, Network, Port, Quota, Router, SecurityGroup, \
    SecurityGroupRule, Subnet


class IPAllocationInline(admin.TabularInline):
    model = IPAllocation
    extra = 0
    raw_id_fields = ["subnet"]


@admin.register(Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "project_id", "network_type", "segmentation_id", "physical_network", "shared",
                    "external", "mtu"]
    list_filter = ["network_type", "shared", "external"]
    search_fields = ["name", "id", "project_id"]


@admin.register(Subnet)
class SubnetAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "cidr", "gateway_ip", "network", "project_id", "enable_dhcp"]
    search_fields = ["name", "id", "cidr", "project_id"]
    raw_id_fields = ["network"]


@admin.register(Port)
class PortAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "network", "mac_address", "status", "device_owner", "device_id",
                    "binding_host_id"]
    list_filter = ["status", "device_owner"]
    search_fields = ["id", "name", "mac_address", "device_id", "binding_host_id", "project_id"]
    raw_id_fields = ["network"]
    inlines = [IPAllocationInline]


class SecurityGroupRuleInline(admin.TabularInline):
    model = SecurityGroupRule
    fk_name = "security_group"
    extra = 0
    raw_id_fields = ["remote_group"]


@admin.register(SecurityGroup)
class SecurityGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "project_id", "stateful"]
    search_fields = ["name", "id", "project_id"]
    inlines = [SecurityGroupRuleInline]


@admin.register(Router)
class RouterAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "project_id", "gateway_network", "enable_snat", "status"]
    search_fields = ["name", "id", "project_id"]
    raw_id_fields = ["gateway_network", "gateway_port"]


@admin.register(FloatingIP)
class FloatingIPAdmin(admin.ModelAdmin):
    list_display = ["floating_ip_address", "id", "project_id", "port", "fixed_ip_address", "status"]
    search_fields = ["floating_ip_address", "id", "project_id"]
    raw_id_fields = ["floating_network", "floating_port", "port", "router"]


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ["project_id", "resource", "limit"]
    search_fields = ["project_id"]
