"""Dashboard routes, under /dashboard/."""
from pathlib import Path

from django.urls import path, re_path
from django.views.static import serve

from dashboard import auth
from dashboard.views import (
    admin, admin_compute, admin_identity, admin_resources, images, instances, network, overview, security, topology,
    volumes,
)

app_name = "dashboard"

STATIC = Path(__file__).parent / "static" / "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("project/", auth.switch_project, name="switch_project"),
    path("instances/", instances.instances, name="instances"),
    path("instances/live/", instances.live, name="live"),
    path("instances/launch/", instances.launch, name="launch"),
    path("instances/<str:server_id>/", instances.instance, name="instance"),
    path("instances/<str:server_id>/console/", instances.instance_console, name="instance_console"),
    path("instances/<str:server_id>/action/", instances.instance_action, name="instance_action"),
    path("images/", images.images, name="images"),
    path("keypairs/", images.keypairs, name="keypairs"),
    path("keypairs/<str:name>/delete/", images.keypair_delete, name="keypair_delete"),
    # Network panels: networks, subnets, routers, floating IPs, security groups, topology.
    path("networks/", network.networks, name="networks"),
    path("networks/<str:network_id>/", network.network, name="network"),
    path("networks/<str:network_id>/delete/", network.network_delete, name="network_delete"),
    path("subnets/<str:subnet_id>/delete/", network.subnet_delete, name="subnet_delete"),
    path("routers/", network.routers, name="routers"),
    path("routers/<str:router_id>/", network.router, name="router"),
    path("routers/<str:router_id>/delete/", network.router_delete, name="router_delete"),
    path("floating-ips/", network.floating_ips, name="floating_ips"),
    path("floating-ips/<str:floating_ip_id>/", network.floating_ip_action, name="floating_ip_action"),
    path("security-groups/", security.security_groups, name="security_groups"),
    path("security-groups/<str:group_id>/", security.security_group, name="security_group"),
    path("security-groups/<str:group_id>/delete/", security.security_group_delete, name="security_group_delete"),
    path("security-group-rules/<str:rule_id>/delete/", security.rule_delete, name="rule_delete"),
    path("topology/", topology.topology, name="topology"),
    path("topology/data/", topology.topology_data, name="topology_data"),
    # Volumes and snapshots.
    path("volumes/", volumes.volumes, name="volumes"),
    path("volumes/<str:volume_id>/", volumes.volume, name="volume"),
    path("volumes/<str:volume_id>/action/", volumes.volume_action, name="volume_action"),
    path("snapshots/", volumes.snapshots, name="snapshots"),
    path("snapshots/<str:snapshot_id>/delete/", volumes.snapshot_delete, name="snapshot_delete"),
    path("admin/hypervisors/", admin.hypervisors, name="hypervisors"),
    # Admin panels (besides hypervisors above) and the images panel's pages.
    path("images/upload/", images.image_upload, name="image_upload"),
    path("images/from-url/", images.image_from_url, name="image_from_url"),
    path("images/<str:image_id>/", images.image, name="image"),
    path("images/<str:image_id>/file/", images.image_file, name="image_file"),
    path("admin/instances/", admin_compute.instances, name="admin_instances"),
    path("admin/flavors/", admin_compute.flavors, name="admin_flavors"),
    path("admin/flavors/<str:flavor_id>/", admin_compute.flavor, name="admin_flavor"),
    path("admin/images/", admin_resources.images, name="admin_images"),
    path("admin/networks/", admin_resources.networks, name="admin_networks"),
    path("admin/volumes/", admin_resources.volumes, name="admin_volumes"),
    path("admin/volume-types/", admin_resources.volume_types, name="admin_volume_types"),
    path("admin/identity/role-assignments/", admin_identity.role_assignments, name="admin_role_assignments"),
    path("admin/identity/<str:kind>/", admin_identity.identity, name="admin_identity"),
    path("admin/identity/<str:kind>/<str:entity_id>/", admin_identity.identity_edit, name="admin_identity_edit"),
    path("admin/quotas/", admin.quotas, name="admin_quotas"),
    path("admin/services/", admin.services, name="admin_services"),
    # The dashboard's own few files, served by the project (no CDN, no
    # collectstatic step for the all-in-one).
    re_path(r"^static/(?P<path>.+)$", serve, {"document_root": STATIC}, name="static"),
]
