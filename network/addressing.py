"""Address arithmetic both the API and the agent's drivers use (no
database: the drivers run without Django)."""
import ipaddress


def eui64_address(cidr, mac_address):
    """The SLAAC address of `mac_address` in the /64 `cidr` (RFC 4291's
    modified EUI-64: the MAC's universal/local bit flipped, ff:fe in the middle)."""
    octets = [int(part, 16) for part in mac_address.split(":")]
    octets[0] ^= 0x02
    interface_id = int.from_bytes(bytes(octets[:3] + [0xFF, 0xFE] + octets[3:]), "big")
    return str(ipaddress.ip_network(cidr).network_address + interface_id)
