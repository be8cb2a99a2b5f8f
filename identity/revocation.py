"""The one rule of revocation: every change that takes a permission away
revokes the tokens that carried it, and only those.

It lives on the models' signals, so the REST API, the Django admin and
`manage.py shell` all go through it; no view revokes on its own (except
DELETE /v3/auth/tokens, which revokes one token by its audit id).
QuerySet.update() of a tracked column saves row by row to come through here
(identity.models.RevokingQuerySet); only raw SQL bypasses it.

Tokens carry user, project (and its domain), domain, system scope and
application credential ids; what reaches "every member of a group" is
written as one event per member and grant, narrowed to the grant's target."""
from django.db.models.signals import m2m_changed, post_save, pre_delete, pre_save
from django.dispatch import receiver

from identity import tokens
from identity.models import ApplicationCredential, Domain, Group, ImpliedRole, Project, RoleAssignment, Trust, User

# Stored columns whose change can take a permission away, per model.
TRACKED = {model: model.REVOKING_FIELDS for model in (Domain, Project, User, RoleAssignment)}


def remember_stored_values(sender, instance, update_fields=None, **kwargs):
    fields = TRACKED[sender]
    instance._stored = None
    if instance._state.adding or (update_fields is not None and not set(fields) & set(update_fields)):
        return
    instance._stored = sender.objects.filter(pk=instance.pk).values(*fields).first()


for model in TRACKED:
    pre_save.connect(remember_stored_values, sender=model, dispatch_uid=f"identity.revocation.{model.__name__}")


def _lost(instance, field):
    """True when a boolean field went from true to false in this save."""
    stored = getattr(instance, "_stored", None)
    return bool(stored and stored[field] and not getattr(instance, field))


def _changed(instance, field):
    stored = getattr(instance, "_stored", None)
    return bool(stored and stored[field] != getattr(instance, field))


@receiver(post_save, sender=Domain)
def domain_saved(sender, instance, **kwargs):
    if _lost(instance, "enabled"):
        # A domain's event reaches its own tokens, its users' and its projects'.
        tokens.revoke(domain_id=instance.id)


@receiver(post_save, sender=Project)
def project_saved(sender, instance, **kwargs):
    if _lost(instance, "enabled") or _lost(instance, "is_admin_project"):
        tokens.revoke(project_id=instance.id)
    if _changed(instance, "parent_id"):
        # Roles inherited from the old ancestors are gone, here and below.
        tokens.revoke_all([{"project_id": project_id} for project_id in [instance.id, *instance.descendant_ids()]])


@receiver(post_save, sender=User)
def user_saved(sender, instance, **kwargs):
    if _lost(instance, "enabled") or _changed(instance, "password"):
        tokens.revoke(user_id=instance.id)


@receiver(post_save, sender=RoleAssignment)
def assignment_saved(sender, instance, **kwargs):
    stored = getattr(instance, "_stored", None)
    if stored and any(stored[field] != getattr(instance, field) for field in TRACKED[RoleAssignment]):
        revoke_assignment(stored)  # the edited assignment no longer grants what it did


@receiver(pre_delete, sender=Domain)
def domain_deleted(sender, instance, **kwargs):
    tokens.revoke(domain_id=instance.id)


@receiver(pre_delete, sender=Project)
def project_deleted(sender, instance, **kwargs):
    tokens.revoke(project_id=instance.id)


@receiver(pre_delete, sender=User)
def user_deleted(sender, instance, **kwargs):
    tokens.revoke(user_id=instance.id)


@receiver(pre_delete, sender=ApplicationCredential)
def application_credential_deleted(sender, instance, **kwargs):
    tokens.revoke(application_credential_id=instance.id)


@receiver(pre_delete, sender=Trust)
def trust_deleted(sender, instance, **kwargs):
    # The trusts redelegated from it go with it (CASCADE), each through here.
    tokens.revoke(trust_id=instance.id)


@receiver(pre_delete, sender=RoleAssignment)
def assignment_deleted(sender, instance, **kwargs):
    # Before the delete, so a group's members are still there to be found
    # (a deleted group or role takes its assignments with it, through here).
    revoke_assignment({field: getattr(instance, field) for field in TRACKED[RoleAssignment]})


def revoke_assignment(assignment):
    """Revokes the tokens an assignment (a dict of TRACKED[RoleAssignment]
    values) may have put its role in."""
    if assignment["user_id"]:
        user_ids = [assignment["user_id"]]
    else:
        user_ids = list(Group.users.through.objects.filter(group_id=assignment["group_id"])
                        .values_list("user_id", flat=True))
    tokens.revoke_all(_events(assignment, user_ids))


def _events(assignment, user_ids):
    """One revocation per user, narrowed to what the assignment reached."""
    if assignment["system"]:
        target = {"system": True}
    elif assignment["project_id"] and not assignment["inherited"]:
        target = {"project_id": assignment["project_id"]}
    elif assignment["project_id"]:
        target = {}  # inherited by every project below it
    else:
        target = {"domain_id": assignment["domain_id"]}  # the domain, and its projects when inherited
    return [{"user_id": user_id, **target} for user_id in user_ids]


def _group_grants(group_ids):
    return RoleAssignment.objects.filter(group_id__in=group_ids).values(*TRACKED[RoleAssignment])


@receiver(m2m_changed, sender=Group.users.through)
def group_membership_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """A user who leaves a group loses the roles the group holds, there."""
    if action not in ("pre_remove", "pre_clear"):
        return
    if not reverse:  # group.users.remove(users...)
        users = instance.users.all() if pk_set is None else instance.users.filter(pk__in=pk_set)
        leaving = {instance.id: list(users.values_list("id", flat=True))}
    else:  # user.groups.remove(groups...)
        groups = instance.groups.all() if pk_set is None else instance.groups.filter(pk__in=pk_set)
        leaving = {group_id: [instance.id] for group_id in groups.values_list("id", flat=True)}
    events = []
    for grant in _group_grants(leaving):
        events.extend(_events(grant, leaving[grant["group_id"]]))
    tokens.revoke_all(events)


@receiver(m2m_changed, sender=ApplicationCredential.roles.through)
def application_credential_roles_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("pre_remove", "pre_clear"):
        return
    if not reverse:
        tokens.revoke(application_credential_id=instance.id)
    else:  # role.application_credentials.remove(...)
        credentials = instance.application_credentials.all()
        if pk_set is not None:
            credentials = credentials.filter(pk__in=pk_set)
        tokens.revoke_all([{"application_credential_id": pk} for pk in credentials.values_list("pk", flat=True)])


@receiver(pre_delete, sender=ImpliedRole)
def implied_role_deleted(sender, instance, **kwargs):
    """Whoever held the implied role through the prior one (or through a
    role implying that) loses it, wherever the grant is."""
    priors, frontier = {instance.prior_role_id}, [instance.prior_role_id]
    while frontier:
        above = set(ImpliedRole.objects.filter(implied_role_id__in=frontier).values_list("prior_role_id", flat=True))
        frontier = list(above - priors)
        priors |= above
    for grant in RoleAssignment.objects.filter(role_id__in=priors).values(*TRACKED[RoleAssignment]):
        revoke_assignment(grant)
