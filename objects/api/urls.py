from django.urls import path, re_path

from objects.api.views import info, swift

urlpatterns = [
    path("info", info),
    re_path(r"^v1/AUTH_(?P<project_id>[^/]+)(?:/(?P<rest>.*))?$", swift),
]
