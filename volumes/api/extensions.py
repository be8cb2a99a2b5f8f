"""GET /v3/{project_id}/extensions: the Cinder extensions Stratus really
serves (clients and Tempest look features up here by alias or name)."""
from rest_framework.response import Response

from volumes.api.base import CinderView

# The date each extension's API last changed, as Cinder lists them.
UPDATED = "2013-04-18T00:00:00+00:00"
# (alias, name, description)
SERVED = (
    ("os-admin-actions", "AdminActions", "Admin actions on volumes and snapshots: reset status, force delete."),
    ("os-availability-zone", "AvailabilityZones", "The availability zones of the volume services."),
    ("backups", "Backups", "Volume backups in the object store: create, incremental, restore, export, import."),
    ("os-backup-project-attr", "BackupProjectAttribute", "The project of a backup as its attribute."),
    ("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes",
     "The project and progress of a snapshot as its attributes."),
    ("os-hosts", "Hosts", "Admin-only: the volume hosts and their usage."),
    ("os-quota-class-sets", "QuotaClasses", "Quota classes: the default limits of every project."),
    ("os-quota-sets", "Quotas", "The quotas of a project."),
    ("qos-specs", "Qos_specs_manage", "QoS specs and their associations with volume types."),
    ("scheduler-stats", "Scheduler_stats", "The back ends' pools and their capacities."),
    ("os-services", "Services", "The volume services."),
    ("os-snapshot-actions", "SnapshotActions", "Admin updates of a snapshot's status and progress."),
    ("os-types-extra-specs", "TypesExtraSpecs", "Extra specs of volume types."),
    ("os-types-manage", "TypesManage", "Create, update and delete volume types."),
    ("os-vol-host-attr", "VolumeHostAttribute", "The host of a volume as its attribute."),
    ("os-vol-mig-status-attr", "VolumeMigStatusAttribute", "The migration status of a volume as its attribute."),
    ("os-vol-tenant-attr", "VolumeTenantAttribute", "The project of a volume as its attribute."),
    ("os-volume-actions", "VolumeActions", "Volume actions: extend, attach, detach, upload to image and more."),
    ("os-volume-image-metadata", "VolumeImageMetadata", "The image metadata of a volume: show, set, unset."),
    ("os-volume-transfer", "VolumeTransfer", "Transfer a volume to another project."),
    ("os-volume-type-access", "VolumeTypeAccess", "The projects that may use a private volume type."),
)


class ExtensionListView(CinderView):
    policy = {"get": "reader"}

    def get(self, request, project_id):
        return Response({"extensions": [{"alias": alias, "name": name, "description": description, "links": [],
                                         "updated": UPDATED} for alias, name, description in SERVED]})
