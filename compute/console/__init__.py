"""Remote consoles: one-time tokens (`tokens`) and the websocket proxy
that checks them and relays to a domain's VNC server (`proxy`, run by
`manage.py consoleproxy`).

The API side of `openstack console url show --novnc`:
    address = compute.node.tasks.vnc_address.apply_async(
        args=[instance_id], queue=compute(host)).get(timeout=...)
    token = tokens.create_token(instance_id, address["host"], address["port"])
    url = tokens.console_url(token)"""
