"""/v3/OS-TRUST/trusts: a trustor's delegations. A trust is seen by its
trustor, its trustee and cloud admins; anyone else reads it as a 404."""
from django.db.models import Q
from rest_framework import status
from rest_framework.response import Response

from cloud.errors import BadRequest, Forbidden, NotFound
from cloud.views import ApiView
from identity import trusts
from identity.api.auth import isotime
from identity.models import Trust


def role_body(request, role):
    return {"id": role.id, "name": role.name, "domain_id": role.domain_id, "description": role.description,
            "options": {}, "links": {"self": request.build_absolute_uri(f"/identity/v3/roles/{role.id}")}}


def trust_body(request, trust, with_roles=True):
    body = {
        "id": trust.id, "trustor_user_id": trust.trustor_id, "trustee_user_id": trust.trustee_id,
        "project_id": trust.project_id, "impersonation": trust.impersonation,
        "expires_at": isotime(trust.expires_at) if trust.expires_at else None,
        "remaining_uses": trust.remaining_uses, "allow_redelegation": trust.allow_redelegation,
        "redelegation_count": trust.redelegation_count, "redelegated_trust_id": trust.redelegated_trust_id,
        "links": {"self": request.build_absolute_uri(f"/identity/v3/OS-TRUST/trusts/{trust.id}")},
    }
    if with_roles:
        body["roles"] = [role_body(request, role) for role in trust.roles.all()]
        body["roles_links"] = {"self": None, "previous": None, "next": None}
    return body


def visible_trust(request, trust_id):
    """The trust, when it is live and the caller is its trustor, its
    trustee or a cloud admin; else 404."""
    trust = Trust.objects.prefetch_related("roles").filter(id=trust_id).first()
    me = request.auth.user_id
    if trust is None or not trusts.live(trust) or not (
            request.auth.is_admin or me in (trust.trustor_id, trust.trustee_id)):
        raise NotFound(f"Could not find trust: {trust_id}.")
    return trust


class TrustListView(ApiView):
    policy = {"get": "any", "post": "any"}

    def get(self, request):
        params = request.query_params
        rows = Trust.objects.all()
        me = request.auth.user_id
        for param, column in (("trustor_user_id", "trustor_id"), ("trustee_user_id", "trustee_id")):
            if param in params:
                if params[param] != me and not request.auth.is_admin:
                    raise Forbidden(f"Only an administrator can list the trusts of another {param[:7]}.")
                rows = rows.filter(**{column: params[param]})
        if not request.auth.is_admin:
            rows = rows.filter(Q(trustor_id=me) | Q(trustee_id=me))
        return Response({"trusts": [trust_body(request, trust, with_roles=False) for trust in rows],
                         "links": {"self": request.build_absolute_uri(), "previous": None, "next": None}})

    def post(self, request):
        body = request.data.get("trust") if isinstance(request.data, dict) else None
        if not isinstance(body, dict):
            raise BadRequest("Invalid input for field 'trust': the request body must be {\"trust\": {...}}.")
        trust = trusts.create(request.auth, body)
        return Response({"trust": trust_body(request, trust)}, status=status.HTTP_201_CREATED)


class TrustView(ApiView):
    policy = {"get": "any", "delete": "any"}

    def get(self, request, trust_id):
        return Response({"trust": trust_body(request, visible_trust(request, trust_id))})

    def delete(self, request, trust_id):
        trust = Trust.objects.filter(id=trust_id).first()
        me = request.auth.user_id
        if trust is None or not (request.auth.is_admin or me in (trust.trustor_id, trust.trustee_id)):
            raise NotFound(f"Could not find trust: {trust_id}.")
        if not request.auth.is_admin and me != trust.trustor_id:
            raise Forbidden("Only the trustor can delete a trust.")
        trust.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class TrustRoleListView(ApiView):
    policy = {"get": "any", "head": "any"}

    def get(self, request, trust_id):
        trust = visible_trust(request, trust_id)
        return Response({"roles": [role_body(request, role) for role in trust.roles.all()],
                         "links": {"self": request.build_absolute_uri(), "previous": None, "next": None}})

    head = get


class TrustRoleView(ApiView):
    policy = {"get": "any", "head": "any"}

    def _role(self, request, trust_id, role_id):
        role = next((role for role in visible_trust(request, trust_id).roles.all() if role.id == role_id), None)
        if role is None:
            raise NotFound(f"Could not find role: {role_id}.")
        return role

    def get(self, request, trust_id, role_id):
        return Response({"role": role_body(request, self._role(request, trust_id, role_id))})

    def head(self, request, trust_id, role_id):
        self._role(request, trust_id, role_id)
        return Response(status=status.HTTP_200_OK)
