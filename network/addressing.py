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


def eui64_mac(address):
    """The MAC an IPv6 address's modified EUI-64 interface identifier was
    made from (eui64_address's inverse), or None when the identifier is
    not one (no ff:fe in its middle)."""
    identifier = (int(ipaddress.IPv6Address(address)) & (2 ** 64 - 1)).to_bytes(8, "big")
    if identifier[3:5] != b"\xff\xfe":
        return None
    octets = bytearray(identifier[:3] + identifier[5:])
    octets[0] ^= 0x02
    return ":".join(f"{octet:02x}" for octet in octets)
