"""/v3/auth: tokens, and what a token may be scoped to."""
from datetime import timezone

from rest_framework.response import Response

from cloud.auth import AUTH_REQUIRED
from cloud.errors import NotFound, Unauthorized
from cloud.views import ApiView
from identity import assignments, authn, tokens
from identity.catalog import build_catalog
from identity.models import Domain, Project, Role
from identity.api.serializers import DomainSerializer, ProjectSerializer


def isotime(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def token_body(credentials, user, include_catalog=True):
    """Keystone's token body for validated credentials."""
    body = {
        "methods": list(credentials.methods),
        "user": {
            "id": user.id, "name": user.name,
            "domain": {"id": user.domain_id, "name": user.domain.name},
            "password_expires_at": isotime(user.password_expires_at) if user.password_expires_at else None,
        },
        "audit_ids": list(credentials.audit_ids),
        "expires_at": isotime(credentials.expires_at),
        "issued_at": isotime(credentials.issued_at),
    }
    roles_by_name = {}
    if credentials.roles:
        roles_by_name = {role.name: role for role in Role.objects.filter(name__in=credentials.roles, domain=None)}
    if credentials.project_id:
        project = Project.objects.select_related("domain").filter(id=credentials.project_id).first()
        if project is None:
            raise NotFound("Could not find the token's project.")
        body["project"] = {"id": project.id, "name": project.name,
                           "domain": {"id": project.domain_id, "name": project.domain.name}}
        body["is_domain"] = False
        body["is_admin_project"] = credentials.is_admin_project
    elif credentials.system:
        body["system"] = {"all": True}
    elif credentials.domain_id:
        domain = Domain.objects.filter(id=credentials.domain_id).first()
        if domain is None:
            raise NotFound("Could not find the token's domain.")
        body["domain"] = {"id": domain.id, "name": domain.name}
    if credentials.scope != "unscoped":
        body["roles"] = [
            {"id": roles_by_name[name].id if name in roles_by_name else name, "name": name}
            for name in credentials.roles
        ]
        if include_catalog:
            body["catalog"] = build_catalog(credentials.project_id)
    if credentials.application_credential_id:
        body["application_credential"] = {
            "id": credentials.application_credential_id, "restricted": not credentials.unrestricted,
        }
    return {"token": body}


def subject_credentials(request):
    """Credentials of the token named by X-Subject-Token."""
    subject = request.headers.get("X-Subject-Token", "")
    credentials = tokens.validate_token(subject) if subject else None
    if credentials is None:
        raise NotFound("Could not find token.")
    return credentials


def may_see_token(request, credentials):
    return request.auth.is_admin or request.auth.user_id == credentials.user_id


class TokensView(ApiView):
    policy = {"post": "public", "get": "any", "head": "any", "delete": "any"}

    def post(self, request):
        token, credentials = authn.authenticate(request.data)
        user = authn.find_subject(credentials)
        include_catalog = "nocatalog" not in request.query_params
        response = Response(token_body(credentials, user, include_catalog), status=201)
        response["X-Subject-Token"] = token
        return response

    def _subject(self, request):
        credentials = subject_credentials(request)
        if not may_see_token(request, credentials):
            raise NotFound("Could not find token.")
        return credentials

    def get(self, request):
        credentials = self._subject(request)
        user = authn.find_subject(credentials)
        response = Response(token_body(credentials, user, "nocatalog" not in request.query_params))
        response["X-Subject-Token"] = credentials.token
        return response

    def head(self, request):
        self._subject(request)
        return Response(status=200)

    def delete(self, request):
        credentials = self._subject(request)
        tokens.revoke(audit_id=credentials.audit_ids[0])
        return Response(status=204)


class CatalogView(ApiView):
    policy = {"get": "any"}

    def get(self, request):
        if request.auth.scope == "unscoped":
            raise Unauthorized(AUTH_REQUIRED)
        return Response({"catalog": build_catalog(request.auth.project_id),
                         "links": {"self": request.build_absolute_uri(), "previous": None, "next": None}})


class AuthProjectsView(ApiView):
    policy = {"get": "any"}

    def get(self, request):
        user = authn.find_subject(request.auth)
        projects = assignments.projects_of(user).filter(enabled=True)
        data = ProjectSerializer(projects, many=True, context={"request": request}).data
        return Response({"projects": data, "links": {"self": request.build_absolute_uri(), "previous": None, "next": None}})


class AuthDomainsView(ApiView):
    policy = {"get": "any"}

    def get(self, request):
        domains = assignments.domains_of(authn.find_subject(request.auth))
        data = DomainSerializer(domains, many=True, context={"request": request}).data
        return Response({"domains": data, "links": {"self": request.build_absolute_uri(), "previous": None, "next": None}})
