"""POST /v3/auth/tokens: who the caller is (password, token or
application credential) and what the new token is scoped to."""
from django.utils import timezone

from cloud.auth import AUTH_REQUIRED
from cloud.errors import BadRequest, Forbidden, NotFound, Unauthorized
from identity import assignments, mfa, oauth1, security_compliance, tokens, totp, trusts
from identity.models import ApplicationCredential, Domain, Project, User
from identity.passwords import check_secret


def _object(value, field):
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field '{field}': expected an object.")
    return value


def _string(value, field):
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Invalid input for field '{field}': expected a non-empty string.")
    return value


def _find_domain(ref, field):
    """A domain by {"id"} or {"name"}; 401 when it does not exist (so that
    authentication does not reveal which domains exist)."""
    ref = _object(ref, field)
    if "id" in ref:
        domain = Domain.objects.filter(id=_string(ref["id"], f"{field}.id")).first()
    elif "name" in ref:
        domain = Domain.objects.filter(name=_string(ref["name"], f"{field}.name")).first()
    else:
        raise BadRequest(f"Invalid input for field '{field}': expected 'id' or 'name'.")
    return domain


def _find_user(ref, field):
    ref = _object(ref, field)
    if "id" in ref:
        return User.objects.select_related("domain").filter(id=_string(ref["id"], f"{field}.id")).first()
    name = _string(ref.get("name"), f"{field}.name")
    if "domain" not in ref:
        raise BadRequest(f"Invalid input for field '{field}.domain': required when the user is given by name.")
    domain = _find_domain(ref["domain"], f"{field}.domain")
    if domain is None:
        return None
    return User.objects.select_related("domain").filter(domain=domain, name=name).first()


def usable(user):
    """Whether the user may authenticate: enabled, in an enabled domain, not
    refused for inactivity."""
    return user is not None and user.enabled and user.domain.enabled and not security_compliance.inactive(user)


class Identity:
    """The outcome of the identity part: a user, the methods used, and what
    the methods already fix (scope and expiry from a token or credential)."""

    def __init__(self, user, methods):
        self.user = user
        self.methods = methods
        self.audit_ids = None
        self.expires_at = None
        self.application_credential = None
        self.fixed_project = None
        self.allowed_role_ids = None  # None: every role the user holds in the scope
        self.oauth1 = None  # (access token id, consumer id)


def _by_password(body, request):
    body = _object(body, "auth.identity.password")
    user_ref = _object(body.get("user"), "auth.identity.password.user")
    password = user_ref.get("password")
    if not isinstance(password, str):
        raise BadRequest("Invalid input for field 'auth.identity.password.user.password': expected a string.")
    user = _find_user(user_ref, "auth.identity.password.user")
    if user is not None:
        security_compliance.refuse_if_locked(user)  # even with the right password
    if not check_secret(password, user.password if user else ""):
        if user is not None:
            security_compliance.password_failed(user)
        raise Unauthorized(AUTH_REQUIRED)
    if not usable(user):
        raise Unauthorized(AUTH_REQUIRED)
    security_compliance.refuse_if_expired(user)
    security_compliance.password_succeeded(user)
    return Identity(user, ["password"])


def _by_totp(body, request):
    body = _object(body, "auth.identity.totp")
    user_ref = _object(body.get("user"), "auth.identity.totp.user")
    passcode = user_ref.get("passcode")
    if not isinstance(passcode, str):
        raise BadRequest("Invalid input for field 'auth.identity.totp.user.passcode': expected a string.")
    user = _find_user(user_ref, "auth.identity.totp.user")
    if not usable(user) or not totp.user_passcode_matches(user, passcode):
        raise Unauthorized(AUTH_REQUIRED)
    return Identity(user, ["totp"])


def _by_token(body, request):
    body = _object(body, "auth.identity.token")
    credentials = tokens.validate_token(_string(body.get("id"), "auth.identity.token.id"))
    if credentials is None:
        # Keystone's TokenNotFound: a revoked or expired token is a 404 here.
        raise NotFound("Could not find token.")
    if credentials.application_credential_id:
        raise Forbidden("A token created with an application credential cannot be rescoped.")
    if credentials.trust_id:
        raise Forbidden("A trust-scoped token cannot be rescoped.")
    if credentials.extra.get("oauth1"):
        raise Forbidden("A token made with an OAuth access token cannot be rescoped.")
    user = User.objects.select_related("domain").filter(id=credentials.user_id).first()
    if not usable(user):
        raise Unauthorized(AUTH_REQUIRED)
    # As Keystone's: the new token says it came from a token, and how that one was had.
    identity = Identity(user, list(dict.fromkeys([*credentials.methods, "token"])))
    identity.audit_ids = [tokens.new_audit_id(), credentials.audit_ids[-1]]
    identity.expires_at = credentials.expires_at
    return identity


def _by_application_credential(body, request):
    body = _object(body, "auth.identity.application_credential")
    secret = _string(body.get("secret"), "auth.identity.application_credential.secret")
    credentials = ApplicationCredential.objects.select_related("user__domain", "project")
    if "id" in body:
        credential = credentials.filter(id=_string(body["id"], "auth.identity.application_credential.id")).first()
    else:
        name = _string(body.get("name"), "auth.identity.application_credential.name")
        user = _find_user(body.get("user"), "auth.identity.application_credential.user")
        credential = credentials.filter(user=user, name=name).first() if user else None
    if credential is None or not check_secret(secret, credential.secret_hash) or not usable(credential.user):
        raise Unauthorized(AUTH_REQUIRED)
    if credential.expires_at and credential.expires_at <= timezone.now():
        raise Unauthorized(AUTH_REQUIRED)
    identity = Identity(credential.user, ["application_credential"])
    identity.application_credential = credential
    identity.fixed_project = credential.project
    identity.expires_at = credential.expires_at
    return identity


def _by_oauth1(body, request):
    """A request signed with an OS-OAUTH1 access token: acting as the user
    who authorized it, on its project, with the roles delegated."""
    access_token = oauth1.authenticate_access_token(request)
    identity = Identity(access_token.authorizing_user, ["oauth1"])
    if not usable(identity.user):
        raise Unauthorized(AUTH_REQUIRED)
    identity.fixed_project = access_token.project
    identity.allowed_role_ids = {role.id for role in access_token.roles.all()}
    identity.oauth1 = (access_token.id, access_token.consumer_id)
    identity.expires_at = access_token.expires_at
    return identity


METHODS = {
    "password": _by_password,
    "totp": _by_totp,
    "token": _by_token,
    "application_credential": _by_application_credential,
    "oauth1": _by_oauth1,
}


def _identify(body, request):
    """Every method the request names, each proving the same user (what a
    multi-factor rule asks for), combined into one Identity."""
    identity_body = _object(body.get("identity"), "auth.identity")
    methods = identity_body.get("methods")
    if not isinstance(methods, list) or not methods or not all(isinstance(method, str) for method in methods):
        raise BadRequest("Invalid input for field 'auth.identity.methods': expected a non-empty list of method "
                         "names.")
    identity = None
    for method in dict.fromkeys(methods):
        if method not in METHODS:
            raise Unauthorized(f"Unsupported authentication method: {method}.")
        if method not in identity_body:
            raise BadRequest(f"Invalid input for field 'auth.identity.{method}': required by the method.")
        proven = METHODS[method](identity_body[method], request)
        identity = proven if identity is None else _combined(identity, proven)
    return identity


def _combined(identity, proven):
    if proven.user.id != identity.user.id:
        raise Unauthorized("The authentication methods given prove different users.")
    for name in ("fixed_project", "application_credential", "allowed_role_ids", "oauth1", "audit_ids"):
        mine, theirs = getattr(identity, name), getattr(proven, name)
        if mine is not None and theirs is not None and mine != theirs:
            raise Unauthorized("The authentication methods given cannot be combined.")
        setattr(identity, name, mine if mine is not None else theirs)
    identity.methods = list(dict.fromkeys([*identity.methods, *proven.methods]))
    ends = [moment for moment in (identity.expires_at, proven.expires_at) if moment is not None]
    identity.expires_at = min(ends) if ends else None
    return identity


def _check_mfa_rules(identity, request):
    """401 with a receipt when the methods proven (with a receipt's) meet
    none of the user's multi-factor rules."""
    receipt = request.headers.get(mfa.RECEIPT_HEADER) if request is not None else None
    if receipt:
        identity.methods = list(dict.fromkeys([*mfa.receipt_methods(receipt, identity.user.id), *identity.methods]))
    rules = mfa.unmet_rules(identity.user, identity.methods, METHODS)
    if rules is not None:
        raise mfa.ReceiptRequired(identity.user, identity.methods, rules)


SYSTEM = "system"
TRUST = "OS-TRUST:trust"


def _scope_target(scope):
    """(project, domain) the request asks to be scoped to, SYSTEM, or
    (TRUST, trust id)."""
    if scope == "unscoped":
        return None, None
    scope = _object(scope, "auth.scope")
    if "project" in scope:
        ref = _object(scope["project"], "auth.scope.project")
        if "id" in ref:
            project = Project.objects.select_related("domain").filter(id=_string(ref["id"], "auth.scope.project.id")).first()
        else:
            name = _string(ref.get("name"), "auth.scope.project.name")
            if "domain" not in ref:
                raise BadRequest("Invalid input for field 'auth.scope.project.domain': required with a project name.")
            domain = _find_domain(ref["domain"], "auth.scope.project.domain")
            project = Project.objects.select_related("domain").filter(domain=domain, name=name).first() if domain else None
        if project is None:
            raise Unauthorized("The project to scope to could not be found, or you have no role on it.")
        return project, None
    if "domain" in scope:
        domain = _find_domain(scope["domain"], "auth.scope.domain")
        if domain is None:
            raise Unauthorized("The domain to scope to could not be found, or you have no role on it.")
        return None, domain
    if TRUST in scope:
        return TRUST, _object(scope[TRUST], f"auth.scope.{TRUST}").get("id")
    if "system" in scope:
        if _object(scope["system"], "auth.scope.system") != {"all": True}:
            raise BadRequest("Invalid input for field 'auth.scope.system': expected {\"all\": true}.")
        return SYSTEM
    raise BadRequest("Invalid input for field 'auth.scope': expected 'project', 'domain', 'system' or 'unscoped'.")


def authenticate(body, request=None):
    """(token string, Credentials) for a POST /v3/auth/tokens body (and
    the request, whose signature the oauth1 method checks)."""
    body = _object(body, "auth")
    auth = _object(body.get("auth"), "auth")
    identity = _identify(auth, request)
    user = identity.user
    _check_mfa_rules(identity, request)
    security_compliance.mark_active(user)
    scope = auth.get("scope")

    system, trust = False, None
    if identity.fixed_project is not None:
        if scope is not None:
            what = "OAuth access tokens" if identity.oauth1 else "Application credentials"
            raise Unauthorized(f"{what} cannot request a scope.")
        project, domain = identity.fixed_project, None
    elif scope is None:
        project, domain = user.default_project, None
        if project is not None and not assignments.roles_on_project(user, project):
            project = None
    else:
        target = _scope_target(scope)
        system = target == SYSTEM
        if not system and target[0] == TRUST:
            trust, project, roles = trusts.scope(user, target[1])
            return trust_token(identity, trust, project, roles)
        project, domain = (None, None) if system else target

    roles = []
    if system:
        roles = assignments.roles_on_system(user)
        if not roles:
            raise Unauthorized("You have no role on the system.")
    elif project is not None:
        if not project.enabled or not project.domain.enabled:
            raise Unauthorized("The project to scope to is disabled.")
        roles = assignments.roles_on_project(user, project)
        if identity.application_credential is not None:
            identity.allowed_role_ids = {role.id for role in identity.application_credential.roles.all()}
        if identity.allowed_role_ids is not None:
            # What was delegated and the user still holds.
            roles = [role for role in roles if role.id in identity.allowed_role_ids]
        if not roles:
            raise Unauthorized("The project to scope to could not be found, or you have no role on it.")
    elif domain is not None:
        if not domain.enabled:
            raise Unauthorized("The domain to scope to is disabled.")
        roles = assignments.roles_on_domain(user, domain)
        if not roles:
            raise Unauthorized("The domain to scope to could not be found, or you have no role on it.")

    credential = identity.application_credential
    token, credentials = tokens.issue_token(
        user_id=user.id, user_domain_id=user.domain_id, methods=identity.methods,
        project_id=project.id if project else None, project_domain_id=project.domain_id if project else None,
        domain_id=domain.id if domain else None, system=system,
        roles=[role.name for role in roles], expires_at=identity.expires_at, audit_ids=identity.audit_ids,
        application_credential_id=credential.id if credential else None,
        unrestricted=credential.unrestricted if credential else True,
        is_admin_project=bool(project and project.is_admin_project), oauth1=identity.oauth1,
    )
    return token, credentials


def trust_token(identity, trust, project, roles):
    """A token scoped to a trust: the trust's project and roles, acting as
    the trustor when the trust impersonates, ending when the trust does."""
    acting = trust.trustor if trust.impersonation else identity.user
    expires_at = identity.expires_at
    if trust.expires_at and (expires_at is None or trust.expires_at < expires_at):
        expires_at = trust.expires_at
    return tokens.issue_token(
        user_id=acting.id, user_domain_id=acting.domain_id, methods=identity.methods, project_id=project.id,
        project_domain_id=project.domain_id, roles=[role.name for role in roles], expires_at=expires_at,
        audit_ids=identity.audit_ids, is_admin_project=project.is_admin_project,
        trust=(trust.id, trust.trustor_id, trust.trustee_id, trust.impersonation),
    )


def find_subject(credentials):
    """The user a validated token belongs to, or 404 when it is gone."""
    user = User.objects.select_related("domain").filter(id=credentials.user_id).first()
    if user is None:
        raise NotFound("Could not find the token's user.")
    return user
