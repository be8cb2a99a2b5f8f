"""Bodies Nova's own clients and Tempest check: what PUT /servers/{id} and
rebuild answer (the server without its extension attributes below 2.75),
the access addresses a server is created with, the ip / ip6 filters, and
the network quotas and limits Nova still shows below 2.36."""
import uuid

import pytest

from compute.models import Instance
from network.models import IPAllocation, Network, Port, Subnet
from tests.compute import pipeline
from tests.compute.nodes import wait_until
from tests.compute.pipeline import start_nodes, stop_nodes, unlimited_quota, upload_tiny_image, wait_settled

live_db, control = pipeline.live_db, pipeline.control

pytestmark = pytest.mark.live

EXTENSION_KEYS = {"OS-EXT-AZ:availability_zone", "config_drive", "OS-SRV-USG:launched_at", "OS-EXT-STS:vm_state",
                  "os-extended-volumes:volumes_attached", "OS-EXT-SRV-ATTR:host"}


def version(minor):
    return {"OpenStack-API-Version": f"compute 2.{minor}"}


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    return upload_tiny_image(cloud, tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def node(cloud, control, tmp_path_factory):
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("bodies"), 1, "bodies")
    yield hosts[0]
    stop_nodes(worker, hosts)


def wait_status(api, token, server_id, status):
    def reached():
        shown = api.get(f"/compute/v2.1/servers/{server_id}", token=token, headers=version(60)).json()["server"]
        return shown["status"] == status and not shown["OS-EXT-STS:task_state"]

    wait_until(reached, timeout=120, message=status)


def create(api, token, image, **extra):
    body = {"server": {"name": f"bodies-{uuid.uuid4().hex[:6]}", "imageRef": image, "flavorRef": "42",
                       "networks": "none", **extra}}
    return api.post("/compute/v2.1/servers", token=token, json=body, headers=version(60))


def test_update_and_rebuild_answer_novas_reduced_server_body(cloud, api, node, image):
    unlimited_quota(cloud)
    token = cloud.token("stratus")
    answer = create(api, token, image, accessIPv4="192.0.2.10", accessIPv6="2001:db8::10")
    assert answer.status_code == 202, answer.text
    server_id = answer.json()["server"]["id"]
    assert wait_settled(cloud, [server_id])[server_id].status == "ACTIVE"
    shown = api.get(f"/compute/v2.1/servers/{server_id}", token=token, headers=version(60)).json()["server"]
    assert (shown["accessIPv4"], shown["accessIPv6"]) == ("192.0.2.10", "2001:db8::10")
    assert EXTENSION_KEYS <= set(shown)  # an admin's GET has them all

    updated = api.put(f"/compute/v2.1/servers/{server_id}", token=token, headers=version(60),
                      json={"server": {"name": "renamed", "accessIPv4": "192.0.2.11"}})
    assert updated.status_code == 200, updated.text
    body = updated.json()["server"]
    assert body["name"] == "renamed" and body["accessIPv4"] == "192.0.2.11"
    assert not EXTENSION_KEYS & set(body) and "key_name" not in body and "tags" in body

    rebuilt = api.post(f"/compute/v2.1/servers/{server_id}/action", token=token, headers=version(57), json={
        "rebuild": {"imageRef": image, "adminPass": "rebuilt-pass", "user_data": "aGVsbG8=", "key_name": None}})
    assert rebuilt.status_code == 202, rebuilt.text
    body = rebuilt.json()["server"]
    assert body["adminPass"] == "rebuilt-pass" and body["user_data"] == "aGVsbG8=" and body["key_name"] is None
    assert not EXTENSION_KEYS & set(body)
    assert Instance.objects.get(pk=server_id).user_data == "aGVsbG8="
    wait_status(api, token, server_id, "ACTIVE")
    older = api.post(f"/compute/v2.1/servers/{server_id}/action", token=token, headers=version(1),
                     json={"rebuild": {"imageRef": image}}).json()["server"]
    assert older["adminPass"] and "key_name" not in older and "user_data" not in older
    wait_status(api, token, server_id, "ACTIVE")
    assert api.delete(f"/compute/v2.1/servers/{server_id}", token=token).status_code == 204


def test_access_addresses_that_are_not_addresses_are_refused(live_db, cloud, api, image):
    token = cloud.token("stratus-demo")
    before = Instance.objects.filter(deleted=False).count()
    for field, value in (("accessIPv4", "1.1.1.1.1"), ("accessIPv4", "2001:db8::1"), ("accessIPv6", "1.1.1.1"),
                         ("accessIPv6", "not-an-address"), ("accessIPv4", 5)):
        refused = create(api, token, image, **{field: value})
        assert refused.status_code == 400 and field in refused.json()["badRequest"]["message"], refused.text
    assert Instance.objects.filter(deleted=False).count() == before


def test_the_ip_filters_find_servers_by_part_of_a_fixed_address(live_db, cloud, api, image):
    token = cloud.token("stratus")
    project_id = cloud.connect("stratus").current_project_id
    servers = [create(api, token, image).json()["server"]["id"] for _ in range(2)]
    network = Network.objects.create(name=f"ipfilter-{uuid.uuid4().hex[:6]}", project_id=project_id)
    v4 = Subnet.objects.create(network=network, project_id=project_id, ip_version=4, cidr="198.51.100.0/24")
    v6 = Subnet.objects.create(network=network, project_id=project_id, ip_version=6, cidr="2001:db8:77::/64")
    try:
        for server_id, v4_address, v6_address in ((servers[0], "198.51.100.17", "2001:db8:77::17"),
                                                  (servers[1], "198.51.100.170", "2001:db8:77::99")):
            port = Port.objects.create(network=network, project_id=project_id, device_id=server_id,
                                       device_owner="compute:nova",
                                       mac_address=f"fa:16:3e:00:00:{servers.index(server_id):02x}")
            IPAllocation.objects.create(port=port, subnet=v4, ip_address=v4_address)
            IPAllocation.objects.create(port=port, subnet=v6, ip_address=v6_address)
        # The network's DHCP port matches too, and is no server.
        dhcp = Port.objects.create(network=network, project_id=project_id, device_id="dhcp-ipfilter",
                                   device_owner="network:dhcp", mac_address="fa:16:3e:00:00:aa")
        IPAllocation.objects.create(port=dhcp, subnet=v4, ip_address="198.51.100.172")

        def found(query):
            answer = api.get(f"/compute/v2.1/servers?{query}", token=token, headers=version(60))
            assert answer.status_code == 200, answer.text
            return {row["id"] for row in answer.json()["servers"]}

        assert found("ip=198.51.100.17") == set(servers)  # a part of both
        assert found("ip=198.51.100.170") == {servers[1]}
        assert found("ip6=2001:db8:77::17") == {servers[0]}
        assert found("ip=203.0.113.") == set()
        assert found("ip=2001:db8:77::99") == set()  # ip is IPv4 only
    finally:
        Port.objects.filter(network=network).delete()
        Subnet.objects.filter(network=network).delete()
        network.delete()
        for server_id in servers:
            api.delete(f"/compute/v2.1/servers/{server_id}", token=token)


def test_quotas_and_limits_show_the_network_quotas_below_2_36(cloud, api):
    token = cloud.token("stratus")
    project_id = cloud.connect("stratus").current_project_id
    network_quota = api.get(f"/network/v2.0/quotas/{project_id}", token=token).json()["quota"]
    old = api.get(f"/compute/v2.1/os-quota-sets/{project_id}", token=token, headers=version(1)).json()["quota_set"]
    assert (old["floating_ips"], old["security_groups"], old["security_group_rules"], old["fixed_ips"]) == (
        network_quota["floatingip"], network_quota["security_group"], network_quota["security_group_rule"], -1)
    new = api.get(f"/compute/v2.1/os-quota-sets/{project_id}", token=token, headers=version(36)).json()["quota_set"]
    assert "floating_ips" not in new and "security_groups" not in new
    detail = api.get(f"/compute/v2.1/os-quota-sets/{project_id}/detail", token=token,
                     headers=version(1)).json()["quota_set"]
    assert detail["security_groups"]["limit"] == network_quota["security_group"]
    defaults = api.get(f"/compute/v2.1/os-quota-sets/{project_id}/defaults", token=token,
                       headers=version(1)).json()["quota_set"]
    assert {"floating_ips", "fixed_ips", "security_groups", "security_group_rules"} <= set(defaults)
    absolute = api.get("/compute/v2.1/limits", token=token, headers=version(1)).json()["limits"]["absolute"]
    assert absolute["maxSecurityGroupRules"] == network_quota["security_group_rule"]
    assert absolute["maxTotalFloatingIps"] == network_quota["floatingip"]
    assert absolute["totalSecurityGroupsUsed"] >= 0 and absolute["totalFloatingIpsUsed"] >= 0
    later = api.get("/compute/v2.1/limits", token=token, headers=version(36)).json()["limits"]["absolute"]
    assert "maxSecurityGroupRules" not in later and "totalFloatingIpsUsed" not in later


def test_disk_config_is_kept_as_asked_through_create_update_rebuild_and_resize(cloud, api, node, image):
    unlimited_quota(cloud)
    token = cloud.token("stratus")
    refused = create(api, token, image, **{"OS-DCF:diskConfig": "SOMETIMES"})
    assert refused.status_code == 400 and "OS-DCF:diskConfig" in refused.json()["badRequest"]["message"]
    answer = create(api, token, image, **{"OS-DCF:diskConfig": "AUTO"})
    assert answer.status_code == 202 and answer.json()["server"]["OS-DCF:diskConfig"] == "AUTO"
    server_id = answer.json()["server"]["id"]
    url = f"/compute/v2.1/servers/{server_id}"

    def disk_config():
        return api.get(url, token=token, headers=version(60)).json()["server"]["OS-DCF:diskConfig"]

    assert wait_settled(cloud, [server_id])[server_id].status == "ACTIVE" and disk_config() == "AUTO"
    updated = api.put(url, token=token, json={"server": {"OS-DCF:diskConfig": "MANUAL"}}, headers=version(60))
    assert updated.json()["server"]["OS-DCF:diskConfig"] == "MANUAL" and disk_config() == "MANUAL"
    rebuilt = api.post(f"{url}/action", token=token, headers=version(60),
                       json={"rebuild": {"imageRef": image, "OS-DCF:diskConfig": "AUTO"}})
    assert rebuilt.json()["server"]["OS-DCF:diskConfig"] == "AUTO"
    wait_status(api, token, server_id, "ACTIVE")
    resized = api.post(f"{url}/action", token=token, headers=version(60),
                       json={"resize": {"flavorRef": "1", "OS-DCF:diskConfig": "MANUAL"}})
    assert resized.status_code == 202, resized.text
    wait_status(api, token, server_id, "VERIFY_RESIZE")
    assert disk_config() == "MANUAL"
    assert api.delete(url, token=token).status_code == 204
