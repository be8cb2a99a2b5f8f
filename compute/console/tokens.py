"""One-time console tokens, kept in the shared cache (Redis): a token maps
to one instance's VNC server, as its node reported it at issue (the node,
its management address and the port), until it is used once or expires.
Only a hash of the token is stored.

A VNC port is the hypervisor's to reuse: after the instance is deleted,
stopped or restarted, another instance's guest may have it. So a token is
good only while its node still says that address and port are this
instance's."""
import hashlib
import logging
import os
import secrets
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.cache import cache

from compute import conf
from compute.models import Instance
from workers import pipelines

log = logging.getLogger(__name__)

# Seconds a token stays valid when nobody uses it (Nova's default).
TOKEN_TTL = int(getattr(settings, "STRATUS_CONSOLE_TOKEN_TTL", None) or
                os.environ.get("STRATUS_CONSOLE_TOKEN_TTL", 600))
# Where users reach the proxy (noVNC's page; the websocket is on the same port).
PROXY_BASE_URL = (getattr(settings, "STRATUS_CONSOLE_PROXY_URL", None) or
                  os.environ.get("STRATUS_CONSOLE_PROXY_URL", "http://127.0.0.1:6080/vnc_lite.html"))


def _key(token):
    return "console-token:" + hashlib.sha256(token.encode()).hexdigest()


def create_token(instance_id, node, host, port, console_type="novnc", ttl=TOKEN_TTL):
    """A token for the VNC server at host:port, which `node` (the compute
    host's name) reported as the instance's."""
    token = secrets.token_urlsafe(32)
    cache.set(_key(token), {"instance_id": str(instance_id), "node": node, "host": host, "port": int(port),
                            "console_type": console_type}, timeout=ttl)
    return token


def consume_token(token, timeout=conf.NODE_CALL_TIMEOUT):
    """The target ({"instance_id", "node", "host", "port", "console_type"})
    of a valid token, which is then spent; None for an unknown, expired or
    already used token, or when its VNC server is no longer the instance's:
    the instance is gone or on another node, or its node (asked, waiting at
    most `timeout` seconds) reports another address or none. Of two
    concurrent uses only one wins: the cache's delete is atomic."""
    if not token:
        return None
    key = _key(token)
    target = cache.get(key)
    if target is None or not cache.delete(key):
        return None
    if not Instance.objects.filter(pk=target["instance_id"], host=target.get("node"), deleted=False).exists():
        return None
    try:
        now = pipelines.vnc_address(target["instance_id"], target["node"], timeout)
    except Exception as error:  # no domain, not running, no answer: nothing to connect to
        log.info("console token of instance %s: its node has no VNC server for it: %s", target["instance_id"], error)
        return None
    if (now["host"], int(now["port"])) != (target["host"], target["port"]):
        log.info("console token of instance %s: %s:%s is no longer its VNC server (now %s:%s)",
                 target["instance_id"], target["host"], target["port"], now["host"], now["port"])
        return None
    return target


def console_url(token):
    """noVNC's page with the websocket's path (and the token) in `path`,
    which noVNC takes from the root of the page's origin: behind a reverse
    proxy that serves the console under a prefix (/console/vnc_lite.html),
    the websocket is under the same prefix."""
    prefix = urlsplit(PROXY_BASE_URL).path.rsplit("/", 1)[0].strip("/")
    websocket = f"{prefix}/?token={token}" if prefix else f"?token={token}"
    return f"{PROXY_BASE_URL}?path={quote(websocket, safe='')}"


def novnc_url(instance, timeout):
    """What `openstack console url show --novnc` answers: asks the
    instance's node for its domain's VNC address (waiting at most `timeout`
    seconds), makes a token for it, returns the proxy URL."""
    address = pipelines.vnc_address(instance.pk, instance.host, timeout)
    return console_url(create_token(instance.pk, instance.host, address["host"], address["port"]))
