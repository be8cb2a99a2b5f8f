from django.conf import settings
from django.core.management.base import BaseCommand

from identity import tokens


class Command(BaseCommand):
    help = ("Rotate the Fernet token keys: the staged key becomes primary, a new staged key is made, and "
            "keys beyond STRATUS_FERNET_MAX_ACTIVE_KEYS are removed. Tokens signed with a removed key stop "
            "validating, so rotate no more often than the token lifetime divided by (max keys - 2).")

    def handle(self, *args, **options):
        numbers = tokens.keys.rotate()
        self.stdout.write(f"keys in {settings.FERNET_KEY_DIR}: {numbers} (primary {numbers[-1]}, staged 0)")
