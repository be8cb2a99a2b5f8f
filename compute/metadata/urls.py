from django.urls import path, re_path

from compute.metadata.views import metadata

urlpatterns = [
    path("", metadata),
    re_path(r"^(?P<path>.+)$", metadata),
]
