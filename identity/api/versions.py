"""Identity version discovery, as Keystone answers it."""
from rest_framework.response import Response

from cloud.versions import link
from cloud.views import ApiView

MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
UPDATED = "2024-01-01T00:00:00Z"


def version_document(request):
    return {"id": "v3.14", "status": "stable", "updated": UPDATED,
            "links": [link(request, "/identity/v3/")], "media-types": MEDIA_TYPES}


class IdentityRootView(ApiView):
    policy = {"get": "public"}

    def get(self, request):
        return Response({"versions": {"values": [version_document(request)]}}, status=300)


class IdentityV3View(ApiView):
    policy = {"get": "public"}

    def get(self, request):
        return Response({"version": version_document(request)})
