"""Compute version discovery, as Nova answers it: the root lists v2.1 with
the microversion range, /v2.1 describes it."""
from rest_framework.response import Response

from cloud.versions import link
from compute.api.base import MAX_VERSION, MIN_VERSION, ComputeView, version_string

UPDATED = "2013-07-23T11:33:21Z"
MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]


def version_document(request):
    return {"id": "v2.1", "status": "CURRENT", "version": version_string(MAX_VERSION),
            "min_version": version_string(MIN_VERSION), "updated": UPDATED,
            "links": [link(request, "/compute/v2.1/")], "media-types": MEDIA_TYPES}


class ComputeRootView(ComputeView):
    policy = {"get": "public"}

    def get(self, request):
        return Response({"versions": [version_document(request)]})


class ComputeV21View(ComputeView):
    policy = {"get": "public"}

    def get(self, request):
        return Response({"version": version_document(request)})
