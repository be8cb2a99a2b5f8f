from django.urls import re_path

from cloud.routers import ApiRouter
from volumes.api import backups, extensions, qos, service, snapshots, transfers, types, versions, volumes

app_name = "volumes"

PROJECT = r"v3/(?P<project_id>[^/]+)"


class CinderRouter(ApiRouter):
    """Cinder's collections also answer GET /<collection>/detail."""

    def get_routes(self, viewset):
        routes = super().get_routes(viewset)
        if hasattr(viewset, "list_detail"):
            from rest_framework.routers import Route

            routes.insert(0, Route(url=r"^{prefix}/detail{trailing_slash}$", mapping={"get": "list_detail"},
                                   name="{basename}-detail-list", detail=False, initkwargs={}))
        return routes


router = CinderRouter()
router.register(f"{PROJECT}/volumes", volumes.VolumeViewSet, basename="volume")
router.register(f"{PROJECT}/snapshots", snapshots.SnapshotViewSet, basename="snapshot")
router.register(f"{PROJECT}/types", types.VolumeTypeViewSet, basename="type")
router.register(f"{PROJECT}/backups", backups.BackupViewSet, basename="backup")

urlpatterns = [
    re_path(r"^$", versions.VolumeRootView.as_view()),
    re_path(r"^v3/?$", versions.VolumeV3View.as_view()),
    re_path(rf"^{PROJECT}/?$", versions.VolumeV3View.as_view()),
    re_path(rf"^{PROJECT}/os-quota-sets/(?P<target_project_id>[^/]+)/defaults/?$",
            service.QuotaDefaultsView.as_view()),
    re_path(rf"^{PROJECT}/os-quota-sets/(?P<target_project_id>[^/]+)/?$", service.QuotaSetView.as_view()),
    re_path(rf"^{PROJECT}/os-quota-class-sets/(?P<class_name>[^/]+)/?$", service.QuotaClassSetView.as_view()),
    re_path(rf"^{PROJECT}/limits/?$", service.LimitsView.as_view()),
    re_path(rf"^{PROJECT}/extensions/?$", extensions.ExtensionListView.as_view()),
    re_path(rf"^{PROJECT}/os-hosts/?$", service.HostListView.as_view()),
    re_path(rf"^{PROJECT}/os-hosts/(?P<host>[^/]+)/?$", service.HostView.as_view()),
    re_path(rf"^{PROJECT}/qos-specs/?$", qos.QosListView.as_view()),
    re_path(rf"^{PROJECT}/qos-specs/(?P<qos_id>[^/]+)/delete_keys/?$", qos.QosDeleteKeysView.as_view()),
    re_path(rf"^{PROJECT}/qos-specs/(?P<qos_id>[^/]+)/associations/?$", qos.QosAssociationsView.as_view()),
    re_path(rf"^{PROJECT}/qos-specs/(?P<qos_id>[^/]+)/associate/?$", qos.QosAssociateView.as_view()),
    re_path(rf"^{PROJECT}/qos-specs/(?P<qos_id>[^/]+)/disassociate/?$", qos.QosDisassociateView.as_view()),
    re_path(rf"^{PROJECT}/qos-specs/(?P<qos_id>[^/]+)/disassociate_all/?$", qos.QosDisassociateAllView.as_view()),
    re_path(rf"^{PROJECT}/qos-specs/(?P<qos_id>[^/]+)/?$", qos.QosView.as_view()),
    re_path(rf"^{PROJECT}/os-volume-transfer/?$", transfers.TransferListView.as_view()),
    re_path(rf"^{PROJECT}/os-volume-transfer/detail/?$", transfers.TransferDetailListView.as_view()),
    re_path(rf"^{PROJECT}/os-volume-transfer/(?P<transfer_id>[^/]+)/accept/?$",
            transfers.TransferAcceptView.as_view()),
    re_path(rf"^{PROJECT}/os-volume-transfer/(?P<transfer_id>[^/]+)/?$", transfers.TransferView.as_view()),
    re_path(rf"^{PROJECT}/os-availability-zone/?$", service.AvailabilityZoneView.as_view()),
    re_path(rf"^{PROJECT}/os-services/?$", service.ServiceListView.as_view()),
    re_path(rf"^{PROJECT}/os-services/(?P<action>[^/]+)/?$", service.ServiceActionView.as_view()),
    re_path(rf"^{PROJECT}/scheduler-stats/get_pools/?$", service.PoolListView.as_view()),
    re_path(rf"^{PROJECT}/messages/?$", service.MessageListView.as_view()),
    re_path(rf"^{PROJECT}/messages/(?P<message_id>[^/]+)/?$", service.MessageView.as_view()),
    re_path(rf"^{PROJECT}/attachments/?$", service.AttachmentListView.as_view()),
    re_path(rf"^{PROJECT}/attachments/detail/?$", service.AttachmentDetailListView.as_view()),
    re_path(rf"^{PROJECT}/attachments/(?P<attachment_id>[^/]+)/action/?$", service.AttachmentActionView.as_view()),
    re_path(rf"^{PROJECT}/attachments/(?P<attachment_id>[^/]+)/?$", service.AttachmentView.as_view()),
] + router.urls
