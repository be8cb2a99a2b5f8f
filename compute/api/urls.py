"""Compute v2.1 routes. Every path answers with and without a trailing slash."""
from django.urls import re_path

from compute.api import (
    aggregates, extensions, external_events, flavors, floating_ips, hosts, images, instance_actions, interfaces, keypairs, limits,
    networks, security_groups, server_diagnostics, server_groups, server_migrations, server_password, server_tags,
    servers, usage, usage_audit_log,
    versions, volume_attachments, volumes,
)

app_name = "compute"

ID = r"(?P<{}>[^/]+)"
SERVER = ID.format("server_id")


def route(pattern, view):
    return re_path(rf"^v2\.1/{pattern}/?$", view)


def proxy_routes(collection, id_name, list_view, item_view):
    """A proxied collection's routes as Nova has them: its trailing slash
    names a member with an empty id (a 404), not the collection."""
    return [re_path(rf"^v2\.1/{collection}$", list_view.as_view()),
            re_path(rf"^v2\.1/{collection}/(?P<{id_name}>[^/]*)$", item_view.as_view())]


urlpatterns = [
    re_path(r"^$", versions.ComputeRootView.as_view()),
    re_path(r"^v2\.1/?$", versions.ComputeV21View.as_view()),
    route("extensions", extensions.ExtensionListView.as_view()),
    route(f"extensions/{ID.format('alias')}", extensions.ExtensionView.as_view()),
    route("flavors", flavors.FlavorListView.as_view()),
    route("flavors/detail", flavors.FlavorDetailListView.as_view()),
    route(f"flavors/{ID.format('flavor_id')}", flavors.FlavorView.as_view()),
    route(f"flavors/{ID.format('flavor_id')}/os-extra_specs", flavors.ExtraSpecsView.as_view()),
    route(f"flavors/{ID.format('flavor_id')}/os-extra_specs/{ID.format('key')}", flavors.ExtraSpecView.as_view()),
    route(f"flavors/{ID.format('flavor_id')}/os-flavor-access", flavors.FlavorAccessView.as_view()),
    route(f"flavors/{ID.format('flavor_id')}/action", flavors.FlavorActionView.as_view()),
    route("os-keypairs", keypairs.KeyPairListView.as_view()),
    route(f"os-keypairs/{ID.format('name')}", keypairs.KeyPairView.as_view()),
    route("limits", limits.LimitsView.as_view()),
    route(f"os-quota-sets/{ID.format('project_id')}", limits.QuotaSetView.as_view()),
    route(f"os-quota-sets/{ID.format('project_id')}/detail", limits.QuotaSetDetailView.as_view()),
    route(f"os-quota-sets/{ID.format('project_id')}/defaults", limits.QuotaDefaultsView.as_view()),
    route(f"os-quota-class-sets/{ID.format('class_name')}", limits.QuotaClassSetView.as_view()),
    route("os-availability-zone", hosts.AvailabilityZoneView.as_view()),
    route("os-availability-zone/detail", hosts.AvailabilityZoneDetailView.as_view()),
    route("os-services", hosts.ServiceListView.as_view()),
    route(f"os-services/{ID.format('service_id')}", hosts.ServiceView.as_view()),
    route("os-aggregates", aggregates.AggregateListView.as_view()),
    route(f"os-aggregates/{ID.format('aggregate_id')}", aggregates.AggregateView.as_view()),
    route(f"os-aggregates/{ID.format('aggregate_id')}/action", aggregates.AggregateActionView.as_view()),
    route("os-hosts", hosts.OsHostsView.as_view()),
    route(f"os-hosts/{ID.format('host_name')}", hosts.OsHostView.as_view()),
    route(f"os-hosts/{ID.format('host_name')}/(?P<host_action>startup|shutdown|reboot)", hosts.OsHostView.as_view()),
    route("os-hypervisors", hosts.HypervisorListView.as_view()),
    route("os-hypervisors/detail", hosts.HypervisorDetailListView.as_view()),
    route("os-hypervisors/statistics", hosts.HypervisorStatisticsView.as_view()),
    route(f"os-hypervisors/{ID.format('hypervisor_id')}", hosts.HypervisorView.as_view()),
    route(f"os-hypervisors/{ID.format('hypervisor_id')}/uptime", hosts.HypervisorUptimeView.as_view()),
    route("images/detail", images.ImageDetailListView.as_view()),
    *proxy_routes("images", "image_id", images.ImageListView, images.ImageView),
    route(f"images/{ID.format('image_id')}/metadata", images.ImageMetadataView.as_view()),
    route(f"images/{ID.format('image_id')}/metadata/{ID.format('key')}", images.ImageMetadataItemView.as_view()),
    route("os-networks", networks.NetworkListView.as_view()),
    route(f"os-networks/{ID.format('network_id')}", networks.NetworkView.as_view()),
    route("os-tenant-networks", networks.TenantNetworkListView.as_view()),
    route(f"os-tenant-networks/{ID.format('network_id')}", networks.TenantNetworkView.as_view()),
    *proxy_routes("os-security-groups", "group_id", security_groups.SecurityGroupListView,
                  security_groups.SecurityGroupView),
    *proxy_routes("os-security-group-rules", "rule_id", security_groups.SecurityGroupRuleListView,
                  security_groups.SecurityGroupRuleView),
    route(f"servers/{SERVER}/os-security-groups", security_groups.ServerSecurityGroupsView.as_view()),
    *proxy_routes("os-floating-ips", "floating_ip_id", floating_ips.FloatingIpListView, floating_ips.FloatingIpView),
    route("os-floating-ip-pools", floating_ips.FloatingIpPoolListView.as_view()),
    route("os-volumes/detail", volumes.VolumeDetailListView.as_view()),
    *proxy_routes("os-volumes", "volume_id", volumes.VolumeListView, volumes.VolumeView),
    route("os-snapshots/detail", volumes.SnapshotDetailListView.as_view()),
    *proxy_routes("os-snapshots", "snapshot_id", volumes.SnapshotListView, volumes.SnapshotView),
    route("servers", servers.ServerListView.as_view()),
    route("servers/detail", servers.ServerDetailListView.as_view()),
    route(f"servers/{SERVER}", servers.ServerView.as_view()),
    route(f"servers/{SERVER}/action", servers.ServerActionView.as_view()),
    route(f"servers/{SERVER}/remote-consoles", servers.RemoteConsoleView.as_view()),
    route(f"servers/{SERVER}/metadata", servers.MetadataView.as_view()),
    route(f"servers/{SERVER}/ips", interfaces.IpsView.as_view()),
    route(f"servers/{SERVER}/ips/{ID.format('label')}", interfaces.IpsNetworkView.as_view()),
    route(f"servers/{SERVER}/os-interface", interfaces.InterfaceListView.as_view()),
    route(f"servers/{SERVER}/os-interface/{ID.format('port_id')}", interfaces.InterfaceView.as_view()),
    route(f"servers/{SERVER}/os-volume_attachments", volume_attachments.VolumeAttachmentListView.as_view()),
    route(f"servers/{SERVER}/os-volume_attachments/{ID.format('volume_id')}",
          volume_attachments.VolumeAttachmentView.as_view()),
    route(f"servers/{SERVER}/metadata/{ID.format('key')}", servers.MetadataItemView.as_view()),
    route(f"servers/{SERVER}/tags", server_tags.ServerTagsView.as_view()),
    route(f"servers/{SERVER}/diagnostics", server_diagnostics.ServerDiagnosticsView.as_view()),
    route(f"servers/{SERVER}/os-server-password", server_password.ServerPasswordView.as_view()),
    route(f"servers/{SERVER}/tags/{ID.format('tag')}", server_tags.ServerTagView.as_view()),
    route(f"servers/{SERVER}/os-instance-actions", instance_actions.InstanceActionListView.as_view()),
    route(f"servers/{SERVER}/os-instance-actions/{ID.format('request_id')}",
          instance_actions.InstanceActionView.as_view()),
    route("os-server-groups", server_groups.ServerGroupListView.as_view()),
    route(f"os-server-groups/{ID.format('group_id')}", server_groups.ServerGroupView.as_view()),
    route("os-migrations", server_migrations.MigrationListView.as_view()),
    route("os-server-external-events", external_events.ServerExternalEventsView.as_view()),
    route("os-instance_usage_audit_log", usage_audit_log.AuditLogListView.as_view()),
    route(f"os-instance_usage_audit_log/{ID.format('before')}", usage_audit_log.AuditLogView.as_view()),
    route("os-simple-tenant-usage", usage.UsageListView.as_view()),
    route(f"os-simple-tenant-usage/{ID.format('project_id')}", usage.UsageView.as_view()),
]
