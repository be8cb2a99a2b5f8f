"""Operators' view of compute: flavors, instances with their actions and
faults, nodes and services, and the actions an operator reaches for
(disable a node, reset a stuck instance's state)."""
from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone

from compute import lifecycle
from compute.models import (
    Aggregate, AggregateHost, ComputeNode, Flavor, FlavorAccess, Instance, InstanceAction, InstanceActionEvent,
    InstanceFault, KeyPair,
    Migration, Quota, Service, ServerGroup, UnexpectedState, VmState,
)

COMPUTE_BINARY = "stratus-compute"


def reset_state(instance, vm_state):
    try:
        instance.reset_state(vm_state)
    except UnexpectedState:
        return 0  # deleted meanwhile
    return 1


def delete_instance(request, instance):
    """Deletes through the API's path (compute.lifecycle.delete), recorded
    as an action of the operator."""
    try:
        lifecycle.delete(instance, "", f"admin-site:{request.user.get_username()}"[:64], instance.project_id)
    except UnexpectedState as error:
        messages.error(request, f"{instance}: {error}")


def set_hosts_disabled(hosts, disabled, reason=None):
    """Disables or enables nodes and their compute services together (the
    scheduler reads the node, os-services shows the service)."""
    with transaction.atomic():
        ComputeNode.objects.filter(host__in=hosts).update(disabled=disabled, disabled_reason=reason)
        return Service.objects.filter(host__in=hosts, binary=COMPUTE_BINARY).update(
            disabled=disabled, disabled_reason=reason)


class FlavorAccessInline(admin.TabularInline):
    model = FlavorAccess
    extra = 0


@admin.register(Flavor)
class FlavorAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "vcpus", "memory_mb", "root_gb", "ephemeral_gb", "is_public", "disabled"]
    list_filter = ["is_public", "disabled"]
    search_fields = ["name", "id"]
    inlines = [FlavorAccessInline]


class InstanceFaultInline(admin.TabularInline):
    model = InstanceFault
    extra = 0
    readonly_fields = ["code", "message", "details", "host", "created_at"]
    can_delete = False


class InstanceActionInline(admin.TabularInline):
    model = InstanceAction
    extra = 0
    fields = ["action", "request_id", "user_id", "start_time", "finish_time", "message"]
    readonly_fields = fields
    show_change_link = True
    can_delete = False


def read_only_except(model, editable):
    """Every field of `model` but those in `editable`, for readonly_fields."""
    return [field.name for field in model._meta.concrete_fields if field.name not in editable]


class WritesEditedFieldsOnly:
    """A change form writes only the fields it edited (and updated_at):
    saving the whole row would write back the state, host or usage this
    request read over what a worker or a claim wrote meanwhile."""

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        edited = [name for name in form.changed_data if name not in self.get_readonly_fields(request, obj)]
        if edited:
            obj.updated_at = timezone.now()
            obj.save(update_fields=edited + ["updated_at"])


@admin.register(Instance)
class InstanceAdmin(WritesEditedFieldsOnly, admin.ModelAdmin):
    """Instances change as the API changes them: state only through the
    state machine (the reset actions), a delete through the delete path
    (the node destroys the domain and gives its capacity back). What the
    API's update may change is all that is edited here."""

    list_display = ["name", "id", "project_id", "vm_state", "task_state", "power_state", "host", "flavor_name",
                    "created_at", "deleted"]
    list_filter = ["vm_state", "task_state", "deleted", "host"]
    search_fields = ["name", "id", "project_id", "host"]
    readonly_fields = read_only_except(Instance, {"name", "description", "access_ipv4", "access_ipv6", "metadata"})
    inlines = [InstanceFaultInline, InstanceActionInline]
    actions = ["reset_to_error", "reset_to_active"]  # and delete_selected, through delete_queryset

    def has_add_permission(self, request):
        return False  # a server is made by the API: quota, scheduling, the boot pipeline

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.deleted)

    def get_deleted_objects(self, objs, request):
        # A delete here is the API's: the instance is marked deleted (its
        # actions, faults and resizes stay, for history); nothing cascades.
        return [str(instance) for instance in objs], {Instance._meta.verbose_name_plural: len(objs)}, set(), []

    def delete_model(self, request, obj):
        delete_instance(request, obj)

    def delete_queryset(self, request, queryset):
        for instance in queryset.select_related("node"):
            delete_instance(request, instance)

    @admin.action(description="Reset state to error (forget the task under way)")
    def reset_to_error(self, request, queryset):
        count = sum(reset_state(instance, VmState.ERROR) for instance in queryset)
        self.message_user(request, f"{count} instance(s) reset to error.", messages.SUCCESS)

    @admin.action(description="Reset state to active (forget the task under way)")
    def reset_to_active(self, request, queryset):
        count = sum(reset_state(instance, VmState.ACTIVE) for instance in queryset)
        self.message_user(request, f"{count} instance(s) reset to active.", messages.SUCCESS)


class InstanceActionEventInline(admin.TabularInline):
    model = InstanceActionEvent
    extra = 0
    readonly_fields = ["event", "host", "start_time", "finish_time", "result", "details", "traceback"]
    can_delete = False


@admin.register(InstanceAction)
class InstanceActionAdmin(admin.ModelAdmin):
    list_display = ["action", "instance", "request_id", "start_time", "finish_time", "message"]
    list_filter = ["action"]
    search_fields = ["request_id", "instance__id", "instance__name"]
    readonly_fields = ["instance"]
    inlines = [InstanceActionEventInline]


@admin.register(Migration)
class MigrationAdmin(admin.ModelAdmin):
    """Resizes: where from, where to, and how far they got."""

    list_display = ["id", "instance", "migration_type", "status", "source_compute", "dest_compute", "created_at",
                    "updated_at"]
    list_filter = ["status", "migration_type"]
    search_fields = ["instance__id", "instance__name", "source_compute", "dest_compute"]
    # A resize moves on through its own steps, and deleting one would drop
    # the claim it holds without giving the node its capacity back.
    readonly_fields = read_only_except(Migration, set())

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ComputeNode)
class ComputeNodeAdmin(WritesEditedFieldsOnly, admin.ModelAdmin):
    list_display = ["host", "hypervisor_type", "availability_zone", "vcpus_used", "vcpus", "memory_mb_used",
                    "memory_mb", "local_gb_used", "local_gb", "running_vms", "disabled", "heartbeat_at"]
    list_filter = ["disabled", "availability_zone", "hypervisor_type"]
    search_fields = ["host", "hypervisor_hostname"]
    actions = ["disable_nodes", "enable_nodes"]
    # Usage belongs to claims, capacity and liveness to the node's
    # heartbeat, the zone to aggregates, disabling to the actions (which
    # keep the compute service in step): only the allocation ratios are
    # the operator's to edit here.
    readonly_fields = read_only_except(ComputeNode, {"cpu_allocation_ratio", "ram_allocation_ratio",
                                                     "disk_allocation_ratio"})

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one by one, through remove_compute_host
        return actions

    def has_delete_permission(self, request, obj=None):
        hosting = obj is not None and Instance.objects.filter(host=obj.host, deleted=False).exists()
        return super().has_delete_permission(request, obj) and not hosting

    def delete_model(self, request, obj):
        # As os-services' delete: the node, its compute service and its aggregate memberships.
        try:
            lifecycle.remove_compute_host(obj.host)
        except lifecycle.HostingInstances as error:
            messages.error(request, str(error))

    @admin.action(description="Disable: schedule no new instances here")
    def disable_nodes(self, request, queryset):
        hosts = list(queryset.values_list("host", flat=True))
        set_hosts_disabled(hosts, True, f"disabled by {request.user} in the admin site")
        self.message_user(request, f"{len(hosts)} node(s) disabled.", messages.SUCCESS)

    @admin.action(description="Enable")
    def enable_nodes(self, request, queryset):
        hosts = list(queryset.values_list("host", flat=True))
        set_hosts_disabled(hosts, False)
        self.message_user(request, f"{len(hosts)} node(s) enabled.", messages.SUCCESS)


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["binary", "host", "disabled", "disabled_reason", "forced_down", "last_seen_up"]
    list_filter = ["binary", "disabled", "forced_down"]
    search_fields = ["host"]


@admin.register(KeyPair)
class KeyPairAdmin(admin.ModelAdmin):
    list_display = ["name", "user_id", "type", "fingerprint", "created_at"]
    search_fields = ["name", "user_id"]


@admin.register(ServerGroup)
class ServerGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "policy", "project_id", "created_at"]
    search_fields = ["name", "id", "project_id"]


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ["project_id", "resource", "hard_limit"]
    search_fields = ["project_id"]


class AggregateHostInline(admin.TabularInline):
    """Hosts are added and removed through the API (os-aggregates), which
    checks zones and moves the hosts' zone with them."""

    model = AggregateHost
    extra = 0
    readonly_fields = ["host", "created_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Aggregate)
class AggregateAdmin(admin.ModelAdmin):
    """Host aggregates: name, zone, hosts. Only the name is edited here (a
    zone or host change goes through the API, which keeps the hosts' zones
    in step); an aggregate is deleted here only once it has no hosts."""

    list_display = ["name", "id", "availability_zone", "host_count", "created_at", "updated_at"]
    search_fields = ["name", "uuid", "hosts__host"]
    readonly_fields = ["uuid", "metadata", "created_at", "updated_at"]
    inlines = [AggregateHostInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("hosts")

    @admin.display(description="hosts")
    def host_count(self, aggregate):
        return len(aggregate.hosts.all())

    def has_add_permission(self, request):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or not obj.hosts.exists())
