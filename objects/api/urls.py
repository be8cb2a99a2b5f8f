from django.urls import path, re_path

from objects.api.s3 import s3
from objects.api.views import healthcheck, info, swift

urlpatterns = [
    path("info", info),
    path("healthcheck", healthcheck),
    re_path(r"^v1/AUTH_(?P<project_id>[^/]+)(?:/(?P<rest>.*))?$", swift),
    # S3, path-style: /object-store/s3/<bucket>/<key>
    re_path(r"^s3/?$", s3),
    re_path(r"^s3/(?P<bucket>[^/]+)/?$", s3),
    re_path(r"^s3/(?P<bucket>[^/]+)/(?P<key>.+)$", s3),
]
