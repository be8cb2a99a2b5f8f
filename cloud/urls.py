"""URL root: each service's API under its prefix, the admin site."""
from django.contrib import admin
from django.urls import include, path

from compute.api.versions import ComputeRootView
from compute.metadata.views import metadata
from identity.api.versions import IdentityRootView
from images.api.versions import ImageRootView
from network.api.versions import NetworkRootView
from volumes.api.versions import VolumeRootView

handler400 = "cloud.errors.bad_request_view"
handler404 = "cloud.errors.not_found_view"
handler500 = "cloud.errors.server_error_view"

# The APIs first: Django tries the patterns in order, and every API call
# would otherwise try the admin site's and the dashboard's on its way.
urlpatterns = [
    # Clients ask for a service root with and without the trailing slash.
    path("identity", IdentityRootView.as_view()),
    path("identity/", include("identity.api.urls")),
    path("compute", ComputeRootView.as_view()),
    path("compute/", include("compute.api.urls")),
    path("image", ImageRootView.as_view()),
    path("image/", include("images.api.urls")),
    path("network", NetworkRootView.as_view()),
    path("network/", include("network.api.urls")),
    path("volume", VolumeRootView.as_view()),
    path("volume/", include("volumes.api.urls")),
    # Nova's metadata service, for the metadata proxies (no token: they sign).
    path("metadata", metadata),
    path("metadata/", include("compute.metadata.urls")),
    path("object-store/", include("objects.api.urls")),
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
]
