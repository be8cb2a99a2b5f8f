"""Runs the websocket console proxy (noVNC's websocket end):

    manage.py consoleproxy [--listen 127.0.0.1] [--port 6080] [--web /usr/share/novnc]

Clients connect to ws://HOST:PORT/?token=TOKEN with a token from
compute.console.tokens.create_token; the proxy relays to that instance's
VNC server. It also serves noVNC's pages (vnc_lite.html, the page console
URLs point at) from --web, by default Debian's novnc package when installed."""
from pathlib import Path

from django.core.management.base import BaseCommand

from compute.console import proxy

NOVNC_DIR = "/usr/share/novnc"


class Command(BaseCommand):
    help = "Run the websocket console proxy (one-time tokens, relays to a domain's VNC server)."

    def add_arguments(self, parser):
        parser.add_argument("--listen", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=6080, help="port to listen on (default 6080)")
        parser.add_argument("--web", default=NOVNC_DIR if Path(NOVNC_DIR).is_dir() else None,
                            help=f"a directory of noVNC's files to serve alongside (default {NOVNC_DIR} if present)")
        parser.add_argument("--verbose", action="store_true")

    def handle(self, *args, listen, port, web, verbose, **options):
        self.stdout.write(f"console proxy on ws://{listen}:{port}/?token=..."
                          + (f", noVNC from {web}" if web else " (no noVNC pages: --web)"))
        self.stdout.flush()
        proxy.serve(listen, port, web=web, verbose=verbose)
