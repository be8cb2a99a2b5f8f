"""The node network agent's kernel drivers: one thin wrapper per kernel
concern, driven with plain data (`resources`), never with Django models.

- `iplib`: namespaces, links and commands run inside a namespace (pyroute2)
- `bridges`: a Linux bridge per network, its VXLAN or flat interface, taps
- `dhcp`: dnsmasq in a `qdhcp-<network id>` namespace per network
- `firewall`: nftables anti-spoofing and security-group rules per port
- `routers`: a `qrouter-<router id>` namespace per router, NAT, floating IPs

`node` is the agent process above them: it reads the database, turns rows
into these resources and has the drivers converge a host to them.
"""
