from django.contrib import admin

from images.models import Image, ImageLocation, ImageMember, ImageTag, ImageTask


class ImageTagInline(admin.TabularInline):
    model = ImageTag
    extra = 0


class ImageLocationInline(admin.TabularInline):
    model = ImageLocation
    extra = 0
    readonly_fields = ["store", "url", "metadata", "created_at"]


class ImageMemberInline(admin.TabularInline):
    model = ImageMember
    extra = 0


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "status", "visibility", "disk_format", "size", "owner", "protected", "created_at"]
    list_filter = ["status", "visibility", "disk_format", "container_format", "protected"]
    search_fields = ["id", "name", "owner"]
    # Data-derived fields are written by the upload only.
    readonly_fields = ["size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value", "created_at", "updated_at"]
    inlines = [ImageTagInline, ImageLocationInline, ImageMemberInline]


@admin.register(ImageTask)
class ImageTaskAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "status", "image_id", "owner", "created_at", "updated_at"]
    list_filter = ["status", "type"]
    search_fields = ["id", "image_id", "owner", "request_id"]
    # What an import did is the worker's record, not an operator's to rewrite.
    readonly_fields = ["id", "type", "status", "image_id", "owner", "user_id", "request_id", "input", "result",
                       "message", "created_at", "updated_at", "expires_at"]
