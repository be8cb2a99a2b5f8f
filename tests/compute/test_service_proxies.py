"""Nova's proxies to the Networking and Block Storage APIs below 2.36, as
Tempest's compute tests and old clients call them: os-security-groups and
their rules, os-floating-ips and their pools with the addFloatingIp /
removeFloatingIp actions (below 2.44), os-volumes and os-snapshots. Each
answers in Nova's shape from what the other API holds, refuses as Nova
does, and is 404 from 2.36 on."""
import uuid

import pytest

from compute.models import Instance, VmState
from network import ports
from network.models import Network
from tests.compute.nodes import wait_until
from tests.volumes.conftest import control, live_db, volume_worker  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live

OLD, NEW = {"OpenStack-API-Version": "compute 2.1"}, {"OpenStack-API-Version": "compute 2.36"}
GROUP_KEYS = {"id", "name", "description", "tenant_id", "rules"}
RULE_KEYS = {"id", "parent_group_id", "ip_protocol", "from_port", "to_port", "group", "ip_range"}


@pytest.fixture(scope="module")
def tokens(cloud):
    return {"admin": cloud.token("stratus"), "demo": cloud.token("stratus-demo")}


def project_of(api, token):
    return api.get("/identity/v3/auth/tokens", token=token,
                   headers={"X-Subject-Token": token}).json()["token"]["project"]["id"]


def nova(api, method, path, token, version=OLD, **kwargs):
    return api.request(method, f"/compute/v2.1/{path}", token=token, headers=version, **kwargs)


def test_security_groups_and_rules_through_nova_are_neutrons(cloud, api, tokens):
    demo, admin = tokens["demo"], tokens["admin"]
    # Leading, trailing and inner spaces are kept, as Neutron and Nova keep them.
    name = f" web {uuid.uuid4().hex[:6]} "
    made = nova(api, "POST", "os-security-groups", demo, json={"security_group": {
        "name": name, "description": "web servers"}})
    assert made.status_code == 200, made.text
    group = made.json()["security_group"]
    assert set(group) == GROUP_KEYS and group["name"] == name and group["description"] == "web servers"
    # Neutron's egress rules of a new group are not Nova's to show.
    assert group["rules"] == []
    neutron_group = api.get(f"/network/v2.0/security-groups/{group['id']}", token=demo).json()["security_group"]
    assert neutron_group["name"] == name

    rule = nova(api, "POST", "os-security-group-rules", demo, json={"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
        "cidr": "10.1.2.3/8"}})
    assert rule.status_code == 200, rule.text
    rule = rule.json()["security_group_rule"]
    assert set(rule) == RULE_KEYS
    assert (rule["ip_protocol"], rule["from_port"], rule["to_port"], rule["ip_range"]) == (
        "tcp", 22, 22, {"cidr": "10.1.2.3/8"})  # the create echoes the CIDR as given
    assert nova(api, "GET", f"os-security-groups/{group['id']}", demo).json()["security_group"]["rules"][0][
        "ip_range"] == {"cidr": "10.0.0.0/8"}
    from_group = nova(api, "POST", "os-security-group-rules", demo, json={"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "icmp", "from_port": -1, "to_port": -1,
        "group_id": group["id"]}}).json()["security_group_rule"]
    assert from_group["group"]["name"] == name and from_group["ip_range"] == {}

    shown = nova(api, "GET", f"os-security-groups/{group['id']}", demo).json()["security_group"]
    assert sorted(r["id"] for r in shown["rules"]) == sorted([rule["id"], from_group["id"]])
    listed = nova(api, "GET", "os-security-groups", demo).json()["security_groups"]
    assert {"default", name} <= {g["name"] for g in listed}

    # Refusals name the field, change nothing, in Nova's envelope.
    for bad, field in ((dict(ip_protocol="gre"), "protocol"), (dict(ip_protocol="tcp", from_port=0, to_port=22),
                                                                   "port"),
                       (dict(ip_protocol="tcp", from_port=1, to_port=2, cidr="not-a-cidr"), "cidr")):
        refused = nova(api, "POST", "os-security-group-rules", demo, json={"security_group_rule": {
            "parent_group_id": group["id"], **bad}})
        assert refused.status_code == 400, refused.text
        assert field in refused.json()["badRequest"]["message"].lower()
    twice = nova(api, "POST", "os-security-group-rules", demo, json={"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}})
    assert twice.status_code == 400, twice.text
    assert len(nova(api, "GET", f"os-security-groups/{group['id']}", demo).json()["security_group"]["rules"]) == 2
    assert nova(api, "POST", "os-security-groups", demo, json={"security_group": {"name": "x"}}).status_code == 400

    # Another project's group is not there for demo; the new API hides the proxy.
    admin_group = nova(api, "POST", "os-security-groups", admin, json={"security_group": {
        "name": f"admins-{uuid.uuid4().hex[:6]}", "description": ""}}).json()["security_group"]
    assert nova(api, "GET", f"os-security-groups/{admin_group['id']}", demo).status_code == 404
    assert nova(api, "DELETE", f"os-security-groups/{admin_group['id']}", demo).status_code == 404
    assert nova(api, "GET", "os-security-groups", demo, version=NEW).status_code == 404
    # A trailing slash names a member with no id, as in Nova.
    for path in ("os-security-groups/", "os-floating-ips/", "os-volumes/", "os-snapshots/"):
        assert nova(api, "GET", path, demo).status_code == 404, path
        assert nova(api, "DELETE", path, demo).status_code == 404, path

    renamed = nova(api, "PUT", f"os-security-groups/{group['id']}", demo, json={"security_group": {
        "name": name + "2", "description": "renamed"}})
    assert renamed.status_code == 200 and renamed.json()["security_group"]["name"] == name + "2"
    assert nova(api, "DELETE", f"os-security-group-rules/{rule['id']}", demo).status_code == 202
    assert nova(api, "DELETE", f"os-security-group-rules/{rule['id']}", demo).status_code == 404
    assert nova(api, "DELETE", f"os-security-groups/{group['id']}", demo).status_code == 202
    assert nova(api, "GET", f"os-security-groups/{group['id']}", demo).status_code == 404
    assert nova(api, "DELETE", f"os-security-groups/{admin_group['id']}", admin).status_code == 202


@pytest.fixture
def external_network(live_db, api, tokens):
    admin = tokens["admin"]
    name = f"public-{uuid.uuid4().hex[:6]}"
    network = api.post("/network/v2.0/networks", token=admin, json={"network": {
        "name": name, "router:external": True, "shared": False}}).json()["network"]
    subnet = api.post("/network/v2.0/subnets", token=admin, json={"subnet": {
        "network_id": network["id"], "cidr": "198.51.100.0/24", "ip_version": 4, "enable_dhcp": False}})
    assert subnet.status_code == 201, subnet.text
    yield network
    for floating_ip in api.get("/network/v2.0/floatingips", token=admin,
                               params={"floating_network_id": network["id"]}).json()["floatingips"]:
        api.delete(f"/network/v2.0/floatingips/{floating_ip['id']}", token=admin)


def routed_server(api, token, external):
    """A server row with a port on a tenant network routed to `external`."""
    network = api.post("/network/v2.0/networks", token=token, json={"network": {
        "name": f"fip-{uuid.uuid4().hex[:6]}"}}).json()["network"]
    subnet = api.post("/network/v2.0/subnets", token=token, json={"subnet": {
        "network_id": network["id"], "cidr": "10.77.0.0/24", "ip_version": 4}}).json()["subnet"]
    router = api.post("/network/v2.0/routers", token=token, json={"router": {
        "name": "fip-router", "external_gateway_info": {"network_id": external["id"]}}}).json()["router"]
    added = api.put(f"/network/v2.0/routers/{router['id']}/add_router_interface", token=token,
                    json={"subnet_id": subnet["id"]})
    assert added.status_code == 200, added.text
    project_id = project_of(api, token)
    instance = Instance.objects.create(name="fip-server", project_id=project_id, user_id="u",
                                       flavor_id_at_boot="42", flavor_name="m1.nano", vcpus=1, memory_mb=128,
                                       root_gb=1, vm_state=VmState.ACTIVE)
    port = ports.create_port(Network.objects.get(pk=network["id"]), project_id, device_id=str(instance.pk),
                             device_owner="compute:nova")
    return instance, port.fixed_ips.get().ip_address


def test_floating_ips_through_nova_are_neutrons_and_follow_the_server(cloud, api, tokens, external_network):
    demo = tokens["demo"]
    pools = nova(api, "GET", "os-floating-ip-pools", demo).json()["floating_ip_pools"]
    assert {"name": external_network["name"]} in pools
    assert nova(api, "POST", "os-floating-ips", demo, json={"pool": "no-such-pool"}).status_code == 404

    made = nova(api, "POST", "os-floating-ips", demo, json={"pool": external_network["name"]})
    assert made.status_code == 200, made.text
    floating_ip = made.json()["floating_ip"]
    assert set(floating_ip) == {"id", "ip", "fixed_ip", "instance_id", "pool"}
    assert floating_ip["pool"] == external_network["name"] and floating_ip["ip"].startswith("198.51.100.")
    assert floating_ip["instance_id"] is None and floating_ip["fixed_ip"] is None
    assert api.get(f"/network/v2.0/floatingips/{floating_ip['id']}", token=demo).status_code == 200

    instance, fixed_ip = routed_server(api, demo, external_network)
    action = f"servers/{instance.pk}/action"
    added = nova(api, "POST", action, demo, json={"addFloatingIp": {"address": floating_ip["ip"]}})
    assert added.status_code == 202, added.text
    shown = nova(api, "GET", f"os-floating-ips/{floating_ip['id']}", demo).json()["floating_ip"]
    assert (shown["instance_id"], shown["fixed_ip"]) == (str(instance.pk), fixed_ip)
    assert floating_ip["id"] in {ip["id"] for ip in nova(api, "GET", "os-floating-ips", demo).json()["floating_ips"]}

    assert nova(api, "POST", action, demo, json={"addFloatingIp": {"address": "203.0.113.9"}}).status_code == 404
    assert nova(api, "POST", action, demo, json={"addFloatingIp": {}}).status_code == 400
    # The actions went with 2.44.
    gone = nova(api, "POST", action, demo, version={"OpenStack-API-Version": "compute 2.44"},
                json={"removeFloatingIp": {"address": floating_ip["ip"]}})
    assert gone.status_code == 400
    assert nova(api, "POST", action, demo, json={"removeFloatingIp": {"address": floating_ip["ip"]}}).status_code \
        == 202
    assert nova(api, "GET", f"os-floating-ips/{floating_ip['id']}", demo).json()["floating_ip"]["instance_id"] is None
    again = nova(api, "POST", action, demo, json={"removeFloatingIp": {"address": floating_ip["ip"]}})
    assert again.status_code == 409, again.text

    assert nova(api, "GET", f"os-floating-ips/{floating_ip['id']}", tokens["admin"], version=NEW).status_code == 404
    assert nova(api, "DELETE", f"os-floating-ips/{floating_ip['id']}", demo).status_code == 202
    assert nova(api, "GET", f"os-floating-ips/{floating_ip['id']}", demo).status_code == 404
    assert nova(api, "GET", "os-floating-ips/not-an-id", demo).status_code == 404


def status_of(api, token, collection, item_id):
    (item,) = nova(api, "GET", f"{collection}/{item_id}", token).json().values()
    return item["status"]


def test_volumes_and_snapshots_through_nova_are_cinders(cloud, api, tokens, volume_worker):
    demo, admin = tokens["demo"], tokens["admin"]
    made = nova(api, "POST", "os-volumes", demo, json={"volume": {
        "size": 1, "display_name": "nova-made", "display_description": "through the proxy",
        "metadata": {"purpose": "proxy"}}})
    assert made.status_code == 200, made.text
    volume = made.json()["volume"]
    assert set(volume) == {"id", "status", "size", "availabilityZone", "createdAt", "attachments", "displayName",
                           "displayDescription", "volumeType", "snapshotId", "metadata"}
    assert (volume["size"], volume["displayName"], volume["metadata"]) == (1, "nova-made", {"purpose": "proxy"})
    assert volume["attachments"] == [{}]
    wait_until(lambda: status_of(api, demo, "os-volumes", volume["id"]) == "available", message="the volume")
    shown = nova(api, "GET", f"os-volumes/{volume['id']}", demo).json()["volume"]
    assert shown["status"] == "available" and shown["volumeType"]
    for path in ("os-volumes", "os-volumes/detail"):
        assert volume["id"] in {v["id"] for v in nova(api, "GET", path, demo).json()["volumes"]}

    snapshot = nova(api, "POST", "os-snapshots", demo, json={"snapshot": {
        "volume_id": volume["id"], "display_name": "nova-snap"}})
    assert snapshot.status_code == 200, snapshot.text
    snapshot = snapshot.json()["snapshot"]
    assert set(snapshot) == {"id", "volumeId", "status", "size", "createdAt", "displayName", "displayDescription"}
    assert (snapshot["volumeId"], snapshot["size"], snapshot["displayName"]) == (volume["id"], 1, "nova-snap")
    wait_until(lambda: status_of(api, demo, "os-snapshots", snapshot["id"]) == "available", message="the snapshot")
    assert snapshot["id"] in {s["id"] for s in nova(api, "GET", "os-snapshots/detail", demo).json()["snapshots"]}
    # Cinder's refusal (a volume with snapshots) in Nova's envelope.
    refused = nova(api, "DELETE", f"os-volumes/{volume['id']}", demo)
    assert refused.status_code == 400 and "snapshot" in refused.json()["badRequest"]["message"].lower()

    for bad in ({"size": 0}, {"size": "big"}, {"display_name": "no size"}):
        answer = nova(api, "POST", "os-volumes", demo, json={"volume": bad})
        assert answer.status_code == 400 and "size" in answer.json()["badRequest"]["message"]
    assert nova(api, "POST", "os-snapshots", demo, json={"snapshot": {}}).status_code == 400
    admins = nova(api, "POST", "os-volumes", admin, json={"volume": {"size": 1}}).json()["volume"]
    assert nova(api, "GET", f"os-volumes/{admins['id']}", demo).status_code == 404
    assert nova(api, "DELETE", f"os-volumes/{admins['id']}", demo).status_code == 404
    assert admins["id"] not in {v["id"] for v in nova(api, "GET", "os-volumes", demo).json()["volumes"]}
    assert nova(api, "GET", f"os-volumes/{uuid.uuid4()}", demo).status_code == 404
    assert nova(api, "GET", f"os-volumes/{volume['id']}", demo, version=NEW).status_code == 404

    assert nova(api, "DELETE", f"os-snapshots/{snapshot['id']}", demo).status_code == 202
    wait_until(lambda: nova(api, "GET", f"os-snapshots/{snapshot['id']}", demo).status_code == 404,
               message="the snapshot to go")
    assert nova(api, "DELETE", f"os-volumes/{volume['id']}", demo).status_code == 202
    wait_until(lambda: nova(api, "GET", f"os-volumes/{volume['id']}", demo).status_code == 404,
               message="the volume to go")
    wait_until(lambda: status_of(api, admin, "os-volumes", admins["id"]) == "available", message="admin's volume")
    assert nova(api, "DELETE", f"os-volumes/{admins['id']}", admin).status_code == 202
