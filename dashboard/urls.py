"""Dashboard routes, under /dashboard/."""
from pathlib import Path

from django.urls import path, re_path
from django.views.static import serve

from dashboard import auth, views

app_name = "dashboard"

STATIC = Path(__file__).parent / "static" / "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("project/", auth.switch_project, name="switch_project"),
    path("instances/", views.instances, name="instances"),
    path("instances/live/", views.live, name="live"),
    path("instances/launch/", views.launch, name="launch"),
    path("instances/<str:server_id>/", views.instance, name="instance"),
    path("instances/<str:server_id>/console/", views.instance_console, name="instance_console"),
    path("instances/<str:server_id>/action/", views.instance_action, name="instance_action"),
    path("images/", views.images, name="images"),
    path("keypairs/", views.keypairs, name="keypairs"),
    path("keypairs/<str:name>/delete/", views.keypair_delete, name="keypair_delete"),
    path("networks/", views.networks, name="networks"),
    path("routers/", views.routers, name="routers"),
    path("admin/hypervisors/", views.hypervisors, name="hypervisors"),
    # The dashboard's own few files, served by the project (no CDN, no
    # collectstatic step for the all-in-one).
    re_path(r"^static/(?P<path>.+)$", serve, {"document_root": STATIC}, name="static"),
]
