"""manage.py build_guest_image: builds the stratus-tiny guest disk image."""
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from images.guest import GuestImageBuilder, GuestImageError


class Command(BaseCommand):
    help = ("Builds the stratus-tiny guest image (qcow2, under 64 MiB) from Debian packages: a syslinux disk "
            "with Debian's cloud kernel and a busybox initramfs that takes DHCP, reads the config drive or the "
            "metadata service, runs the user data and runs dropbear. Skips the build when the image exists and its inputs have not changed.")

    def add_arguments(self, parser):
        parser.add_argument("--output", type=Path, default=settings.GUEST_IMAGE_PATH,
                            help=f"where to write the image (default {settings.GUEST_IMAGE_PATH})")
        parser.add_argument("--force", action="store_true", help="rebuild even when the image is up to date")
        parser.add_argument("--work-dir", type=Path, default=Path(settings.VAR_DIR) / "guest-build",
                            help="where downloaded and unpacked Debian packages are kept between builds")

    def handle(self, *args, output, force, work_dir, **options):
        def log(message):
            self.stdout.write(f"==> {message}")
            self.stdout.flush()

        builder = GuestImageBuilder(output=output.absolute(), work_dir=work_dir.absolute(), log=log)
        try:
            builder.build(force=force)
        except GuestImageError as error:
            raise CommandError(f"guest image build failed: {error}") from error
