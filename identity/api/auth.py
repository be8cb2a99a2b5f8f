"""/v3/auth: tokens, and what a token may be scoped to."""
from datetime import datetime, timezone

from rest_framework.response import Response

from cloud.auth import AUTH_REQUIRED
from cloud.errors import NotFound, Unauthorized
from cloud.views import ApiView
from identity import assignments, authn, ec2tokens, mfa, summaries, tokens
from identity.api.serializers import DomainSerializer, ProjectSerializer


def isotime(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def token_body(credentials, include_catalog=True):
    """Keystone's token body for validated credentials (the names, roles and
    catalog from identity.summaries, held in memory between requests)."""
    user = summaries.user(credentials.user_id)
    if user is None:
        raise NotFound("Could not find the token's user.")
    password_expires_at = user["password_expires_at"]
    body = {
        "methods": list(credentials.methods),
        "user": {"id": user["id"], "name": user["name"], "domain": dict(user["domain"]),
                 "password_expires_at": isotime(password_expires_at) if password_expires_at else None},
        "audit_ids": list(credentials.audit_ids),
        "expires_at": isotime(credentials.expires_at),
        "issued_at": isotime(credentials.issued_at),
    }
    if credentials.project_id:
        project = summaries.project(credentials.project_id)
        if project is None:
            raise NotFound("Could not find the token's project.")
        body["project"] = {"id": project["id"], "name": project["name"], "domain": dict(project["domain"])}
        body["is_domain"] = False
        body["is_admin_project"] = credentials.is_admin_project
    elif credentials.system:
        body["system"] = {"all": True}
    elif credentials.domain_id:
        domain = summaries.domain(credentials.domain_id)
        if domain is None:
            raise NotFound("Could not find the token's domain.")
        body["domain"] = dict(domain)
    if credentials.scope != "unscoped":
        role_ids = summaries.global_role_ids() if credentials.roles else {}
        body["roles"] = [{"id": role_ids.get(name, name), "name": name} for name in credentials.roles]
        if include_catalog:
            body["catalog"] = summaries.catalog(credentials.project_id)
    if credentials.trust:
        trust_id, trustor_id, trustee_id, impersonation = credentials.trust
        body["OS-TRUST:trust"] = {"id": trust_id, "impersonation": impersonation,
                                  "trustor_user": {"id": trustor_id}, "trustee_user": {"id": trustee_id}}
    if credentials.extra.get("oauth1"):
        access_token_id, consumer_id = credentials.extra["oauth1"]
        body["OS-OAUTH1"] = {"access_token_id": access_token_id, "consumer_id": consumer_id}
    if credentials.application_credential_id:
        body["application_credential"] = {
            "id": credentials.application_credential_id, "restricted": not credentials.unrestricted,
        }
    return {"token": body}


def receipt_response(required):
    """Keystone's 401 for a user proven by methods that meet none of their
    multi-factor rules: the receipt in the Openstack-Auth-Receipt header,
    what it proves and the rules to meet in the body."""
    user = required.user
    receipt, issued_at, expires_at = mfa.issue_receipt(user.id, required.methods)
    body = {
        "receipt": {
            "methods": list(required.methods),
            "user": {"id": user.id, "name": user.name, "domain": {"id": user.domain_id, "name": user.domain.name}},
            "expires_at": isotime(datetime.fromtimestamp(expires_at, timezone.utc)),
            "issued_at": isotime(datetime.fromtimestamp(issued_at, timezone.utc)),
        },
        "required_auth_methods": required.rules,
    }
    response = Response(body, status=401)
    response[mfa.RECEIPT_HEADER] = receipt
    return response


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
        try:
            token, credentials = authn.authenticate(request.data, request)
        except mfa.ReceiptRequired as required:
            return receipt_response(required)
        include_catalog = "nocatalog" not in request.query_params
        response = Response(token_body(credentials, include_catalog), status=201)
        response["X-Subject-Token"] = token
        return response

    def _subject(self, request):
        credentials = subject_credentials(request)
        if not may_see_token(request, credentials):
            raise NotFound("Could not find token.")
        return credentials

    def get(self, request):
        credentials = self._subject(request)
        response = Response(token_body(credentials, "nocatalog" not in request.query_params))
        response["X-Subject-Token"] = credentials.token
        return response

    def head(self, request):
        self._subject(request)
        return Response(status=200)

    def delete(self, request):
        credentials = self._subject(request)
        tokens.revoke(audit_id=credentials.audit_ids[0])
        return Response(status=204)


def service_or_admin(request, view):
    return request.auth.has_role("service")


class Ec2TokensView(ApiView):
    """POST /v3/ec2tokens: a token for a request signed with an ec2 key.
    For services (the `service` role) and admins only, as Keystone's
    identity:ec2tokens_validate since CVE-2025-65073: whoever holds a
    presigned URL holds a signature, which must not buy them a token."""

    policy = {"post": service_or_admin}

    def post(self, request):
        token, credentials = ec2tokens.authenticate(request.data)
        response = Response(token_body(credentials), status=200)
        response["X-Subject-Token"] = token
        return response


class S3TokensView(ApiView):
    """POST /v3/s3tokens: a token body for an S3 request signed with an ec2
    key, for services and admins as ec2tokens (Keystone's
    identity:s3tokens_validate). The body carries no token id, as
    Keystone's."""

    policy = {"post": service_or_admin}

    def post(self, request):
        _, credentials = ec2tokens.authenticate_s3(request.data)
        return Response(token_body(credentials), status=200)


class CatalogView(ApiView):
    policy = {"get": "any"}

    def get(self, request):
        if request.auth.scope == "unscoped":
            raise Unauthorized(AUTH_REQUIRED)
        return Response({"catalog": summaries.catalog(request.auth.project_id),
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
