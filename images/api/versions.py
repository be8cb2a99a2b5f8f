"""Image API version discovery, as Glance answers it: a list of versions
at the service root (300 Multiple Choices) and at /v2."""
from rest_framework.response import Response

from cloud.versions import link
from cloud.views import ApiView

# v2.0 to v2.12: images, members, tags, hidden images and multihash (2.7),
# stores discovery (2.8), the interoperable import into several stores
# (2.6, 2.9-2.11) and an image's tasks (2.12). No cache API (2.13+).
CURRENT = 12


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
