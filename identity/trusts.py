"""OS-TRUST: what a trust may delegate when it is made, and what a token
scoped to it carries. A trust delegates only roles its trustor holds on
its project (or, made with a trust's token, roles of that trust when it
allows redelegation); its tokens carry the trust's roles only while the
original trustor still holds them, and each token spends one use."""
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework import serializers

from cloud.errors import BadRequest, Forbidden, NotFound
from identity import assignments
from identity.models import Project, Role, Trust, User

# Keystone's [trust] max_redelegation_count.
MAX_REDELEGATION_COUNT = 3

FIELDS = {"trustor_user_id", "trustee_user_id", "project_id", "impersonation", "roles", "expires_at",
          "remaining_uses", "allow_redelegation", "redelegation_count"}


def _bool(body, field, default=None):
    value = body.get(field, default)
    if not isinstance(value, bool):
        raise BadRequest(f"Invalid input for field '{field}': expected a boolean.")
    return value


def _count(body, field, minimum):
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum or value > 2 ** 31 - 1:
        raise BadRequest(f"Invalid input for field '{field}': expected null or an integer of at least {minimum}.")
    return value


def _expiry(body):
    value = body.get("expires_at")
    if value is None:
        return None
    try:
        moment = serializers.DateTimeField().to_internal_value(value) if isinstance(value, str) else None
    except serializers.ValidationError:
        moment = None
    if moment is None:
        raise BadRequest("Invalid input for field 'expires_at': expected an ISO 8601 time.")
    if moment <= timezone.now():
        raise BadRequest("Invalid input for field 'expires_at': the time is in the past.")
    return moment


def _string(body, field):
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Invalid input for field '{field}': expected a non-empty string.")
    return value


def _requested_roles(refs):
    if not isinstance(refs, list) or not refs:
        raise BadRequest("Invalid input for field 'roles': at least one role, as {\"id\"} or {\"name\"}.")
    roles = []
    for index, ref in enumerate(refs):
        if not isinstance(ref, dict) or not ({"id", "name"} & set(ref)):
            raise BadRequest(f"Invalid input for field 'roles[{index}]': expected {{\"id\"}} or {{\"name\"}}.")
        if "id" in ref:
            role = Role.objects.filter(id=ref["id"]).first() if isinstance(ref["id"], str) else None
        else:
            role = Role.objects.filter(name=ref["name"], domain=None).first() if isinstance(ref["name"], str) \
                else None
        if role is None:
            raise NotFound(f"Could not find role: {ref.get('id', ref.get('name'))}.")
        if role not in roles:
            roles.append(role)
    return roles


def live(trust, now=None):
    """Whether the trust may still be used or shown (not expired)."""
    return trust.expires_at is None or trust.expires_at > (now or timezone.now())


def create(credentials, body):
    """A new Trust from a POST /v3/OS-TRUST/trusts body, made by the
    caller whose validated token is `credentials`."""
    if credentials.extra.get("oauth1"):
        # Its roles are the consumer's delegation, not the user's to pass on.
        raise Forbidden("A token made with an OAuth access token cannot create a trust.")
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field 'trust': the request body must be {\"trust\": {...}}.")
    unknown = set(body) - FIELDS
    if unknown:
        raise BadRequest(f"Invalid input for field '{sorted(unknown)[0]}': not an attribute of a trust.")
    trustor_id, trustee_id = _string(body, "trustor_user_id"), _string(body, "trustee_user_id")
    impersonation = _bool(body, "impersonation")
    project_id = _string(body, "project_id")
    expires_at = _expiry(body)
    remaining_uses = _count(body, "remaining_uses", 1)
    allow_redelegation = _bool(body, "allow_redelegation", False)
    redelegation_count = _count(body, "redelegation_count", 0)
    if allow_redelegation and remaining_uses is not None:
        raise BadRequest("Invalid input for field 'remaining_uses': must not be set when redelegation is allowed.")
    if credentials.application_credential_id:
        raise Forbidden("A token created with an application credential cannot create a trust.")
    if trustor_id != credentials.user_id:
        raise Forbidden("The authenticated user should match the trustor.")
    trustee = User.objects.filter(id=trustee_id).first()
    if trustee is None:
        raise NotFound(f"Could not find user: {trustee_id}.")
    project = Project.objects.filter(id=project_id).first()
    if project is None:
        raise NotFound(f"Could not find project: {project_id}.")
    roles = _requested_roles(body.get("roles"))

    parent = None
    if credentials.trust_id:
        parent = _redelegating(credentials, project, roles, impersonation, expires_at, redelegation_count)
        expires_at = expires_at or parent.expires_at
        if redelegation_count is None:
            redelegation_count = parent.redelegation_count - 1
    else:
        trustor = User.objects.get(id=trustor_id)
        held = {role.id for role in assignments.roles_on_project(trustor, project)}
        for role in roles:
            if role.id not in held:
                raise Forbidden(f"The trustor does not hold the role {role.name} on project {project.id}.")
    if not allow_redelegation:
        redelegation_count = 0
    elif redelegation_count is None:
        redelegation_count = MAX_REDELEGATION_COUNT
    elif redelegation_count > MAX_REDELEGATION_COUNT:
        raise Forbidden(f"Specified redelegation depth of {redelegation_count} is greater than allowed "
                        f"{MAX_REDELEGATION_COUNT}.")
    with transaction.atomic():
        trust = Trust.objects.create(
            trustor_id=trustor_id, trustee=trustee, project=project, impersonation=impersonation,
            expires_at=expires_at, remaining_uses=remaining_uses, allow_redelegation=allow_redelegation,
            redelegation_count=redelegation_count, redelegated_trust=parent)
        trust.roles.set(roles)
    return trust


def _redelegating(credentials, project, roles, impersonation, expires_at, redelegation_count):
    """The trust whose token asks to make another one, when it may: the
    new trust gives no more than it (roles, time, impersonation, depth)."""
    parent = Trust.objects.filter(id=credentials.trust_id).prefetch_related("roles").first()
    if parent is None or not live(parent):
        raise NotFound(f"Could not find trust: {credentials.trust_id}.")
    if not parent.allow_redelegation or parent.redelegation_count < 1:
        raise Forbidden(f"Requested redelegation is not allowed by trust {parent.id}.")
    if redelegation_count is not None and redelegation_count >= parent.redelegation_count:
        raise Forbidden(f"Remaining redelegation depth of {redelegation_count} is out of the allowed range "
                        f"[0..{parent.redelegation_count - 1}].")
    if project.id != parent.project_id:
        raise Forbidden("A redelegated trust must be on the project of the trust it comes from.")
    delegated = {role.id for role in parent.roles.all()}
    if any(role.id not in delegated for role in roles):
        raise Forbidden("Some of the requested roles are not in the redelegated trust.")
    if impersonation and not parent.impersonation:
        raise Forbidden("Impersonation is not allowed because the redelegated trust does not allow it.")
    if parent.expires_at and (expires_at is None or expires_at > parent.expires_at):
        raise Forbidden("Requested expiration time is more than the redelegated trust can provide.")
    return parent


def original_trustor_id(trust):
    """The trustor at the root of a redelegation chain."""
    seen = set()
    while trust.redelegated_trust_id and trust.id not in seen:
        seen.add(trust.id)
        trust = Trust.objects.get(id=trust.redelegated_trust_id)
    return trust.trustor_id


def scope(user, trust_id):
    """(trust, project, the roles a token scoped to it carries) for `user`
    asking for a token scoped to the trust; spends one of its uses."""
    if not isinstance(trust_id, str) or not trust_id:
        raise BadRequest("Invalid input for field 'auth.scope.OS-TRUST:trust.id': expected a non-empty string.")
    trust = Trust.objects.select_related("trustor__domain", "trustee__domain", "project__domain") \
        .prefetch_related("roles").filter(id=trust_id).first()
    if trust is None or not live(trust):
        raise NotFound(f"Could not find trust: {trust_id}.")
    if trust.trustee_id != user.id:
        raise Forbidden("The user is not the trustee of this trust.")
    for person in (trust.trustor, trust.trustee):
        if not person.enabled or not person.domain.enabled:
            raise Forbidden("The trustor or the trustee of this trust is disabled.")
    project = trust.project
    if not project.enabled or not project.domain.enabled:
        raise Forbidden("The project of this trust is disabled.")
    trustor = User.objects.get(id=original_trustor_id(trust))
    held = {role.id for role in assignments.roles_on_project(trustor, project)}
    roles = assignments.effective_roles(trust.roles.all())
    if not roles or any(role.id not in held for role in roles):
        raise Forbidden("Trustee has no delegated roles.")
    if trust.remaining_uses is not None:
        # One conditional UPDATE: two tokens asked at once cannot both take the last use.
        spent = Trust.objects.filter(id=trust.id, remaining_uses__gt=0).update(remaining_uses=F("remaining_uses") - 1)
        if not spent:
            raise Forbidden(f"No remaining uses for trust: {trust.id}.")
    return trust, project, roles
