"""Hypervisor drivers. The node agent talks to a `ComputeDriver`; the only
implementation is libvirt (`LibvirtDriver`), which serves both real VMs
(qemu:///system) and simulated nodes (libvirt's test driver)."""
from compute.virt.driver import (  # noqa: F401
    Capacity, ComputeDriver, DomainNotFound, DomainSpec, Interface, PowerState, VirtError, VolumeDisk,
)


def get_driver(uri, **kwargs):
    from compute.virt.libvirt_driver import LibvirtDriver

    return LibvirtDriver(uri, **kwargs)
