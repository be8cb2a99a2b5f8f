"""Queue names, written once."""

CONTROL = "control"


def compute(host):
    return f"compute.{host}"


def network(host):
    return f"network.{host}"


def volume(backend):
    return f"volume.{backend}"
