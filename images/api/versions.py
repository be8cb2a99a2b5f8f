"""Image API version discovery, as Glance answers it: a list of versions
at the service root (300 Multiple Choices) and at /v2."""
from rest_framework.response import Response

from cloud.versions import link
from cloud.views import ApiView

# v2.0 to v2.8: images, members, tags, hidden images and multihash (2.7),
# stores discovery (2.8). No interoperable import, tasks or cache API.
CURRENT = 8


def versions(request):
    return [{"id": f"v2.{minor}", "status": "CURRENT" if minor == CURRENT else "SUPPORTED",
             "links": [link(request, "/image/v2/")]} for minor in range(CURRENT, -1, -1)]


class ImageRootView(ApiView):
    policy = {"get": "public"}

    def get(self, request):
        return Response({"versions": versions(request)}, status=300)


class ImageV2View(ApiView):
    policy = {"get": "public"}

    def get(self, request):
        return Response({"versions": versions(request)})
