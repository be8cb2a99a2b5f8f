"""Object storage's part of `manage.py bootstrap`: the role that reaches
every account (Swift's reseller admin), as Keystone deployments with Swift
define it, so operators and Tempest can grant it."""
from identity.models import Role

from objects.api.access import RESELLER_ROLE


def run(options, out):
    Role.objects.get_or_create(name=RESELLER_ROLE, domain=None)
