"""Node agent tunables: a Django setting of the same name, else the
environment, else the default."""
import os
from pathlib import Path

from django.conf import settings


def _get(name, default, kind):
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return kind(value)


# Seconds between heartbeats (capacity and liveness) of each node.
HEARTBEAT_INTERVAL = _get("STRATUS_HEARTBEAT_INTERVAL", 10, float)
# Seconds between power-state syncs (database vs hypervisor).
POWER_SYNC_INTERVAL = _get("STRATUS_POWER_SYNC_INTERVAL", 30, float)
# Seconds between trims of this machine's image cache to
# settings.IMAGE_CACHE_MAX_BYTES (images no instance here uses go first).
IMAGE_CACHE_EVICT_INTERVAL = _get("STRATUS_IMAGE_CACHE_EVICT_INTERVAL", 600, float)
# How long a started domain may take to reach running.
SPAWN_TIMEOUT = _get("STRATUS_SPAWN_TIMEOUT", 120, float)
# How long stop and soft reboot wait for a clean (ACPI) shutdown before
# powering the guest off. Guests without ACPI handling always wait this long.
SHUTDOWN_TIMEOUT = _get("STRATUS_SHUTDOWN_TIMEOUT", 10, float)
# Where nodes keep their instances' disks and console logs, one
# directory per host: <NODES_DIR>/<host>/instances/<instance id>/.
NODES_DIR = Path(_get("STRATUS_NODES_DIR", Path(settings.VAR_DIR) / "nodes", str))
# The node's address on the management network (Nova's my_ip): its guests'
# VNC servers listen there, where the console proxy reaches them, and the
# node reports it as its hypervisor's host_ip. The default suits the
# all-in-one, whose proxy runs on the node.
MY_IP = _get("STRATUS_MY_IP", "127.0.0.1", str)
# What a simulated node (libvirt's test driver) offers.
SIMULATED_VCPUS = _get("STRATUS_SIMULATED_VCPUS", 16, int)
SIMULATED_MEMORY_MB = _get("STRATUS_SIMULATED_MEMORY_MB", 32768, int)
SIMULATED_DISK_GB = _get("STRATUS_SIMULATED_DISK_GB", 500, int)
# How long the boot's volume step waits for the server's new volumes to
# become available (Nova's block_device_allocate_retries times its interval).
BLOCK_DEVICE_TIMEOUT = _get("STRATUS_BLOCK_DEVICE_TIMEOUT", 180, float)
