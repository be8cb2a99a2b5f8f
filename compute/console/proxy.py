"""The websocket console proxy: websockify, with the target of each
connection taken from its one-time token (`?token=` in the websocket URL).
A bad, expired or reused token closes the connection before anything
reaches a VNC server.

A node's VNC servers listen on its management address (STRATUS_MY_IP,
127.0.0.1 on the all-in-one), so one proxy can serve many nodes; before
relaying, it checks with the instance's node that the token's address and
port are still that instance's (compute.console.tokens.consume_token). The
VNC servers have no password: only the proxy should reach the management
network."""
import logging

from django.db import close_old_connections
from websockify.token_plugins import BasePlugin
from websockify.websocketproxy import WebSocketProxy

from compute.console.tokens import consume_token

log = logging.getLogger(__name__)


class OneTimeTokens(BasePlugin):
    """websockify's token plugin interface: lookup(token) -> (host, port)
    or None."""

    def __init__(self):
        super().__init__(src=None)

    def lookup(self, token):
        # Each connection is handled in a forked child: its own database
        # connection, never the parent's.
        close_old_connections()
        target = consume_token(token)
        if target is None:
            log.info("console proxy: refused token %s...", (token or "")[:6])
            return None
        log.info("console proxy: instance %s -> %s:%s", target["instance_id"], target["host"], target["port"])
        return target["host"], target["port"]


def serve(listen_host, listen_port, web=None, verbose=False):
    """Runs the proxy in the foreground (one forked process per connection)."""
    server = WebSocketProxy(token_plugin=OneTimeTokens(), listen_host=listen_host, listen_port=listen_port,
                            web=web or "", file_only=True, verbose=verbose, daemon=False)
    server.start_server()
