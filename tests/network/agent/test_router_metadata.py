"""IPv6 metadata from the router's namespace, for a network that has no
DHCP namespace (DHCP off on its subnet): a machine on the network asks
[fe80::a9fe:a9fe] on its link and the router's leg answers, for its own
instance, from the live API; once the network has a DHCP port (its DHCP
namespace serves it) the router's leg stops answering. The network,
router and ports are made through the API; a network agent for a host
played by a namespace runs in this process on the cloud's database."""
import base64
import json
import os
import uuid
from dataclasses import replace

import pytest

from compute.models import Instance, VmState
from network import ports as port_rows
from network.agent import iplib, metadata_proxy, node, routers
from network.agent import resources as kernel
from network.models import Agent, Port
from tests.conftest import Api
from tests.network.conftest import Neutron, unique

from .test_metadata_proxy import KEY, USER_DATA, curl6

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root (namespaces, bridges)")


@pytest.fixture
def live_db(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def tenant(cloud, live_db):
    """A demo network whose IPv6 subnet has no DHCP, a router with an
    interface on it, an instance with a key and its port; removed afterwards."""
    demo = cloud.connect("stratus-demo")
    neutron = Neutron(Api(cloud.url), demo.auth_token)
    network = neutron.network(name=unique("md-router"))
    subnet = neutron.create("subnets", "subnet", network_id=network["id"], cidr="2001:db8:161::/64", ip_version=6,
                            enable_dhcp=False)
    router = neutron.create("routers", "router", name=unique("md-router"))
    added = neutron.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    assert added.status_code == 200, added.text
    instance = Instance.objects.create(
        name="guest6", hostname="guest6", project_id=demo.current_project_id, user_id="u", flavor_id_at_boot="1",
        flavor_name="m1.nano", vcpus=1, memory_mb=128, root_gb=1, vm_state=VmState.ACTIVE, key_name="k",
        key_data=KEY, user_data=base64.b64encode(USER_DATA).decode())
    port = neutron.port(network, device_id=str(instance.pk), device_owner="compute:nova")
    yield {"network": network, "subnet": subnet, "router": router, "port": port, "instance": instance}
    Port.objects.filter(network_id=network["id"], device_owner=port_rows.DHCP).delete()
    neutron.delete(f"ports/{port['id']}")
    neutron.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]})
    neutron.delete(f"routers/{router['id']}")
    neutron.delete(f"networks/{network['id']}")
    Instance.objects.filter(pk=instance.pk).delete()


def test_a_network_without_dhcp_gets_ipv6_metadata_from_its_routers_leg_until_it_has_a_dhcp_namespace(
        lab, tenant, cloud, settings):
    settings.METADATA_URL = f"{cloud.url}/metadata"   # the live API's, where the agent forwards
    name = f"mdr{uuid.uuid4().hex[:6]}"
    host = replace(lab.host(underlay_number=1), name=name)
    agent = node.NodeAgent(name, host, dhcp=False, l3=True)
    agent.register()
    router_id = tenant["router"]["id"]
    router_namespace = routers.namespace_name(kernel.Router(id=router_id))
    try:
        agent.sync_router(router_id)
        leg = Port.objects.get(device_owner=port_rows.ROUTER_INTERFACE, device_id=router_id)
        assert leg.binding_host_id == name
        guest_port = Port.objects.get(pk=tenant["port"]["id"])
        port_rows.bind_port(guest_port, name)
        agent.plug_port(guest_port.pk)
        guest = lab.machine(host, kernel.Network(id=tenant["network"]["id"]), kernel.Port(
            id=str(guest_port.pk), network_id=tenant["network"]["id"], mac_address=guest_port.mac_address))

        status, body = curl6(guest, "/openstack/latest/meta_data.json")
        assert status == 200, body
        meta = json.loads(body)
        assert meta["uuid"] == str(tenant["instance"].pk) and meta["public_keys"] == {"k": KEY}
        assert curl6(guest, "/latest/meta-data/public-keys/0/openssh-key") == (200, KEY)
        assert curl6(guest, "/openstack/latest/user_data") == (200, USER_DATA.decode())
        # The router's leg holds the address (never its own source: deprecated), and no IPv4 one.
        device = routers.interface_name(routers.INTERNAL_PREFIX, str(leg.pk))
        shown = iplib.run(router_namespace, ["ip", "-6", "addr", "show", "dev", device]).stdout
        line = next(line for line in shown.splitlines() if f"{metadata_proxy.METADATA_IPV6}/64" in line)
        assert "deprecated" in line.split(), shown
        assert "169.254.169.254" not in iplib.run(router_namespace, ["ip", "-4", "addr"]).stdout

        # A DHCP namespace for the network (its DHCP port, on another host):
        # the network is served there, the router's leg stops answering.
        port_rows.create_port(Port.objects.get(pk=leg.pk).network, tenant["network"]["project_id"],
                              count_quota=False, fixed_ips=[], device_owner=port_rows.DHCP,
                              device_id="dhcp-elsewhere", binding_host_id=f"{name}-dhcp",
                              port_security_enabled=False, security_groups=[])
        agent.sync_router(router_id)
        assert curl6(guest, "/openstack/latest/meta_data.json")[0] == 0
        assert not any(key.startswith(node.router_proxy_prefix(router_id)) for key in metadata_proxy.running())
        # Its DHCP port gone, the router serves it again.
        Port.objects.filter(network_id=tenant["network"]["id"], device_owner=port_rows.DHCP).delete()
        agent.sync_router(router_id)
        assert curl6(guest, "/openstack/latest/meta_data.json")[0] == 200
    finally:
        metadata_proxy.stop_others(node.router_proxy_prefix(router_id))
        routers.delete_router(host, kernel.Router(id=router_id))
        Agent.objects.filter(host=name).delete()
        Port.objects.filter(device_id=router_id).update(binding_host_id="")
        assert not iplib.namespace_exists(router_namespace)
