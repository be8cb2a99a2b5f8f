"""Block storage's tunables. Each reads a Django setting of the same name if
the project defines one, else the environment, else Cinder's default."""
import os
from pathlib import Path

from django.conf import settings


def _str(name, default):
    return str(getattr(settings, name, None) or os.environ.get(name, default))


def _int(name, default):
    return int(getattr(settings, name, None) or os.environ.get(name, default))


def _float(name, default):
    return float(getattr(settings, name, None) or os.environ.get(name, default))


# Where the file back end keeps its volume and snapshot files.
VOLUME_DIR = Path(_str("STRATUS_VOLUME_DIR", settings.VAR_DIR / "volumes"))
# The file back end's format for new volumes: raw (sparse) or qcow2.
VOLUME_FORMAT = _str("STRATUS_VOLUME_FORMAT", "raw")
# Capacity a file back end reports, in GiB; 0: the free space of its filesystem.
VOLUME_CAPACITY_GB = _int("STRATUS_VOLUME_CAPACITY_GB", 0)
# The Ceph RBD back end: the cluster's ceph.conf (empty: no RBD back end;
# when set, the all-in-one also runs the worker of a back end named rbd),
# its pool, the cephx user (empty: the conf's default, no auth) and the
# libvirt secret's uuid that holds that user's key on the nodes.
VOLUME_RBD_CEPH_CONF = _str("STRATUS_VOLUME_RBD_CEPH_CONF", "")
VOLUME_RBD_POOL = _str("STRATUS_VOLUME_RBD_POOL", "volumes")
VOLUME_RBD_USER = _str("STRATUS_VOLUME_RBD_USER", "")
VOLUME_RBD_SECRET_UUID = _str("STRATUS_VOLUME_RBD_SECRET_UUID", "")
# Cinder's max_over_subscription_ratio: how far allocations may pass capacity.
OVER_SUBSCRIPTION_RATIO = _float("STRATUS_VOLUME_OVER_SUBSCRIPTION_RATIO", 1.0)
# The availability zone volumes and back ends are in unless told otherwise.
AVAILABILITY_ZONE = _str("STRATUS_VOLUME_AVAILABILITY_ZONE", "nova")
# Seconds between a back end worker's heartbeats, and since the last one
# after which it is down.
HEARTBEAT_INTERVAL = _float("STRATUS_VOLUME_HEARTBEAT_INTERVAL", 10)
SERVICE_DOWN_TIME = _int("STRATUS_SERVICE_DOWN_TIME", 60)
# A volume or snapshot in creating, deleting or extending longer than this
# is ended in error by the reconciler.
TASK_DEADLINE = _int("STRATUS_VOLUME_TASK_DEADLINE", 600)
# The type a volume gets when none is named.
DEFAULT_VOLUME_TYPE = _str("STRATUS_DEFAULT_VOLUME_TYPE", "__DEFAULT__")
# Cinder's default quotas (quota_volumes, quota_gigabytes, ...); -1 is no limit.
DEFAULT_QUOTAS = {
    "volumes": _int("STRATUS_QUOTA_VOLUMES", 10),
    "snapshots": _int("STRATUS_QUOTA_SNAPSHOTS", 10),
    "gigabytes": _int("STRATUS_QUOTA_GIGABYTES", 1000),
    "backups": _int("STRATUS_QUOTA_BACKUPS", 10),
    "backup_gigabytes": _int("STRATUS_QUOTA_BACKUP_GIGABYTES", 1000),
    "groups": _int("STRATUS_QUOTA_GROUPS", 10),
    "per_volume_gigabytes": _int("STRATUS_QUOTA_PER_VOLUME_GIGABYTES", -1),
}
# Days a user message is kept (Cinder's message_ttl is 30 days).
MESSAGE_TTL_DAYS = _int("STRATUS_VOLUME_MESSAGE_TTL_DAYS", 30)
