from django.contrib import admin

from objects.models import Account, Container, Object


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["project_id", "container_count", "object_count", "bytes_used", "created_at"]
    search_fields = ["project_id"]
    # Counts are kept by the data path's transactions only.
    readonly_fields = ["container_count", "object_count", "bytes_used", "created_at"]


@admin.register(Container)
class ContainerAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "object_count", "bytes_used", "created_at"]
    search_fields = ["name", "account__project_id"]
    readonly_fields = ["object_count", "bytes_used", "created_at"]


@admin.register(Object)
class ObjectAdmin(admin.ModelAdmin):
    list_display = ["name", "container", "size", "etag", "content_type", "last_modified", "delete_at"]
    search_fields = ["name", "container__name"]
    # An object's data and size change only through the API.
    readonly_fields = ["size", "etag", "data_key", "last_modified", "slo_segments"]
