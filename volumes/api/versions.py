"""Block Storage version discovery, as Cinder answers it: `/volume/` (300
Multiple Choices) and `/volume/v3/` list v3.0 with its microversion range."""
from rest_framework.response import Response

from cloud.versions import link
from volumes.api.base import MAX_VERSION, MIN_VERSION, CinderView, version_string

UPDATED = "2017-09-25T00:00:00Z"


def version_document(request):
    return {"id": "v3.0", "status": "CURRENT", "version": version_string(MAX_VERSION),
            "min_version": version_string(MIN_VERSION), "updated": UPDATED,
            "links": [link(request, "/volume/v3/"),
                      {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


class VolumeRootView(CinderView):
    policy = {"get": "public"}

    def get(self, request):
        return Response({"versions": [version_document(request)]}, status=300)


class VolumeV3View(CinderView):
    policy = {"get": "public"}

    def get(self, request, project_id=None):
        return Response({"versions": [version_document(request)]})
