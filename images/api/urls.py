from django.urls import re_path

from cloud.routers import ApiRouter
from images.api import metadefs, versions, views

app_name = "images"

router = ApiRouter()
router.register("v2/images", views.ImageViewSet, basename="image")
router.register(r"v2/images/(?P<image_id>[^/]+)/members", views.MemberViewSet, basename="image-member")

urlpatterns = [
    re_path(r"^$", versions.ImageRootView.as_view()),
    re_path(r"^v2/?$", versions.ImageV2View.as_view()),
    re_path(r"^v2/schemas/(?P<name>image|images|member|members|task|tasks)/?$", views.SchemaView.as_view()),
    re_path(r"^v2/schemas/metadefs/(?P<name>[^/]+)/?$", metadefs.MetadefSchemaView.as_view()),
    re_path(r"^v2/info/stores/?$", views.StoresInfoView.as_view()),
    re_path(r"^v2/info/import/?$", views.ImportInfoView.as_view()),
    re_path(r"^v2/tasks/?$", views.TaskListView.as_view()),
    re_path(r"^v2/tasks/(?P<task_id>[^/]+)/?$", views.TaskView.as_view()),
] + router.urls

NAMESPACE = r"^v2/metadefs/namespaces/(?P<namespace>[^/]+)"
urlpatterns += [
    re_path(r"^v2/metadefs/namespaces/?$", metadefs.NamespaceListView.as_view()),
    re_path(NAMESPACE + r"/?$", metadefs.NamespaceView.as_view()),
    re_path(NAMESPACE + r"/objects/?$", metadefs.ObjectListView.as_view()),
    re_path(NAMESPACE + r"/objects/(?P<name>[^/]+)/?$", metadefs.ObjectView.as_view()),
    re_path(NAMESPACE + r"/properties/?$", metadefs.PropertyListView.as_view()),
    re_path(NAMESPACE + r"/properties/(?P<name>[^/]+)/?$", metadefs.PropertyView.as_view()),
    re_path(NAMESPACE + r"/tags/?$", metadefs.TagListView.as_view()),
    re_path(NAMESPACE + r"/tags/(?P<name>[^/]+)/?$", metadefs.TagView.as_view()),
    re_path(NAMESPACE + r"/resource_types/?$", metadefs.AssociationListView.as_view()),
    re_path(NAMESPACE + r"/resource_types/(?P<resource_type>[^/]+)/?$", metadefs.AssociationView.as_view()),
    re_path(r"^v2/metadefs/resource_types/?$", metadefs.ResourceTypeListView.as_view()),
]
