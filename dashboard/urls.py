"""Dashboard routes, under /dashboard/."""
from pathlib import Path

from django.urls import path, re_path
from django.views.static import serve

from dashboard import auth
from dashboard.views import admin, admin_compute, admin_identity, admin_resources, images, instances, network, overview

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
    path("networks/", network.networks, name="networks"),
    path("routers/", network.routers, name="routers"),
    path("admin/hypervisors/", admin.hypervisors, name="hypervisors"),
    # Admin panels (besides hypervisors above) and the images panel's pages.
    path("images/upload/", images.image_upload, name="image_upload"),
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
