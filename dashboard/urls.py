"""Dashboard routes, under /dashboard/."""
from pathlib import Path

from django.urls import path, re_path
from django.views.static import serve

from dashboard import auth
from dashboard.views import admin, images, instances, network, overview, volumes

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
    # Volumes and snapshots.
    path("volumes/", volumes.volumes, name="volumes"),
    path("volumes/<str:volume_id>/", volumes.volume, name="volume"),
    path("volumes/<str:volume_id>/action/", volumes.volume_action, name="volume_action"),
    path("snapshots/", volumes.snapshots, name="snapshots"),
    path("snapshots/<str:snapshot_id>/delete/", volumes.snapshot_delete, name="snapshot_delete"),
    path("admin/hypervisors/", admin.hypervisors, name="hypervisors"),
    # The dashboard's own few files, served by the project (no CDN, no
    # collectstatic step for the all-in-one).
    re_path(r"^static/(?P<path>.+)$", serve, {"document_root": STATIC}, name="static"),
]
