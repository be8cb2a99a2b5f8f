"""Who may call what. Each API view declares a rule per operation in
`policy` (keyed by viewset action, or by HTTP method on plain views):

    policy = {"list": "reader", "create": "admin", "retrieve": admin_or_self}

A rule is one of the names below or a callable (request, view) -> bool.
Operations a view does not list are admin-only."""
from rest_framework.permissions import BasePermission

from cloud.auth import ADMIN_ROLE, AUTH_REQUIRED, MEMBER_ROLE, READER_ROLE
from cloud.errors import Forbidden, Unauthorized

ROLE_RULES = {
    "any": None,  # any valid token
    "reader": (READER_ROLE, MEMBER_ROLE, ADMIN_ROLE),
    "member": (MEMBER_ROLE, ADMIN_ROLE),
    "admin": (ADMIN_ROLE,),  # and cloud-wide: a system-scoped token or one on the admin project
}

DENIED = "You are not authorized to perform the requested action."


def operation(request, view):
    return getattr(view, "action", None) or request.method.lower()


def allowed(rule, request, view):
    if rule == "public":
        return True
    credentials = request.auth
    if credentials is None:
        return False
    if callable(rule):
        return credentials.is_admin or bool(rule(request, view))
    if rule == "admin":  # cloud-wide admin power: see Credentials.is_admin
        return credentials.is_admin
    roles = ROLE_RULES[rule]
    return roles is None or credentials.has_role(*roles)


class Policy(BasePermission):
    def has_permission(self, request, view):
        rule = getattr(view, "policy", {}).get(operation(request, view), "admin")
        if rule == "public":
            return True
        if request.auth is None:
            raise Unauthorized(AUTH_REQUIRED)
        if not allowed(rule, request, view):
            raise Forbidden(DENIED)
        return True


def visible_projects(request):
    """None when the caller sees every project (admin), else the caller's."""
    credentials = request.auth
    if credentials.is_admin:
        return None
    return [credentials.project_id] if credentials.project_id else []
