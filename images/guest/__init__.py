"""The stratus-tiny guest image: built here from Debian packages, registered
by the image bootstrap as a public image users can boot."""
from .builder import BuildResult, GuestImageBuilder, GuestImageError, GuestImageUnavailable

__all__ = ["BuildResult", "GuestImageBuilder", "GuestImageError", "GuestImageUnavailable"]
