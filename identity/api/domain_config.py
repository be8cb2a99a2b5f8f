"""/v3/domains/{id}/config[/{group}[/{option}]] and
/v3/domains/config[/{group}[/{option}]]/default: domain configuration,
admins only (identity.domain_config has the rules)."""
from rest_framework import status
from rest_framework.response import Response

from cloud.errors import NotFound
from cloud.views import ApiView
from identity import domain_config, security_compliance
from identity.models import Domain

ADMIN = {"get": "admin", "head": "admin", "put": "admin", "patch": "admin", "delete": "admin"}


def _domain(domain_id):
    domain = Domain.objects.filter(id=domain_id).first()
    if domain is None:
        raise NotFound(f"Could not find domain: {domain_id}.")
    return domain


class DomainConfigPartView(ApiView):
    """A group of the configuration, or one option."""

    policy = ADMIN

    def get(self, request, domain_id, group=None, option=None):
        return Response({"config": domain_config.shown(_domain(domain_id), group, option)})

    head = get

    def patch(self, request, domain_id, group=None, option=None):
        domain = _domain(domain_id)
        domain_config.update(domain, domain_config.body_config(request.data), group, option)
        return Response({"config": domain_config.shown(domain, missing_ok=True)})

    def delete(self, request, domain_id, group=None, option=None):
        domain_config.delete(_domain(domain_id), group, option)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DomainConfigView(DomainConfigPartView):
    """The whole configuration: PUT replaces it (201 when there was none)."""

    def put(self, request, domain_id):
        domain = _domain(domain_id)
        created = domain_config.replace(domain, domain_config.body_config(request.data))
        return Response({"config": domain_config.shown(domain, missing_ok=True)},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class DomainConfigDefaultView(ApiView):
    policy = {"get": "admin", "head": "admin"}

    def get(self, request, group=None, option=None):
        return Response({"config": domain_config.defaults(group, option)})

    head = get


class SecurityComplianceConfigView(DomainConfigPartView):
    """GET /v3/domains/default/config/security_compliance[/{option}]: the
    password rules any user may read (identity.security_compliance); they
    are the cloud's settings, not a domain's, so writing them is refused
    as for any group a domain cannot set."""

    policy = {**ADMIN, "get": "any", "head": "any"}

    def get(self, request, domain_id, group=None, option=None):
        return Response({"config": security_compliance.readable_config(domain_id, option)})

    head = get
