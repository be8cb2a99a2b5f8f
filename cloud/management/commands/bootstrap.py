"""Makes a fresh database a working cloud. Idempotent: each installed app
with a `bootstrap` module gets to create what it needs (identity's users,
projects and catalog; compute's flavors...), in INSTALLED_APPS order."""
from importlib import import_module, util

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = "Create the admin and demo users and projects, roles, region, catalog and defaults (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--public-url", default=settings.PUBLIC_URL,
                            help="Base URL the catalog points clients at (default: %(default)s).")
        parser.add_argument("--clouds-yaml", default=str(settings.BASE_DIR / "clouds.yaml"),
                            help="Where to write clouds.yaml for the openstack CLI ('' to skip).")

    def handle(self, *args, **options):
        for app_config in apps.get_app_configs():
            name = f"{app_config.name}.bootstrap"
            if util.find_spec(name) is None:
                continue
            with transaction.atomic():
                import_module(name).run(options, self.stdout)
