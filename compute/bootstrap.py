"""Compute's part of `manage.py bootstrap`: the classic public flavors, and
m1.nano for the tiny guest image (ids as DevStack gives them)."""
from compute.models import Flavor

# (id, name, vcpus, memory MiB, root disk GiB)
FLAVORS = [
    ("42", "m1.nano", 1, 128, 1),
    ("1", "m1.tiny", 1, 512, 1),
    ("2", "m1.small", 1, 2048, 20),
    ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80),
    ("5", "m1.xlarge", 8, 16384, 160),
]


def run(options, out):
    for flavor_id, name, vcpus, memory_mb, root_gb in FLAVORS:
        if Flavor.objects.filter(name=name).exists():
            continue
        Flavor.objects.create(id=flavor_id, name=name, vcpus=vcpus, memory_mb=memory_mb, root_gb=root_gb)
