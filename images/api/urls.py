from django.urls import re_path

from cloud.routers import ApiRouter
from images.api import versions, views

app_name = "images"

router = ApiRouter()
router.register("v2/images", views.ImageViewSet, basename="image")
router.register(r"v2/images/(?P<image_id>[^/]+)/members", views.MemberViewSet, basename="image-member")

urlpatterns = [
    re_path(r"^$", versions.ImageRootView.as_view()),
    re_path(r"^v2/?$", versions.ImageV2View.as_view()),
    re_path(r"^v2/schemas/(?P<name>image|images|member|members)/?$", views.SchemaView.as_view()),
    re_path(r"^v2/info/stores/?$", views.StoresInfoView.as_view()),
    re_path(r"^v2/info/import/?$", views.ImportInfoView.as_view()),
    re_path(r"^v2/tasks/?$", views.TaskListView.as_view()),
    re_path(r"^v2/tasks/(?P<task_id>[^/]+)/?$", views.TaskView.as_view()),
] + router.urls
