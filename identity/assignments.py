"""Which roles a user holds where (a project, a domain, the system): direct
grants, grants to the user's groups, and grants inherited from a project's
domain or parent projects."""
from django.db.models import Q

from identity.models import Domain, ImpliedRole, Project, Role, RoleAssignment

# Keystone's [assignment] prohibited_implied_role: no role gives admin power.
PROHIBITED_IMPLIED_ROLES = ("admin",)


def inference_rules():
    """prior role id -> [implied roles] (a small table, read whole)."""
    rules = {}
    for rule in ImpliedRole.objects.select_related("implied_role"):
        rules.setdefault(rule.prior_role_id, []).append(rule.implied_role)
    return rules


def implied_by(role, rules):
    """(implied role, the role that implies it) for every role `role`
    gives, transitively, itself excluded."""
    found, seen, frontier = [], {role.id}, [role]
    while frontier:
        prior = frontier.pop()
        for implied in rules.get(prior.id, ()):
            if implied.id not in seen:
                seen.add(implied.id)
                found.append((implied, prior))
                frontier.append(implied)
    return found


def effective_roles(roles, rules=None):
    """The roles a holder of `roles` has: them and what they imply. A
    domain-specific role acts only through the global roles it implies."""
    rules = inference_rules() if rules is None else rules
    held = {}
    for role in roles:
        for each in [role, *(implied for implied, _ in implied_by(role, rules))]:
            if each.domain_id is None:
                held[each.id] = each
    return sorted(held.values(), key=lambda role: role.name)


def _actor(user):
    return Q(user=user) | Q(group__users=user)


def roles_on_project(user, project):
    # A grant inherited to a project's subtree acts on the projects below it, not on it.
    targets = Q(project=project, inherited=False) | Q(domain_id=project.domain_id, inherited=True)
    ancestors = project.ancestor_ids()
    if ancestors:
        targets |= Q(project_id__in=ancestors, inherited=True)
    role_ids = RoleAssignment.objects.filter(_actor(user) & targets).values("role_id")
    return effective_roles(Role.objects.filter(id__in=role_ids))


def roles_on_domain(user, domain):
    role_ids = RoleAssignment.objects.filter(_actor(user), domain=domain, inherited=False).values("role_id")
    return effective_roles(Role.objects.filter(id__in=role_ids))


def roles_on_system(user):
    role_ids = RoleAssignment.objects.filter(_actor(user), system=True).values("role_id")
    return effective_roles(Role.objects.filter(id__in=role_ids))


def projects_of(user):
    """Enabled projects the user holds any role on."""
    direct = RoleAssignment.objects.filter(_actor(user), project__isnull=False, inherited=False).values("project_id")
    inherited_domains = RoleAssignment.objects.filter(_actor(user), domain__isnull=False, inherited=True).values("domain_id")
    subtrees = [project_id for project in Project.objects.filter(
                    id__in=RoleAssignment.objects.filter(_actor(user), project__isnull=False, inherited=True)
                    .values("project_id"))
                for project_id in project.descendant_ids()]
    return Project.objects.filter(Q(id__in=direct) | Q(domain_id__in=inherited_domains) | Q(id__in=subtrees)) \
        .select_related("domain").distinct()


def domains_of(user):
    """Enabled domains the user holds a role on (not inherited ones)."""
    direct = RoleAssignment.objects.filter(_actor(user), domain__isnull=False, inherited=False).values("domain_id")
    return Domain.objects.filter(id__in=direct, enabled=True)
