"""GET /servers/{id}/diagnostics (admins): what the hypervisor counts for a
server's domain, asked of its node. From 2.48 in Nova's common format;
before it, the libvirt driver's flat one (cpu0_time, vda_read, ...)."""
from django.utils import timezone
from rest_framework.response import Response

from cloud.errors import Conflict
from compute import conf
from compute.api.base import ComputeView
from compute.api.consoles import waiting_for_node
from compute.models import PowerState, VmState
from workers import pipelines

# A server with a domain on a node (Nova refuses the others with 409).
DIAGNOSABLE_STATES = (VmState.ACTIVE, VmState.PAUSED, VmState.SUSPENDED, VmState.STOPPED, VmState.RESIZED)
STATE_NAMES = {PowerState.NOSTATE: "pending", PowerState.RUNNING: "running", PowerState.PAUSED: "paused",
               PowerState.SHUTDOWN: "shutdown", PowerState.CRASHED: "crashed", PowerState.SUSPENDED: "suspended"}


def common_format(instance, counters):
    maximum_kib, current_kib = counters["memory_kib"]
    disks = [{"read_bytes": read_bytes, "read_requests": read_requests, "write_bytes": write_bytes,
              "write_requests": write_requests, "errors_count": errors}
             for _dev, read_requests, read_bytes, write_requests, write_bytes, errors in counters["disks"]]
    nics = [{"mac_address": mac, "rx_octets": rx_bytes, "rx_packets": rx_packets, "rx_errors": rx_errors,
             "rx_drop": rx_drops, "rx_rate": None, "tx_octets": tx_bytes, "tx_packets": tx_packets,
             "tx_errors": tx_errors, "tx_drop": tx_drops, "tx_rate": None}
            for _dev, mac, rx_bytes, rx_packets, rx_errors, rx_drops, tx_bytes, tx_packets, tx_errors, tx_drops
            in counters["nics"]]
    uptime = int((timezone.now() - instance.launched_at).total_seconds()) if instance.launched_at else None
    return {
        "state": STATE_NAMES.get(counters["power_state"], "pending"), "driver": "libvirt",
        "hypervisor": counters["hypervisor"], "hypervisor_os": "linux", "uptime": uptime,
        "config_drive": bool(instance.config_drive),
        "num_cpus": len(counters["cpus"]), "num_disks": len(disks), "num_nics": len(nics),
        "memory_details": {"maximum": maximum_kib // 1024, "used": current_kib // 1024},
        "cpu_details": [{"id": number, "time": time_ns, "utilisation": None} for number, time_ns in counters["cpus"]],
        "disk_details": disks, "nic_details": nics,
    }


def libvirt_format(counters):
    body = {f"cpu{number}_time": time_ns for number, time_ns in counters["cpus"]}
    body["memory"] = counters["memory_kib"][1]
    body.update({f"memory-{name}": value for name, value in counters["memory_stats"].items()})
    for dev, read_requests, read_bytes, write_requests, write_bytes, errors in counters["disks"]:
        body.update({f"{dev}_read_req": read_requests, f"{dev}_read": read_bytes, f"{dev}_write_req": write_requests,
                     f"{dev}_write": write_bytes, f"{dev}_errors": errors})
    for dev, _mac, *values in counters["nics"]:
        for suffix, value in zip(("rx", "rx_packets", "rx_errors", "rx_drop", "tx", "tx_packets", "tx_errors",
                                  "tx_drop"), values):
            body[f"{dev}_{suffix}"] = value
    return body


class ServerDiagnosticsView(ComputeView):
    policy = {"get": "admin"}

    def get(self, request, server_id):
        from compute.api.servers import find_instance  # servers imports the API modules

        instance = find_instance(request, server_id)
        if not instance.host or instance.node is None or instance.vm_state not in DIAGNOSABLE_STATES:
            raise Conflict(f"Cannot 'get_diagnostics' instance {instance.id} while it is in vm_state "
                           f"{instance.vm_state}.")
        with waiting_for_node(instance, "Diagnostics"):
            counters = pipelines.diagnostics(instance.pk, instance.host, conf.NODE_CALL_TIMEOUT)
        if request.api_version >= (2, 48):
            return Response(common_format(instance, counters))
        return Response(libvirt_format(counters))
