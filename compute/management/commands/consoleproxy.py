"""Runs the websocket console proxy (noVNC's websocket end):

    manage.py consoleproxy [--listen 127.0.0.1] [--port 6080] [--web /usr/share/novnc]

Clients connect to ws://HOST:PORT/?token=TOKEN with a token from
compute.console.tokens.create_token; the proxy relays to that instance's
VNC server. With --web it also serves noVNC's pages."""
from django.core.management.base import BaseCommand

from compute.console import proxy


class Command(BaseCommand):
    help = "Run the websocket console proxy (one-time tokens, relays to a domain's VNC server)."

    def add_arguments(self, parser):
        parser.add_argument("--listen", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=6080, help="port to listen on (default 6080)")
        parser.add_argument("--web", help="a directory of noVNC's files to serve alongside")
        parser.add_argument("--verbose", action="store_true")

    def handle(self, *args, listen, port, web, verbose, **options):
        self.stdout.write(f"console proxy on ws://{listen}:{port}/?token=...")
        self.stdout.flush()
        proxy.serve(listen, port, web=web, verbose=verbose)
