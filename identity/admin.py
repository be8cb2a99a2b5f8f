"""Operators' view of identity: search, filters and the columns that matter."""
from django.contrib import admin, messages

from identity import tokens
from identity.models import (
    ApplicationCredential, Domain, Endpoint, Group, Project, Region, RevocationEvent, Role, RoleAssignment,
    Service, User,
)


class RoleAssignmentInline(admin.TabularInline):
    model = RoleAssignment
    extra = 0
    autocomplete_fields = ["role", "user", "group", "project", "domain"]


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "enabled", "description", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "id"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "domain", "parent", "enabled", "is_admin_project", "created_at"]
    list_filter = ["enabled", "domain"]
    search_fields = ["name", "id", "description"]
    autocomplete_fields = ["domain", "parent"]
    inlines = [RoleAssignmentInline]


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "domain", "email", "enabled", "default_project", "created_at"]
    list_filter = ["enabled", "domain"]
    search_fields = ["name", "id", "email"]
    autocomplete_fields = ["domain", "default_project"]
    exclude = ["password"]
    inlines = [RoleAssignmentInline]
    actions = ["disable_users", "revoke_tokens"]

    @admin.action(description="Disable the selected users (and revoke their tokens)")
    def disable_users(self, request, queryset):
        for user in queryset:
            user.enabled = False
            user.save(update_fields=["enabled"])  # identity.revocation revokes their tokens
        self.message_user(request, f"Disabled {queryset.count()} user(s).", messages.SUCCESS)

    @admin.action(description="Revoke every token of the selected users")
    def revoke_tokens(self, request, queryset):
        for user in queryset:
            tokens.revoke(user_id=user.id)
        self.message_user(request, f"Revoked the tokens of {queryset.count()} user(s).", messages.SUCCESS)


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "domain", "description"]
    list_filter = ["domain"]
    search_fields = ["name", "id"]
    filter_horizontal = ["users"]


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "domain", "description"]
    search_fields = ["name", "id"]


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(admin.ModelAdmin):
    list_display = ["role", "user", "group", "project", "domain", "system", "inherited"]
    list_filter = ["role", "system", "inherited"]
    search_fields = ["user__name", "group__name", "project__name", "domain__name", "role__name"]
    list_select_related = ["role", "user", "group", "project", "domain"]
    autocomplete_fields = ["role", "user", "group", "project", "domain"]


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["id", "parent_region", "description"]
    search_fields = ["id"]


class EndpointInline(admin.TabularInline):
    model = Endpoint
    extra = 0


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["type", "name", "id", "enabled"]
    list_filter = ["enabled"]
    search_fields = ["type", "name"]
    inlines = [EndpointInline]


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ["service", "interface", "region", "url", "enabled"]
    list_filter = ["interface", "region", "enabled"]
    search_fields = ["url", "service__type"]
    list_select_related = ["service", "region"]


@admin.register(ApplicationCredential)
class ApplicationCredentialAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "user", "project", "unrestricted", "expires_at", "created_at"]
    list_filter = ["unrestricted"]
    search_fields = ["name", "id", "user__name", "project__name"]
    list_select_related = ["user", "project"]
    exclude = ["secret_hash"]
    readonly_fields = ["user", "project"]


@admin.register(RevocationEvent)
class RevocationEventAdmin(admin.ModelAdmin):
    list_display = ["revoked_at", "issued_before", "user_id", "project_id", "domain_id", "system", "audit_id",
                    "application_credential_id"]
    search_fields = ["user_id", "project_id", "audit_id"]
    date_hierarchy = "revoked_at"

    def has_change_permission(self, request, obj=None):
        return False
