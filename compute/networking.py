"""A server's ports as compute keeps track of them: the boot's network
step records in the instance's request spec which ports it holds and
which of them it made (`created`), so a delete or a failed build deletes
the ports made for the server and gives the user's own ports back.
Network rows are written by network.ports only."""
from django.db import transaction

from network import ports as network_ports
from network.models import Port


def device_owner(instance):
    """Nova's device_owner of a server's port: compute:<zone>."""
    return f"compute:{instance.availability_zone or 'nova'}"


def has_ports(instance):
    """Whether the boot's network step has anything to do: networks were
    asked for, or the instance holds ports already (a repeated step). Read
    from the row's request spec alone."""
    return ((instance.request_spec or {}).get("networks") or "none") != "none" or \
        bool(held_ports(instance.pk, locked=instance))


def held_ports(instance_id, locked=None):
    """[{"port_id", "created"}] of the instance, read from the database (the
    caller's copy of the row may be older), or from `locked`, the row the
    caller holds locked."""
    from compute.models import Instance

    if locked is not None:
        spec = locked.request_spec or {}
    else:
        spec = Instance.objects.filter(pk=instance_id).values_list("request_spec", flat=True).first() or {}
    return list(spec.get("ports") or [])


def set_held_ports(instance_id, held, locked=None):
    """Records the ports the instance holds (None: it holds none yet,
    the next network step allocates them); `locked`: the row, when the
    caller holds it locked already."""
    from compute.models import Instance

    # No savepoint inside a caller's transaction (the boot's network step):
    # a failure here fails the caller's whole transaction anyway.
    with transaction.atomic(savepoint=False):
        instance = locked or Instance.objects.select_for_update().only("id", "request_spec").get(pk=instance_id)
        spec = dict(instance.request_spec or {})
        if held is None:
            spec.pop("ports", None)
        else:
            spec["ports"] = held
        Instance.objects.filter(pk=instance_id).update(request_spec=spec)
        if locked is not None:
            locked.request_spec = spec


def release_ports(instance_id):
    """Deletes the ports made for the instance, detaches those it was
    given, and forgets them: a later boot attempt allocates again."""
    created = [entry["port_id"] for entry in held_ports(instance_id) if entry.get("created")]
    with transaction.atomic():
        network_ports.release_device_ports(instance_id, created)
        set_held_ports(instance_id, None)


def hold_port(instance_id, port_id, created):
    """Records that the instance now holds `port_id` too (an interface
    attach); `created`: the port was made for it."""
    held = [entry for entry in held_ports(instance_id) if entry["port_id"] != str(port_id)]
    set_held_ports(instance_id, held + [{"port_id": str(port_id), "created": created}])


def release_port(instance_id, port_id):
    """One port leaves the instance (an interface detach, or a failed
    attach): deleted if it was made for the instance, else given back."""
    held = held_ports(instance_id)
    created = any(entry["port_id"] == str(port_id) and entry.get("created") for entry in held)
    with transaction.atomic():
        port = Port.objects.filter(pk=port_id).first()
        if port is not None:
            if created:
                network_ports.delete_port(port)
            else:
                network_ports.detach_port(port.pk)
        set_held_ports(instance_id, [entry for entry in held if entry["port_id"] != str(port_id)])
