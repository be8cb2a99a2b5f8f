"""A compute node as the agent sees it: its host name, its hypervisor
driver, its directory; registration, heartbeat, start-up reconciliation
and power-state sync.

Several nodes may live in one process (simulated nodes); `NODES` maps each
host this process serves to its Node, and the tasks find theirs there."""
import logging
import shutil
import subprocess
import threading
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from compute import block_devices
from compute import conf as compute_conf
from compute import networking as compute_networking
from compute.models import (
    ACTIONS, BOOT_STEPS, ComputeNode, Instance, InstanceActionEvent, Migration, PowerState, Service, TaskState,
    UnexpectedState, VmState, finish_action, record_event, set_fault, zone_of_host,
)
from compute.node import conf, networking, volumes
from compute.virt import DomainNotFound, DomainSpec, VolumeDisk
from workers import queues

log = logging.getLogger(__name__)


# The API action each transitional task_state belongs to (stop for
# powering-off...), to finish it after a restart.
ACTION_OF_TASK_STATE = {transition.task_state: name for name, transition in ACTIONS.items()
                        if name not in ("delete", "rebuild", "resize", "revert_resize", "snapshot", "shelve",
                                          "shelve_offload", "unshelve")}

NODES = {}

# The task_states of the boot steps a node runs (all but scheduling).
NODE_BOOT_TASK_STATES = tuple({step.task_state for step in BOOT_STEPS[1:]})

# A simulated node's "host" is this worker: it booted when the process did.
PROCESS_STARTED_AT = timezone.now()


def host_booted_at(simulated):
    """When the host booted: /proc/uptime on a real node, the worker's
    start on a simulated one (or when /proc is not there to read)."""
    if not simulated:
        try:
            with open("/proc/uptime") as uptime:
                seconds = float(uptime.read().split()[0])
        except (OSError, ValueError, IndexError):
            return PROCESS_STARTED_AT
        # Whole seconds: the reported boot time does not jitter between heartbeats.
        return (timezone.now() - timedelta(seconds=seconds)).replace(microsecond=0)
    return PROCESS_STARTED_AT


def host_load_average(simulated):
    """The 1, 5 and 15 minute load averages from /proc/loadavg; a simulated
    node runs nothing of its own and reports none."""
    if not simulated:
        try:
            with open("/proc/loadavg") as loadavg:
                return ", ".join(loadavg.read().split()[:3])
        except OSError:
            pass
    return "0.00, 0.00, 0.00"


class Node:
    def __init__(self, host, driver, simulated=False, my_ip=None):
        self.host = host
        self.driver = driver
        self.simulated = simulated
        # The management address: where its guests' VNC servers listen.
        self.my_ip = my_ip or conf.MY_IP
        self.directory = conf.NODES_DIR / host

    def __repr__(self):
        return f"<Node {self.host} {self.driver.uri}>"

    # -- an instance's files and domain ------------------------------------

    @staticmethod
    def domain_name(instance_id):
        return f"instance-{instance_id}"

    def instance_dir(self, instance_id):
        return self.directory / "instances" / str(instance_id)

    def aside_dir(self, instance_id):
        """Where a resize keeps the instance's files until it is confirmed
        or reverted (compute.node.resize)."""
        return self.directory / "instances" / f"{instance_id}_resize"

    def disk_path(self, instance_id):
        return self.instance_dir(instance_id) / "disk"

    def console_log_path(self, instance_id):
        return self.instance_dir(instance_id) / "console.log"

    def config_drive_path(self, instance_id):
        return self.instance_dir(instance_id) / "disk.config"

    def config_drive(self, instance):
        """The instance's config drive, if it has one: made here first when
        its directory has none (its first boot, a rebuild, a resize to
        another node), so every definition of the domain finds the file it
        attaches."""
        if not instance.config_drive:
            return None
        path = self.config_drive_path(instance.pk)
        if not path.exists():
            from compute.metadata.config_drive import write as write_config_drive

            write_config_drive(instance, path)
        return path

    def domain_spec(self, instance):
        # A boot's ports and volumes come only through its own steps (no
        # attach while building): one that asked for neither has none to
        # look up.
        building = instance.vm_state == VmState.BUILDING
        interfaces = [] if building and not compute_networking.has_ports(instance) else \
            networking.interfaces_of(instance.pk)
        volume_disks = [] if building and not block_devices.of(instance) else volumes.volume_disks(instance.pk)
        return DomainSpec(
            config_drive=self.config_drive(instance),
            name=self.domain_name(instance.pk), uuid=str(instance.pk), vcpus=instance.vcpus,
            memory_mb=instance.memory_mb, console_log=self.console_log_path(instance.pk),
            disk_path=None if block_devices.boots_from_volume(instance) else self.disk_path(instance.pk),
            vnc_listen=self.my_ip,
            metadata={"name": instance.name, "project": instance.project_id, "flavor": instance.flavor_name},
            interfaces=interfaces, volumes=volume_disks)

    def remove_instance(self, instance_id):
        """Destroys the domain and deletes the instance's files (and those
        a resize set aside): what a delete or a failed build leaves on this
        node, and its ports' plumbing. Safe to repeat."""
        self.driver.destroy(self.domain_name(instance_id))
        networking.unplug_instance(self, instance_id)
        shutil.rmtree(self.instance_dir(instance_id), ignore_errors=True)
        shutil.rmtree(self.aside_dir(instance_id), ignore_errors=True)

    # -- registration and heartbeat -----------------------------------------

    def register(self):
        """Creates or refreshes this node's ComputeNode and Service rows.
        Usage (`*_used`) and an operator's disable are left as they are."""
        capacity = self.driver.capacity()
        now = timezone.now()
        # A node registering anew (first start, or after its service was
        # deleted) takes the zone of the aggregates it is in.
        zone = {"availability_zone": zone_of_host(self.host)}
        node = dict(
            hypervisor_type=capacity.hypervisor_type, hypervisor_version=capacity.hypervisor_version,
            hypervisor_uri=self.driver.uri, hypervisor_hostname=self.host, host_ip=self.my_ip,
            cpu_info=capacity.cpu_info,
            vcpus=capacity.vcpus, memory_mb=capacity.memory_mb, local_gb=capacity.disk_gb,
            running_vms=capacity.running_domains,
            cpu_allocation_ratio=compute_conf.CPU_ALLOCATION_RATIO,
            ram_allocation_ratio=compute_conf.RAM_ALLOCATION_RATIO,
            disk_allocation_ratio=compute_conf.DISK_ALLOCATION_RATIO,
            booted_at=host_booted_at(self.simulated),
            load_average=host_load_average(self.simulated), heartbeat_at=now)
        ComputeNode.objects.update_or_create(host=self.host, defaults=node, create_defaults={**node, **zone})
        service = dict(topic=queues.compute(self.host), last_seen_up=now)
        Service.objects.update_or_create(host=self.host, binary=Service.COMPUTE_BINARY, defaults=service,
                                         create_defaults={**service, **zone})

    def heartbeat(self):
        capacity = self.driver.capacity()
        now = timezone.now()
        updated = ComputeNode.objects.filter(host=self.host).update(
            vcpus=capacity.vcpus, memory_mb=capacity.memory_mb, local_gb=capacity.disk_gb,
            running_vms=capacity.running_domains, booted_at=host_booted_at(self.simulated),
            load_average=host_load_average(self.simulated), heartbeat_at=now)
        services = Service.objects.filter(host=self.host, binary=Service.COMPUTE_BINARY).update(
            last_seen_up=now, report_count=F("report_count") + 1)
        if not (updated and services):  # deleted by an operator: come back
            self.register()

    # -- start-up -----------------------------------------------------------

    def start(self):
        """Run once before the node takes work: registers the node, removes
        what it holds of instances deleted or placed elsewhere while it was
        away, then puts every instance on it in a state that can move on
        (Nova's _init_instance)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.register()
        if self.simulated:
            self.restore_simulated_domains()
        self.remove_strays()
        self.resume_lost_boots()
        for instance in Instance.objects.filter(host=self.host, deleted=False):
            try:
                self.init_instance(instance)
            except Exception:  # noqa: BLE001  (one instance must not keep the node down)
                log.exception("%s: could not recover instance %s", self.host, instance.pk)
        self.sync_power_states()

    def init_instance(self, instance):
        """Finishes what a stopped worker left half done on this node. A
        build in progress is left to its messages: those the stopped worker
        had taken are back in the queue (workers.broker's
        requeue_unacknowledged), the rest never left it, and the steps are
        idempotent; resume_lost_boots sends again those whose message was
        lost."""
        if instance.task_state == TaskState.DELETING:
            log.info("%s: finishing the delete of %s", self.host, instance.pk)
            self.finish_delete(instance)
        elif instance.task_state in TaskState.SNAPSHOTTING[1:]:
            from compute.node import snapshot

            # Its copy or upload died with the worker: the snapshot is given up.
            log.info("%s: giving up the interrupted snapshot of %s", self.host, instance.pk)
            snapshot.abandon(self, instance, "The snapshot was interrupted: its compute worker stopped.")
        elif instance.task_state in ACTION_OF_TASK_STATE:
            action = ACTION_OF_TASK_STATE[instance.task_state]
            log.info("%s: finishing %s of %s", self.host, action, instance.pk)
            run_power_action(self, instance, action)

    def resume_lost_boots(self):
        """Sends again the rest of each boot on this node whose next step
        is in none of its queues: the message a killed worker had taken
        off the queue before the broker recorded it as taken. Runs before
        the node's queues are consumed, once its predecessor's messages
        are back in them. Returns the instances resumed."""
        from workers import broker, pipelines

        building = list(Instance.objects.filter(host=self.host, deleted=False, vm_state=VmState.BUILDING,
                                                task_state__in=NODE_BOOT_TASK_STATES).values_list("pk", flat=True))
        if not building:
            return []
        queued = broker.queued_messages([queues.compute(self.host), queues.network(self.host)])
        if queued is None:  # a broker that keeps what its consumers take
            return []
        resumed = []
        for instance_id in building:
            if any(str(instance_id) in raw for raw in queued):
                continue
            step = self._boot_step_to_resume(instance_id)
            if step is None:
                continue
            log.warning("%s: the boot of %s lost its message; it goes on from %s", self.host, instance_id, step)
            pipelines.run_on_node(instance_id, self.host, first_step=step)
            resumed.append(instance_id)
        return resumed

    def _boot_step_to_resume(self, instance_id):
        """The step a boot without a message goes on from, read from its
        latest boot event: that step if it never finished, the next one if
        it succeeded, none if it failed (its errback decides) or was the
        last."""
        names = [step.name for step in BOOT_STEPS]
        step_of_event = {step.event: step.name for step in BOOT_STEPS}
        last = InstanceActionEvent.objects.filter(
            action__instance_id=instance_id, action__action="create", event__in=step_of_event).order_by(
            "-start_time", "-id").values("event", "result", "host").first()
        if last is None or last["host"] != self.host:
            return "prepare_disk"  # placed here, nothing begun yet
        if last["result"] == "Error":
            return None
        index = names.index(step_of_event[last["event"]])
        if last["result"] is None:  # interrupted
            return names[index] if index else "prepare_disk"
        return names[index + 1] if index + 1 < len(names) else None

    # -- strays --------------------------------------------------------------

    def remove_strays(self):
        """Destroys the domains and deletes the files this node still holds
        for instances that are deleted or belong to another host (deleted
        while this node was down, placed elsewhere meanwhile), on start and
        with every power sync. Instances this database does not know are
        left alone: their domains are not this cloud's. Returns how many
        instances were removed."""
        candidates = self._instance_ids_held()
        if not candidates:
            return 0
        strays = set(Instance.objects.filter(pk__in=candidates).values_list("pk", flat=True))
        strays -= self._belonging_here(strays)
        removed = 0
        for instance_id in strays:
            # Checked again with the row locked: a resize that picks this
            # node (its finish moves the row first) waits, or is seen.
            with transaction.atomic():
                locked = list(Instance.objects.select_for_update().filter(pk=instance_id).values_list("pk", flat=True))
                if not locked or self._belonging_here(locked):
                    continue
                log.info("%s: removing instance %s, which is deleted or on another host", self.host, instance_id)
                self.remove_instance(instance_id)
            removed += 1
        return removed

    def _instance_ids_held(self):
        """Ids of the instances this node has a domain or a directory of."""
        held = set()
        names = list(self.driver.domain_names())
        instances_dir = self.directory / "instances"
        if instances_dir.is_dir():
            names += [entry.name for entry in instances_dir.iterdir()]
        for name in names:
            name = name.removeprefix("instance-").removesuffix("_resize")
            try:
                held.add(uuid.UUID(name))
            except ValueError:
                continue  # not an instance's: none of this node's business
        return held

    def _belonging_here(self, instance_ids):
        """Those of `instance_ids` whose domain and files this node keeps:
        live instances on this host, and those a resize in progress moves
        from or to it (the destination defines the domain before the
        instance moves, the source keeps its files until confirmed)."""
        here = set(Instance.objects.filter(pk__in=instance_ids, deleted=False, host=self.host)
                   .values_list("pk", flat=True))
        here |= set(Migration.objects.filter(
            Q(source_compute=self.host) | Q(dest_compute=self.host), instance_id__in=instance_ids,
            instance__deleted=False, status__in=Migration.Status.IN_PROGRESS).values_list("instance_id", flat=True))
        return here

    def finish_delete(self, instance):
        with record_event(instance, "delete", "compute_terminate_instance", host=self.host):
            self.remove_instance(instance.pk)
            instance.mark_deleted()
        finish_action(instance, "delete")

    def restore_simulated_domains(self):
        """A real hypervisor keeps its guests when the agent restarts;
        libvirt's test driver keeps them only as long as the process. So a
        simulated node defines again the domains its instances had."""
        names = set(self.driver.domain_names())
        for instance in Instance.objects.filter(host=self.host, deleted=False, launched_at__isnull=False):
            if self.domain_name(instance.pk) in names or instance.vm_state == VmState.ERROR:
                continue
            self.driver.spawn(self.domain_spec(instance), timeout=conf.SPAWN_TIMEOUT)
            name = self.domain_name(instance.pk)
            if instance.power_state == PowerState.PAUSED:
                self.driver.pause(name)
            elif instance.power_state == PowerState.SUSPENDED:
                self.driver.suspend(name)
            elif instance.power_state in (PowerState.SHUTDOWN, PowerState.NOSTATE):
                self.driver.stop(name, timeout=0)

    # -- power-state sync ---------------------------------------------------

    def sync_power_states(self):
        """Makes the database agree with the hypervisor for idle instances
        (task_state None): power_state follows the domain, and an ACTIVE
        instance whose domain stopped outside Stratus becomes SHUTOFF."""
        actual_states = self.driver.power_states()
        changed = 0
        for instance in Instance.objects.filter(host=self.host, deleted=False, task_state__isnull=True).exclude(
                vm_state__in=(VmState.BUILDING, VmState.ERROR)).only("id", "vm_state", "power_state", "host"):
            actual = actual_states.get(self.domain_name(instance.pk), PowerState.NOSTATE)
            if actual != instance.power_state:
                # Ask again: an action may have changed the domain since the listing.
                try:
                    actual = self.driver.power_state(self.domain_name(instance.pk))
                except DomainNotFound:
                    actual = PowerState.NOSTATE
            fields = {}
            if actual != instance.power_state:
                fields["power_state"] = actual
            if instance.vm_state == VmState.ACTIVE and actual in (
                    PowerState.SHUTDOWN, PowerState.CRASHED, PowerState.NOSTATE):
                fields["vm_state"] = VmState.STOPPED
            if not fields:
                continue
            try:
                instance.update_state(expected_task_state=None, expected_vm_state=instance.vm_state, **fields)
            except UnexpectedState:
                continue  # an action started meanwhile: it sets the state itself
            changed += 1
            log.info("%s: power sync: instance %s is now %s", self.host, instance.pk, fields)
        return changed


def run_power_action(node, instance, action):
    """Does API action `action` (a key of ACTIONS but delete) to the domain
    and completes it. A failure puts task_state back to None with the
    power state the hypervisor reports and a fault, then re-raises."""
    name = node.domain_name(instance.pk)
    driver = node.driver
    operations = {
        "start": lambda: driver.start(name),
        "stop": lambda: driver.stop(name, timeout=conf.SHUTDOWN_TIMEOUT),
        "reboot_soft": lambda: driver.reboot(name, hard=False, timeout=conf.SHUTDOWN_TIMEOUT),
        "reboot_hard": lambda: _hard_reboot(node, instance),
        "pause": lambda: driver.pause(name),
        "unpause": lambda: driver.unpause(name),
        "suspend": lambda: driver.suspend(name),
        "resume": lambda: driver.resume(name),
        "rescue": lambda: _rescue(node, instance),
        "unrescue": lambda: _unrescue(node, instance),
    }
    action_name = "reboot" if action.startswith("reboot") else action
    try:
        with record_event(instance, action_name, f"compute_{action}", host=node.host):
            operations[action]()
            instance.complete(action)
    except UnexpectedState:
        raise  # deleted or reset meanwhile: the state is someone else's now
    except Exception as error:
        try:
            power_state = driver.power_state(name)
        except Exception:  # noqa: BLE001
            power_state = PowerState.NOSTATE
        try:
            instance.update_state(expected_task_state=ACTIONS[action].task_state, task_state=None,
                                  power_state=power_state)
            set_fault(instance, f"{action} failed: {type(error).__name__}", details=str(error), host=node.host)
        except UnexpectedState:
            pass
        raise
    finally:
        finish_action(instance, action_name)


def rescue_disk_path(node, instance_id):
    return node.instance_dir(instance_id) / "disk.rescue"


def rescue_spec(node, instance):
    """The rescue domain: a fresh overlay of the rescue image as its first
    disk and the instance's own disk as the second (vdb), as Nova's libvirt
    driver makes it; volumes stay out of it until the server is unrescued."""
    spec = node.domain_spec(instance)
    spec.disk_path = rescue_disk_path(node, instance.pk)
    spec.volumes = [VolumeDisk(dev="vdb", connection_info={"driver_volume_type": "file", "data": {
        "device_path": str(node.disk_path(instance.pk)), "format": "qcow2"}})]
    return spec


def _rescue(node, instance):
    from images.cache import ImageCache

    path = rescue_disk_path(node, instance.pk)
    path.unlink(missing_ok=True)  # a half-made one from a killed worker, or an earlier rescue's
    ImageCache().create_overlay(instance.rescue_image_id or instance.image_id, path)
    node.driver.destroy(node.domain_name(instance.pk))
    node.driver.spawn(rescue_spec(node, instance), timeout=conf.SPAWN_TIMEOUT)


def _unrescue(node, instance):
    node.driver.destroy(node.domain_name(instance.pk))
    node.driver.spawn(node.domain_spec(instance), timeout=conf.SPAWN_TIMEOUT)
    rescue_disk_path(node, instance.pk).unlink(missing_ok=True)


def _hard_reboot(node, instance):
    """Defines the domain again from the instance (as Nova does), so a
    hard reboot also repairs a domain that went missing."""
    name = node.domain_name(instance.pk)
    if node.driver.exists(name):
        node.driver.reboot(name, hard=True, timeout=0)
    else:
        node.driver.spawn(node.domain_spec(instance), timeout=conf.SPAWN_TIMEOUT)


def create_disk(node, instance, image_id=None):
    """The instance's root disk on this node: a qcow2 overlay on the cached
    image (its own, or `image_id`: the image an unshelve boots from), or
    an empty qcow2 disk when it boots without an image."""
    path = node.disk_path(instance.pk)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a half-made disk from a killed worker
    size_bytes = instance.root_gb * 2**30 if instance.root_gb else None
    image_id = image_id or instance.image_id
    if image_id:
        from images.cache import ImageCache

        ImageCache().create_overlay(image_id, path, size_bytes=size_bytes)
    else:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(size_bytes or 2**30)],
                       check=True, capture_output=True)
    return path


def rebuild(node, instance):
    """Destroys the domain and its disk, makes a new disk from the
    instance's (possibly new) image through the image cache, and spawns it
    again; the instance ends ACTIVE. A failure leaves it in ERROR with a
    fault."""
    try:
        with record_event(instance, "rebuild", "compute_rebuild_instance", host=node.host):
            node.driver.destroy(node.domain_name(instance.pk))
            node.disk_path(instance.pk).unlink(missing_ok=True)
            node.config_drive_path(instance.pk).unlink(missing_ok=True)  # made again from the rebuilt instance
            create_disk(node, instance)
            instance.update_state(expected_task_state=TaskState.REBUILDING, task_state=TaskState.REBUILD_SPAWNING)
            # A stopped server stays stopped, as Nova leaves it.
            stopped = instance.vm_state == VmState.STOPPED
            node.driver.spawn(node.domain_spec(instance), timeout=conf.SPAWN_TIMEOUT, start=not stopped)
            instance.update_state(expected_task_state=TaskState.REBUILD_SPAWNING,
                                  vm_state=VmState.STOPPED if stopped else VmState.ACTIVE, task_state=None,
                                  power_state=PowerState.SHUTDOWN if stopped else PowerState.RUNNING,
                                  launched_at=timezone.now())
    except UnexpectedState:
        raise  # deleted or reset meanwhile: the state is someone else's now
    except Exception as error:
        try:
            instance.update_state(expected_task_state=(TaskState.REBUILDING, TaskState.REBUILD_SPAWNING),
                                  vm_state=VmState.ERROR, task_state=None, power_state=PowerState.NOSTATE)
            set_fault(instance, f"rebuild failed: {type(error).__name__}", details=str(error), host=node.host)
        except UnexpectedState:
            pass
        raise
    finally:
        finish_action(instance, "rebuild")


class Agent(threading.Thread):
    """Heartbeats, power-state syncs (each after a removal of strays) for
    every node of this process, in the background while the Celery worker
    consumes their queues."""

    def __init__(self, nodes):
        super().__init__(name="node-agent", daemon=True)
        self.nodes = nodes
        self.stopping = threading.Event()

    def run(self):
        next_heartbeat = next_sync = time.monotonic()
        next_eviction = time.monotonic() + conf.IMAGE_CACHE_EVICT_INTERVAL
        while not self.stopping.is_set():
            now = time.monotonic()
            if now >= next_heartbeat:
                self._each("heartbeat")
                next_heartbeat = now + conf.HEARTBEAT_INTERVAL
            if now >= next_sync:
                self._each("remove_strays")
                self._each("sync_power_states")
                next_sync = now + conf.POWER_SYNC_INTERVAL
            if now >= next_eviction:
                self.evict_images()
                next_eviction = now + conf.IMAGE_CACHE_EVICT_INTERVAL
            self.stopping.wait(max(0.1, min(next_heartbeat, next_sync, next_eviction) - time.monotonic()))

    def evict_images(self):
        """Trims the image cache this machine's nodes share, keeping the
        images of their instances (and any with a live disk on it)."""
        from images.cache import ImageCache

        close_old_connections()
        try:
            in_use = set(Instance.objects.filter(host__in=[node.host for node in self.nodes], deleted=False)
                         .exclude(image_id="").values_list("image_id", flat=True))
            evicted = ImageCache().evict(settings.IMAGE_CACHE_MAX_BYTES, in_use)
        except Exception:  # noqa: BLE001  (the next round tries again)
            log.exception("image cache eviction failed")
            return
        if evicted:
            log.info("image cache: evicted %s", ", ".join(evicted))

    def _each(self, method):
        for node in self.nodes:
            close_old_connections()
            try:
                getattr(node, method)()
            except Exception:  # noqa: BLE001  (the next round tries again)
                log.exception("%s: %s failed", node.host, method)

    def stop(self):
        self.stopping.set()
