"""GET /extensions and /extensions/{alias} (2.1): Nova's legacy list of
extensions in their v2 names, limited to what Stratus serves (an
extension listed here is an API a client may call)."""
from rest_framework.response import Response

from cloud.errors import NotFound
from compute.api.base import ComputeView

# Nova answers fixed values for these two since v2.1 dropped XML.
NAMESPACE = "http://docs.openstack.org/compute/ext/fake_xml"
UPDATED = "2014-12-03T00:00:00Z"
# alias: (name, description)
EXTENSIONS = {
    "OS-DCF": ("DiskConfig", "Disk Management Extension."),
    "OS-EXT-AZ": ("ExtendedAvailabilityZone", "Extended Availability Zone support."),
    "OS-EXT-IMG-SIZE": ("ImageSize", "Adds image size to image listings."),
    "OS-EXT-IPS": ("ExtendedIps", "Adds type parameter to the ip list."),
    "OS-EXT-IPS-MAC": ("ExtendedIpsMac", "Adds mac address parameter to the ip list."),
    "OS-EXT-SRV-ATTR": ("ExtendedServerAttributes", "Extended Server Attributes support."),
    "OS-EXT-STS": ("ExtendedStatus", "Extended Status support."),
    "OS-FLV-DISABLED": ("FlavorDisabled", "Support to show the disabled status of a flavor."),
    "OS-FLV-EXT-DATA": ("FlavorExtraData", "Provide additional data for flavors."),
    "OS-SCH-HNT": ("SchedulerHints", "Pass arbitrary key/value pairs to the scheduler."),
    "OS-SRV-USG": ("ServerUsage", "Adds launched_at and terminated_at on Servers."),
    "os-admin-password": ("AdminPassword", "Admin password management support."),
    "os-admin-actions": ("AdminActions", "Enable admin-only server actions (os-resetState)."),
    "os-aggregates": ("Aggregates", "Admin-only aggregate administration."),
    "os-attach-interfaces": ("AttachInterfaces", "Attach interface support."),
    "os-availability-zone": ("AvailabilityZone", "1. Add availability_zone to the Create Server API.\n"
                             "2. Add availability zones describing."),
    "os-config-drive": ("ConfigDrive", "Config Drive Extension."),
    "os-console-output": ("ConsoleOutput", "Console log output support, with tailing ability."),
    "os-consoles": ("Consoles", "Interactive Console support."),
    "os-create-backup": ("CreateBackup", "Create a backup of a server."),
    "os-evacuate": ("Evacuate", "Enables server evacuation."),
    "os-flavor-access": ("FlavorAccess", "Flavor access support."),
    "os-flavor-extra-specs": ("FlavorExtraSpecs", "Flavors extra specs support."),
    "os-flavor-manage": ("FlavorManage", "Flavor create/delete API support."),
    "os-hosts": ("Hosts", "Admin-only host administration."),
    "os-hypervisors": ("Hypervisors", "Admin-only hypervisor administration."),
    "os-instance-actions": ("InstanceActions", "View a log of actions and events taken on an instance."),
    "os-instance-usage-audit-log": ("OSInstanceUsageAuditLog", "Admin-only Task Log Monitoring."),
    "os-keypairs": ("Keypairs", "Keypair Support."),
    "os-lock-server": ("LockServer", "Enable lock/unlock server actions."),
    "os-migrations": ("Migrations", "Provide data on migrations."),
    "os-multiple-create": ("MultipleCreate", "Allow multiple create in the Create Server v2.1 API."),
    "os-networks": ("Networks", "Admin-only Network Management Extension."),
    "os-pause-server": ("PauseServer", "Enable pause/unpause server actions."),
    "os-quota-class-sets": ("QuotaClasses", "Quota classes management support."),
    "os-quota-sets": ("Quotas", "Quotas management support."),
    "os-rescue": ("Rescue", "Instance rescue mode."),
    "os-server-diagnostics": ("ServerDiagnostics", "Allow Admins to view server diagnostics through server id."),
    "os-server-external-events": ("ServerExternalEvents", "Server External Event Triggers."),
    "os-server-groups": ("ServerGroups", "Server group support."),
    "os-server-password": ("ServerPassword", "Server password support."),
    "os-server-tags": ("ServerTags", "Server tags support."),
    "os-server-start-stop": ("ServerStartStop", "Start/Stop instance compute API support."),
    "os-services": ("Services", "Services support."),
    "os-shelve": ("Shelve", "Instance shelve mode."),
    "os-simple-tenant-usage": ("SimpleTenantUsage", "Simple tenant usage extension."),
    "os-suspend-server": ("SuspendServer", "Enable suspend/resume server actions."),
    "os-tenant-networks": ("OSTenantNetworks", "Tenant-based Network Management Extension."),
    "os-user-data": ("UserData", "Add user_data to the Create Server API."),
}


def extension_body(alias):
    name, description = EXTENSIONS[alias]
    return {"name": name, "alias": alias, "description": description, "namespace": NAMESPACE,
            "updated": UPDATED, "links": []}


class ExtensionListView(ComputeView):
    policy = {"get": "any"}

    def get(self, request):
        return Response({"extensions": [extension_body(alias) for alias in sorted(EXTENSIONS)]})


class ExtensionView(ComputeView):
    policy = {"get": "any"}

    def get(self, request, alias):
        if alias not in EXTENSIONS:
            raise NotFound(f"Extension {alias} could not be found.")
        return Response({"extension": extension_body(alias)})
