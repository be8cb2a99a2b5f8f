"""The stratus-tiny guest image: built here from Debian packages, registered
by the image bootstrap as a public image users can boot.

What the guest prints on its serial console (ttyS0), one line each, for
people and for programs that wait on the console log:

    STRATUS-GUEST: booted                    kernel and drivers up, init starting
    STRATUS-GUEST: no network interface      no eth0: the console shell is all there is
    STRATUS-GUEST: address <ip>              DHCP lease applied on eth0
    STRATUS-GUEST: dhcp failed on eth0       no lease after 10 tries (udhcpc keeps trying)
    STRATUS-GUEST: metadata from <openstack|ec2>
    STRATUS-GUEST: metadata service unreachable
    STRATUS-GUEST: hostname <name>           first label of the metadata hostname
    STRATUS-GUEST: ssh key installed         root's authorized_keys written
    STRATUS-GUEST: no ssh key
    STRATUS-GUEST: ssh host key <fingerprint>
    STRATUS-GUEST: ssh ready                 dropbear listens on port 22 (keys only)
"""
from .builder import BuildResult, GuestImageBuilder, GuestImageError, GuestImageUnavailable

__all__ = ["BuildResult", "GuestImageBuilder", "GuestImageError", "GuestImageUnavailable"]
