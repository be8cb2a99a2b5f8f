"""The interface between the node agent and a hypervisor, and the plain
values that cross it."""
from dataclasses import dataclass, field
from pathlib import Path

# Nova's power state numbers (on the wire as OS-EXT-STS:power_state), the
# values the driver reports.
from compute.models import PowerState  # noqa: F401


class VirtError(Exception):
    """The hypervisor refused or failed an operation."""


class DomainNotFound(VirtError):
    pass


@dataclass(frozen=True)
class Interface:
    """A virtio NIC on a bridge: the port's MAC, the tap libvirt makes for
    it (named by the network agent's rule) and the network's bridge."""
    mac: str
    bridge: str
    tap: str


@dataclass(frozen=True)
class VolumeDisk:
    """An attached volume as a virtio disk: its target (vdb, vdc, ...) and
    the volumes app's connection info ({"driver_volume_type": "file" with
    data.device_path and data.format, or "rbd" with data.name, hosts, ports
    and, when auth is on, auth_username and secret_uuid})."""
    dev: str
    connection_info: dict
    serial: str = ""


@dataclass
class DomainSpec:
    """What a guest is made of, independent of the hypervisor's XML."""
    name: str
    uuid: str
    vcpus: int
    memory_mb: int
    console_log: Path
    disk_path: Path | None = None
    disk_format: str = "qcow2"
    # The config drive's ISO image, attached as a read-only cdrom.
    config_drive: Path | None = None
    kernel: Path | None = None
    initrd: Path | None = None
    cmdline: str | None = None
    metadata: dict = field(default_factory=dict)
    interfaces: list[Interface] = field(default_factory=list)
    volumes: list[VolumeDisk] = field(default_factory=list)
    # Where the guest's VNC server listens: its node's management address.
    vnc_listen: str = "127.0.0.1"


@dataclass
class Capacity:
    """What a node offers, before allocation ratios."""
    vcpus: int
    memory_mb: int
    disk_gb: int
    disk_free_gb: int
    hypervisor_type: str
    hypervisor_version: int
    hypervisor_hostname: str
    cpu_info: dict
    running_domains: int


class ComputeDriver:
    """Operations the node agent needs. Every method names a domain by
    the name in its DomainSpec; each is safe to repeat."""

    virt_type: str

    def capacity(self) -> Capacity:
        raise NotImplementedError

    def spawn(self, spec: DomainSpec, timeout: float, start: bool = True) -> None:
        """Defines the domain (replacing a stale definition) and, unless
        `start` is false, starts it, returning once it runs."""
        raise NotImplementedError

    def destroy(self, name: str) -> None:
        """Stops and undefines the domain; nothing if it does not exist."""
        raise NotImplementedError

    def power_state(self, name: str) -> PowerState:
        raise NotImplementedError

    def power_states(self) -> dict:
        """{domain name: PowerState} for every domain this driver sees."""
        raise NotImplementedError

    def start(self, name: str) -> None:
        raise NotImplementedError

    def stop(self, name: str, timeout: float) -> None:
        raise NotImplementedError

    def reboot(self, name: str, hard: bool, timeout: float) -> None:
        raise NotImplementedError

    def pause(self, name: str) -> None:
        raise NotImplementedError

    def unpause(self, name: str) -> None:
        raise NotImplementedError

    def suspend(self, name: str) -> None:
        raise NotImplementedError

    def resume(self, name: str) -> None:
        raise NotImplementedError

    def vnc_address(self, name: str) -> tuple[str, int]:
        raise NotImplementedError

    def diagnostics(self, name: str) -> dict:
        """What the hypervisor counts for the domain: {"power_state",
        "hypervisor", "memory_kib" (maximum, current), "memory_stats",
        "cpus" [(id, time ns)], "disks" [(dev, read requests, read bytes,
        write requests, write bytes, errors)], "nics" [(dev, mac, rx bytes,
        rx packets, rx errors, rx drops, tx bytes, tx packets, tx errors,
        tx drops)]}."""
        raise NotImplementedError

    def attach_interface(self, name: str, interface: Interface) -> None:
        """Plugs the NIC into the domain, running and as defined (hot-plug);
        nothing if it has it already."""
        raise NotImplementedError

    def detach_interface(self, name: str, mac: str) -> None:
        """Unplugs the NIC of `mac`, running and as defined; nothing if the
        domain has no such NIC."""
        raise NotImplementedError

    def attach_volume(self, name: str, volume: VolumeDisk) -> None:
        """Plugs the volume's disk into the domain, running and as defined;
        nothing if it has a disk on that target already."""
        raise NotImplementedError

    def resize_volume(self, name: str, dev: str, size_bytes: int) -> None:
        """Tells the running domain its disk on `dev` is now `size_bytes`
        (QEMU grows a file it holds itself); nothing if it is not running."""
        raise NotImplementedError

    def detach_volume(self, name: str, dev: str) -> None:
        """Unplugs the disk on target `dev`, running and as defined; nothing
        if the domain has none there."""
        raise NotImplementedError

    def close(self) -> None:
        pass
