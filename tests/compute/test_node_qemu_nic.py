"""A real QEMU domain (qemu:///system, TCG here) with a virtio NIC on a
bridge: it defines and starts with the tap named by the network agent's
rule plugged into the bridge, and a second NIC is hot-plugged into the
running domain and out again. No packet leaves the bridge: it has no
other port."""
import uuid
from pathlib import Path

import libvirt
import pytest
from pyroute2 import IPRoute

from compute.virt import DomainSpec, Interface, get_driver
from network.agent import resources


@pytest.fixture(scope="module")
def hypervisor():
    try:
        conn = libvirt.open("qemu:///system")
    except libvirt.libvirtError as error:
        pytest.skip(f"qemu:///system is not available: {error}")
    conn.close()
    driver = get_driver("qemu:///system", virt_type="qemu")
    yield driver
    driver.close()


@pytest.fixture
def bridge():
    name = resources.bridge_name(str(uuid.uuid4()))
    with IPRoute() as ip:
        ip.link("add", ifname=name, kind="bridge")
        index = ip.link_lookup(ifname=name)[0]
        ip.link("set", index=index, state="up")
    yield name
    with IPRoute() as ip:
        for index in ip.link_lookup(ifname=name):
            ip.link("del", index=index)


def master_of(tap):
    """The name of the bridge `tap` is plugged into, or None (no such tap)."""
    with IPRoute() as ip:
        found = ip.link_lookup(ifname=tap)
        if not found:
            return None
        master = ip.get_links(found[0])[0].get_attr("IFLA_MASTER")
        return ip.get_links(master)[0].get_attr("IFLA_IFNAME") if master else None


def test_a_qemu_domain_with_a_nic_starts_on_the_bridge_and_takes_a_hot_plugged_one(hypervisor, bridge, tmp_path):
    first = Interface(mac="fa:16:3e:aa:00:01", bridge=bridge, tap=resources.tap_name(str(uuid.uuid4())))
    second = Interface(mac="fa:16:3e:aa:00:02", bridge=bridge, tap=resources.tap_name(str(uuid.uuid4())))
    name = f"nictest-{uuid.uuid4().hex[:8]}"
    spec = DomainSpec(name=name, uuid=str(uuid.uuid4()), vcpus=1, memory_mb=64,
                      console_log=Path(tmp_path / "console.log"), interfaces=[first])
    try:
        hypervisor.spawn(spec, timeout=60)
        assert master_of(first.tap) == bridge
        assert hypervisor.interface_macs(name) == [first.mac]

        hypervisor.attach_interface(name, second)
        assert master_of(second.tap) == bridge
        assert hypervisor.interface_macs(name) == [first.mac, second.mac]
        assert hypervisor.interface_macs(name, inactive=True) == [first.mac, second.mac]

        hypervisor.detach_interface(name, second.mac)
        assert hypervisor.interface_macs(name, inactive=True) == [first.mac]
    finally:
        hypervisor.destroy(name)
    assert master_of(first.tap) is None
