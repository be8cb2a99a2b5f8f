"""Server diagnostics (admins) from a simulated node's hypervisor (libvirt's
test driver counts for its domains): Nova's common format from 2.48 and
the libvirt driver's flat one before, through the API and
`openstack server show --diagnostics`; members are refused, and a server
without a domain is a 409."""
import pytest

from compute.models import Instance, VmState
from tests.compute import test_server_snapshot
from tests.compute.test_server_snapshot import boot

live_db, control = test_server_snapshot.live_db, test_server_snapshot.control
image, node = test_server_snapshot.image, test_server_snapshot.node

pytestmark = pytest.mark.live


def diagnostics(api, server_id, token, version):
    return api.get(f"/compute/v2.1/servers/{server_id}/diagnostics", token=token,
                   headers={"OpenStack-API-Version": f"compute {version}"})


def test_an_admin_reads_the_hypervisors_counters_in_both_formats(cloud, api, node, image):
    server_id, = boot(cloud, image)
    admin = cloud.token()
    common = diagnostics(api, server_id, admin, "2.48")
    assert common.status_code == 200, common.text
    body = common.json()
    assert body["state"] == "running" and body["driver"] == "libvirt" and body["hypervisor_os"] == "linux"
    assert body["num_cpus"] == len(body["cpu_details"]) >= 1 and body["num_disks"] == len(body["disk_details"]) >= 1
    assert body["memory_details"]["maximum"] == 128  # m1.nano's RAM, in MiB
    assert set(body["disk_details"][0]) == {"read_bytes", "read_requests", "write_bytes", "write_requests",
                                            "errors_count"}
    assert body["uptime"] is not None and body["uptime"] >= 0 and body["config_drive"] is False

    legacy = diagnostics(api, server_id, admin, "2.1").json()
    assert "cpu0_time" in legacy and legacy["memory"] == 128 * 1024
    assert {"vda_read", "vda_read_req", "vda_write", "vda_write_req", "vda_errors"} <= set(legacy)

    shown = cloud.openstack("server", "show", "--diagnostics", server_id, "-f", "json")
    assert "cpu0_time" in shown or shown.get("state") == "running", shown


def test_members_are_refused_and_a_server_without_a_domain_is_409(cloud, api, node, image):
    demo = cloud.token("stratus-demo")
    assert diagnostics(api, "00000000-0000-0000-0000-000000000000", demo, "2.48").status_code == 403
    server_id, = boot(cloud, image)
    assert diagnostics(api, server_id, demo, "2.48").status_code == 403

    Instance.objects.filter(pk=server_id).update(vm_state=VmState.BUILDING)
    try:
        building = diagnostics(api, server_id, cloud.token(), "2.48")
        assert building.status_code == 409 and "get_diagnostics" in building.text
    finally:
        Instance.objects.filter(pk=server_id).update(vm_state=VmState.ACTIVE)
