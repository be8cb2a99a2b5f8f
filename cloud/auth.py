"""Token authentication shared by every service's API.

The token format belongs to identity; this module only knows the shape of a
validated token (`Credentials`) and calls the validator named by
settings.TOKEN_VALIDATOR."""
import functools
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils.functional import cached_property
from django.utils.module_loading import import_string
from rest_framework.authentication import BaseAuthentication

from cloud.errors import Unauthorized, service_of

ADMIN_ROLE = "admin"
MEMBER_ROLE = "member"
READER_ROLE = "reader"

AUTH_REQUIRED = "The request you have made requires authentication."


@dataclass(frozen=True)
class Credentials:
    """Who is calling, as the token says."""

    token: str
    user_id: str
    user_domain_id: str
    methods: tuple
    issued_at: datetime
    expires_at: datetime
    audit_ids: tuple
    project_id: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None
    system: bool = False  # scoped to the whole cloud (Keystone's system scope "all")
    roles: tuple = ()
    application_credential_id: str | None = None
    unrestricted: bool = True
    is_admin_project: bool = False  # scoped to the cloud's admin project
    # An application credential's access rules, ((service, method, path), ...):
    # the only API calls the token may make. None: no such restriction.
    access_rules: tuple | None = None
    # A token scoped to a trust: (trust id, trustor id, trustee id, impersonation).
    trust: tuple | None = None
    extra: dict = field(default_factory=dict, compare=False)

    is_authenticated = True

    @property
    def is_admin(self):
        """Admin of the whole cloud: the admin role on the system, or on the
        admin project. `admin` on any other project makes its holder admin
        of that project only (has_role(ADMIN_ROLE) on it), not of the cloud."""
        return ADMIN_ROLE in self.roles and (self.system or (bool(self.project_id) and self.is_admin_project))

    @property
    def trust_id(self):
        return self.trust[0] if self.trust else None

    def has_role(self, *names):
        return any(name in self.roles for name in names)

    @cached_property
    def scope(self):
        if self.system:
            return "system"
        return "project" if self.project_id else "domain" if self.domain_id else "unscoped"


class TokenAuthentication(BaseAuthentication):
    """X-Auth-Token, validated by identity. No token: the request is
    anonymous and the policy decides."""

    def authenticate(self, request):
        token = request.headers.get("X-Auth-Token")
        if not token:
            return None
        credentials = validator()(token)
        if credentials is None:
            raise Unauthorized(AUTH_REQUIRED)
        if credentials.access_rules is not None and not permitted(credentials.access_rules, request):
            raise Unauthorized(AUTH_REQUIRED)
        return credentials, credentials

    def authenticate_header(self, request):
        return "Keystone"


# The catalog types each API's path prefix answers for, as access rules name them.
SERVICE_TYPES = {"identity": ("identity",), "compute": ("compute",), "image": ("image",),
                 "network": ("network",), "volume": ("block-storage", "volumev3", "volume"),
                 "object-store": ("object-store",)}


def permitted(rules, request):
    """Whether one of the access rules allows this request: its service's
    type, its method, and its path under the service's prefix."""
    prefix = service_of(request.path)
    types = SERVICE_TYPES.get(prefix, ())
    path = request.path[len(prefix) + 1:] or "/"
    return any(service in types and method == request.method and path_matches(pattern, path)
               for service, method, pattern in rules)


@functools.lru_cache(maxsize=1024)
def _path_regex(pattern):
    parts = re.split(r"(\*\*|\*)", pattern)
    regex = "".join("[^/]+" if part == "*" else ".+" if part == "**" else re.escape(part) for part in parts)
    return re.compile(regex + "$")


def path_matches(pattern, path):
    """`*` is one path segment's text, `**` any number of segments, as
    keystonemiddleware reads access rules."""
    return bool(_path_regex(pattern).match(path.rstrip("/") or "/"))


_validator = None


def validator():
    global _validator
    if _validator is None:
        _validator = import_string(settings.TOKEN_VALIDATOR)
    return _validator
