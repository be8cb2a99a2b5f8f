"""What a token body shows besides the token itself: the names of its user,
project and domain, its roles' ids and the catalog. Every service's
middleware validates tokens all day and mostly asks the same few, so each
API process holds them in memory and drops them all when any identity
data changes anywhere (the `identity` generation counter, moved after the
writing transaction commits by the model signals below).

Returned values are shared between requests: build new structures from
them, never change them in place."""
from django.db.models.signals import post_delete, post_save

from cloud import generations
from identity.models import (
    Domain, Endpoint, EndpointGroup, Project, ProjectEndpoint, ProjectEndpointGroup, Region, Role, Service, User,
)


def _user(user_id):
    user = User.objects.select_related("domain").filter(id=user_id).first()
    if user is None:
        return None
    return {"id": user.id, "name": user.name, "domain": {"id": user.domain_id, "name": user.domain.name},
            "password_expires_at": user.password_expires_at}


def _project(project_id):
    project = Project.objects.select_related("domain").filter(id=project_id).first()
    if project is None:
        return None
    return {"id": project.id, "name": project.name, "domain": {"id": project.domain_id, "name": project.domain.name}}


def _domain(domain_id):
    domain = Domain.objects.filter(id=domain_id).first()
    return {"id": domain.id, "name": domain.name} if domain else None


def _global_role_ids():
    return dict(Role.objects.filter(domain=None).values_list("name", "id"))


def _access_rules(application_credential_id):
    from identity.models import AccessRule

    rules = AccessRule.objects.filter(application_credentials__id=application_credential_id)
    return tuple(rules.values_list("service", "method", "path")) or None


def _catalog(project_id):
    from identity.catalog import build_catalog

    return build_catalog(project_id)


_users = generations.Derived("identity", _user)
_projects = generations.Derived("identity", _project)
_domains = generations.Derived("identity", _domain)
_roles = generations.Derived("identity", _global_role_ids)
_catalogs = generations.Derived("identity", _catalog)
_rules = generations.Derived("identity", _access_rules)


def user(user_id):
    """{"id", "name", "domain": {"id", "name"}, "password_expires_at"}, or None when it is gone."""
    return _users.get(user_id)


def project(project_id):
    """{"id", "name", "domain": {"id", "name"}}, or None."""
    return _projects.get(project_id)


def domain(domain_id):
    """{"id", "name"}, or None."""
    return _domains.get(domain_id)


def global_role_ids():
    """name -> id of every role not owned by a domain."""
    return _roles.get()


def catalog(project_id):
    """The service catalog for a token scoped to project_id (None: unscoped)."""
    return _catalogs.get(project_id)


def access_rules(application_credential_id):
    """The credential's access rules as ((service, method, path), ...), or
    None when it has none (it may then call every API its roles allow)."""
    return _rules.get(application_credential_id)


def identity_changed(sender, **kwargs):
    generations.changed("identity")


# The endpoint filters' rows shape the catalogs.
for model in (Domain, Project, User, Role, Region, Service, Endpoint, EndpointGroup, ProjectEndpoint,
              ProjectEndpointGroup):
    for signal in (post_save, post_delete):
        signal.connect(identity_changed, sender=model, dispatch_uid=f"identity.summaries.{model.__name__}")
