from django.urls import re_path

from cloud.routers import ApiRouter
from network.api import versions, views

app_name = "network"

router = ApiRouter()
router.register("v2.0/networks", views.NetworkViewSet, basename="network")
router.register("v2.0/subnets", views.SubnetViewSet, basename="subnet")
router.register("v2.0/ports", views.PortViewSet, basename="port")

urlpatterns = [
    re_path(r"^$", versions.NetworkRootView.as_view()),
    re_path(r"^v2.0/?$", versions.NetworkV20View.as_view()),
    re_path(r"^v2.0/extensions/?$", versions.ExtensionListView.as_view()),
    re_path(r"^v2.0/extensions/(?P<alias>[^/]+)/?$", versions.ExtensionView.as_view()),
] + router.urls
