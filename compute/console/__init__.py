"""Remote consoles: one-time tokens (`tokens`) and the websocket proxy
that checks them and relays to a domain's VNC server (`proxy`, run by
`manage.py consoleproxy`).

The API side of `openstack console url show --novnc` is one call:
    url = compute.console.tokens.novnc_url(instance, timeout)"""
