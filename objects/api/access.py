"""Who may do what to an account (Swift's keystoneauth rules).

- A member (or admin) of the account's project does anything in it; a
  reader reads it.
- The cloud's admin, or a holder of `ResellerAdmin`, reaches every account.
- Anyone else gets what the container's ACLs grant:
  `X-Container-Read` (`.r:*` for anyone, token or not; `.rlistings` to list
  too; `<project id>:<user id>` with `*` for either; a role name) and
  `X-Container-Write` (the same, without referrers). Nothing else: 403 with
  a token, 401 without."""
from cloud.auth import ADMIN_ROLE, MEMBER_ROLE, READER_ROLE, TokenAuthentication
from cloud.errors import Unauthorized
from objects.api.errors import SwiftError

RESELLER_ROLE = "ResellerAdmin"
READ, WRITE, LIST, OWNER = "read", "write", "list", "owner"


def credentials_of(request):
    """The caller's validated token (the shared authentication layer), or
    None without one; 401 for a token that is not valid."""
    try:
        found = TokenAuthentication().authenticate(request)
    except Unauthorized:
        raise SwiftError(401)
    return found[1] if found else None


def parse_acl(text):
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def acl_problem(text, referrers):
    """Why an ACL header cannot be stored, or None."""
    for item in parse_acl(text):
        if item.startswith(".") and not referrers:
            return f"Referrers not allowed in write ACL: {item!r}"
        if item.startswith(".r:") and not item[3:]:
            return f"No host/domain value after referrer designation in ACL: {item!r}"
        if item.startswith(".") and not (item.startswith(".r:") or item in (".rlistings",)):
            return f"Unknown designator {item!r} in ACL"
    return None


def _acl_grants(acl_items, credentials):
    if credentials is None:
        return False
    for item in acl_items:
        if item.startswith("."):
            continue
        if ":" in item:
            project, user = item.split(":", 1)
            if project in ("*", credentials.project_id) and user in ("*", credentials.user_id):
                return True
        elif item in credentials.roles or item == "*":
            return True
    return False


def is_owner(credentials, project_id):
    """Full power over the account."""
    if credentials is None:
        return False
    if credentials.is_admin or credentials.has_role(RESELLER_ROLE):
        return True
    return credentials.project_id == project_id and credentials.has_role(MEMBER_ROLE, ADMIN_ROLE)


def authorize(credentials, project_id, operation, container=None):
    """Raises 401/403 unless the caller may do `operation` (READ or LIST
    of a container's objects, WRITE of an object, OWNER for anything on the
    account and its containers themselves)."""
    if is_owner(credentials, project_id):
        return
    if (credentials is not None and credentials.project_id == project_id
            and credentials.has_role(READER_ROLE) and operation in (READ, LIST)):
        return
    if container is not None and operation in (READ, LIST):
        items = parse_acl(container.read_acl)
        public = any(item == ".r:*" for item in items)
        if public and (operation == READ or ".rlistings" in items):
            return
        if _acl_grants(items, credentials):
            return
    if container is not None and operation == WRITE:
        if _acl_grants(parse_acl(container.write_acl), credentials):
            return
    raise SwiftError(401 if credentials is None else 403)
