from django.contrib import admin

from objects import usage
from objects.models import Account, Container, Object


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["project_id", "totals", "quota_bytes", "quota_count", "created_at"]
    search_fields = ["project_id"]
    readonly_fields = ["totals", "created_at"]

    @admin.display(description="containers, objects, bytes")
    def totals(self, row):
        # Kept by the data path's transactions only (objects.usage).
        return ", ".join(str(value) for value in usage.account_totals(row.pk))


@admin.register(Container)
class ContainerAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "totals", "created_at"]
    search_fields = ["name", "account__project_id"]
    readonly_fields = ["totals", "created_at"]

    @admin.display(description="objects, bytes")
    def totals(self, row):
        return ", ".join(str(value) for value in usage.container_totals(row.pk))


@admin.register(Object)
class ObjectAdmin(admin.ModelAdmin):
    list_display = ["name", "container", "size", "etag", "content_type", "last_modified", "delete_at"]
    search_fields = ["name", "container__name"]
    # An object's data and size change only through the API.
    readonly_fields = ["size", "etag", "data_key", "last_modified", "slo_segments"]
