from django.urls import re_path

from cloud.routers import ApiRouter
from network.api import agents, routers, security_groups, service, versions, views

app_name = "network"

router = ApiRouter()
router.register("v2.0/networks", views.NetworkViewSet, basename="network")
router.register("v2.0/subnets", views.SubnetViewSet, basename="subnet")
router.register("v2.0/subnetpools", views.SubnetPoolViewSet, basename="subnetpool")
router.register("v2.0/ports", views.PortViewSet, basename="port")
router.register("v2.0/security-groups", security_groups.SecurityGroupViewSet, basename="security-group")
router.register("v2.0/security-group-rules", security_groups.SecurityGroupRuleViewSet,
                basename="security-group-rule")
router.register("v2.0/routers", routers.RouterViewSet, basename="router")
router.register("v2.0/floatingips", routers.FloatingIPViewSet, basename="floatingip")
router.register("v2.0/agents", agents.AgentViewSet, basename="agent")

PROJECT = r"(?P<project_id>[^/]+)"

urlpatterns = [
    re_path(r"^$", versions.NetworkRootView.as_view()),
    re_path(r"^v2.0/?$", versions.NetworkV20View.as_view()),
    re_path(r"^v2.0/extensions/?$", versions.ExtensionListView.as_view()),
    re_path(r"^v2.0/extensions/(?P<alias>[^/]+)/?$", versions.ExtensionView.as_view()),
    re_path(r"^v2.0/quotas/?$", service.QuotaListView.as_view()),
    re_path(rf"^v2.0/quotas/{PROJECT}/default/?$", service.QuotaDefaultView.as_view()),
    re_path(rf"^v2.0/quotas/{PROJECT}/details/?$", service.QuotaDetailsView.as_view()),
    re_path(rf"^v2.0/quotas/{PROJECT}/?$", service.QuotaView.as_view()),
    re_path(rf"^v2.0/auto-allocated-topology/{PROJECT}/?$", service.AutoAllocatedTopologyView.as_view()),
    re_path(r"^v2.0/availability_zones/?$", service.AvailabilityZoneListView.as_view()),
    re_path(r"^v2.0/service-providers/?$", service.ServiceProviderListView.as_view()),
    re_path(r"^v2.0/network-ip-availabilities/?$", service.IpAvailabilityListView.as_view()),
    re_path(r"^v2.0/network-ip-availabilities/(?P<network_id>[^/]+)/?$", service.IpAvailabilityView.as_view()),
] + router.urls
