"""Compute's tunables. Each reads a Django setting of the same name if the
project defines one, else the environment, else the default Nova uses."""
import os

from django.conf import settings


def _int(name, default):
    return int(getattr(settings, name, None) or os.environ.get(name, default))


def _float(name, default):
    return float(getattr(settings, name, None) or os.environ.get(name, default))


# A service or node whose last heartbeat is older than this is down.
SERVICE_DOWN_TIME = _int("STRATUS_SERVICE_DOWN_TIME", 60)
# Allocation ratios a node registers with unless it says otherwise.
CPU_ALLOCATION_RATIO = _float("STRATUS_CPU_ALLOCATION_RATIO", 4.0)
RAM_ALLOCATION_RATIO = _float("STRATUS_RAM_ALLOCATION_RATIO", 1.0)
DISK_ALLOCATION_RATIO = _float("STRATUS_DISK_ALLOCATION_RATIO", 1.0)
# Hosts one boot may be tried on before it ends in ERROR.
SCHEDULER_MAX_ATTEMPTS = _int("STRATUS_SCHEDULER_MAX_ATTEMPTS", 3)
# Pick at random among this many best hosts (Nova's host_subset_size): 1 is
# strictly best first; more spreads boots that are scheduled at the same time.
SCHEDULER_HOST_SUBSET_SIZE = _int("STRATUS_SCHEDULER_HOST_SUBSET_SIZE", 1)
# How the weigher spreads (positive: most free RAM first) or packs (negative).
RAM_WEIGHT_MULTIPLIER = _float("STRATUS_RAM_WEIGHT_MULTIPLIER", 1.0)
CPU_WEIGHT_MULTIPLIER = _float("STRATUS_CPU_WEIGHT_MULTIPLIER", 0.0)
# An instance that stays in a transitional task_state longer than this is
# moved to ERROR by the reconciler.
TASK_STATE_DEADLINE = _int("STRATUS_TASK_STATE_DEADLINE", 600)
# A boot still waiting for a scheduler this long has lost its message (a
# broker restart without it, a failed publish): the reconciler sends it again.
SCHEDULE_RESEND_AFTER = _int("STRATUS_SCHEDULE_RESEND_AFTER", 60)
# A resize left unconfirmed this many seconds is confirmed by the
# reconciler (Nova's resize_confirm_window); 0 waits for the user forever.
RESIZE_CONFIRM_WINDOW = _int("STRATUS_RESIZE_CONFIRM_WINDOW", 0)
# How long the API waits for a node to answer a synchronous call (console
# log, VNC address) before it answers 409: an API worker thread waits that
# long, so keep it to a few seconds.
NODE_CALL_TIMEOUT = _float("STRATUS_NODE_CALL_TIMEOUT", 5)
# How many requests of one API process may wait for nodes at once; more are
# answered 409 at once. Below gunicorn's threads per process (4), so calls to
# a slow node never take every thread from token checks and the rest.
NODE_CALLS_PER_API_PROCESS = _int("STRATUS_NODE_CALLS_PER_API_PROCESS", 2)
# Per-project defaults when a project has no override (Nova's defaults).
DEFAULT_QUOTAS = {
    "instances": _int("STRATUS_QUOTA_INSTANCES", 10),
    "cores": _int("STRATUS_QUOTA_CORES", 20),
    "ram": _int("STRATUS_QUOTA_RAM", 51200),
    "key_pairs": _int("STRATUS_QUOTA_KEY_PAIRS", 100),
    "metadata_items": _int("STRATUS_QUOTA_METADATA_ITEMS", 128),
    "server_groups": _int("STRATUS_QUOTA_SERVER_GROUPS", 10),
    "server_group_members": _int("STRATUS_QUOTA_SERVER_GROUP_MEMBERS", 10),
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
}
# Seconds a shelved server keeps its host before it is offloaded (Nova's
# shelved_offload_time): 0 offloads at once, -1 never.
SHELVED_OFFLOAD_TIME = _int("STRATUS_SHELVED_OFFLOAD_TIME", 0)
