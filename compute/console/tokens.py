"""One-time console tokens, kept in the shared cache (Redis): a token maps
to the VNC address of one instance's domain until it is used once or
expires. Only a hash of the token is stored."""
import hashlib
import os
import secrets
from urllib.parse import quote

from django.conf import settings
from django.core.cache import cache

from compute.models import Instance
from workers import pipelines

# Seconds a token stays valid when nobody uses it (Nova's default).
TOKEN_TTL = int(getattr(settings, "STRATUS_CONSOLE_TOKEN_TTL", None) or
                os.environ.get("STRATUS_CONSOLE_TOKEN_TTL", 600))
# Where users reach the proxy (noVNC's page; the websocket is on the same port).
PROXY_BASE_URL = (getattr(settings, "STRATUS_CONSOLE_PROXY_URL", None) or
                  os.environ.get("STRATUS_CONSOLE_PROXY_URL", "http://127.0.0.1:6080/vnc_lite.html"))


def _key(token):
    return "console-token:" + hashlib.sha256(token.encode()).hexdigest()


def create_token(instance_id, host, port, console_type="novnc", ttl=TOKEN_TTL):
    token = secrets.token_urlsafe(32)
    cache.set(_key(token), {"instance_id": str(instance_id), "host": host, "port": int(port),
                            "console_type": console_type}, timeout=ttl)
    return token


def consume_token(token):
    """The target ({"instance_id", "host", "port", "console_type"}) of a
    valid token, which is then spent; None for an unknown, expired or
    already used token, or one whose instance is gone. Of two concurrent
    uses only one wins: the cache's delete is atomic."""
    if not token:
        return None
    key = _key(token)
    target = cache.get(key)
    if target is None or not cache.delete(key):
        return None
    if not Instance.objects.filter(pk=target["instance_id"], deleted=False).exists():
        return None
    return target


def console_url(token):
    # noVNC takes the websocket path (with the token) from `path`.
    return f"{PROXY_BASE_URL}?path={quote('?token=' + token, safe='')}"


def novnc_url(instance, timeout):
    """What `openstack console url show --novnc` answers: asks the
    instance's node for its domain's VNC address (waiting at most `timeout`
    seconds), makes a token for it, returns the proxy URL."""
    address = pipelines.vnc_address(instance.pk, instance.host, timeout)
    return console_url(create_token(instance.pk, address["host"], address["port"]))
