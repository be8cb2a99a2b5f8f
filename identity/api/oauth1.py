"""/v3/OS-OAUTH1: consumers (admin), the OAuth 1.0a delegation flow
(request token, authorize, access token) and a user's access tokens and
their roles. Another user's access token reads as a 404."""
from django.http import HttpResponse
from rest_framework import status
from rest_framework.response import Response

from cloud.errors import BadRequest, NotFound
from cloud.views import ApiView
from identity import oauth1
from identity.api.auth import isotime
from identity.api.trusts import role_body
from identity.api.views import is_self
from identity.models import OAuthAccessToken, OAuthConsumer

CONSUMERS = "/identity/v3/OS-OAUTH1/consumers"
# Keystone's consumer body: a description, and any other fields the client adds.
RESERVED = ("id", "secret", "links")


def consumer_body(request, consumer):
    body = {**consumer.extra, "id": consumer.id, "description": consumer.description,
            "links": {"self": request.build_absolute_uri(f"{CONSUMERS}/{consumer.id}")}}
    return body


def _consumer_fields(request):
    data = request.data.get("consumer") if isinstance(request.data, dict) else None
    if not isinstance(data, dict):
        raise BadRequest("Invalid input for field 'consumer': the request body must be {\"consumer\": {...}}.")
    description = data.get("description", "")
    if description is not None and not isinstance(description, str):
        raise BadRequest("Invalid input for field 'consumer.description': expected a string or null.")
    return data, description or ""


def list_links(request):
    return {"self": request.build_absolute_uri(), "previous": None, "next": None}


class ConsumerListView(ApiView):
    policy = {"get": "admin", "post": "admin"}

    def get(self, request):
        return Response({"consumers": [consumer_body(request, row) for row in OAuthConsumer.objects.all()],
                         "links": list_links(request)})

    def post(self, request):
        data, description = _consumer_fields(request)
        if "secret" in data or "id" in data:
            raise BadRequest("Invalid input for field 'consumer': its id and secret are chosen by the server.")
        extra = {key: value for key, value in data.items() if key not in RESERVED and key != "description"}
        consumer = OAuthConsumer.objects.create(secret=oauth1.new_secret(), description=description, extra=extra)
        body = consumer_body(request, consumer)
        body["secret"] = consumer.secret  # shown this once only
        return Response({"consumer": body}, status=status.HTTP_201_CREATED)


class ConsumerView(ApiView):
    policy = {"get": "admin", "patch": "admin", "delete": "admin"}

    def _consumer(self, consumer_id):
        consumer = OAuthConsumer.objects.filter(id=consumer_id).first()
        if consumer is None:
            raise NotFound(f"Could not find consumer: {consumer_id}.")
        return consumer

    def get(self, request, consumer_id):
        return Response({"consumer": consumer_body(request, self._consumer(consumer_id))})

    def patch(self, request, consumer_id):
        consumer = self._consumer(consumer_id)
        data, description = _consumer_fields(request)
        if "secret" in data:
            raise BadRequest("Invalid input for field 'consumer.secret': a consumer's secret cannot be changed.")
        if "id" in data and data["id"] != consumer.id:
            raise BadRequest("Invalid input for field 'consumer.id': a consumer's id cannot be changed.")
        if "description" in data:
            consumer.description = description
        consumer.extra.update({key: value for key, value in data.items()
                               if key not in RESERVED and key != "description"})
        consumer.save(update_fields=["description", "extra"])
        return Response({"consumer": consumer_body(request, consumer)})

    def delete(self, request, consumer_id):
        oauth1.delete_consumer(self._consumer(consumer_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def form_response(token, secret, expires_at):
    return HttpResponse(oauth1.form_body(token, secret, expires_at), status=201,
                        content_type="application/x-www-form-urlencoded")


class RequestTokenView(ApiView):
    """Signed by the consumer (OAuth), not by a Stratus token."""

    policy = {"post": "public"}

    def post(self, request):
        request_token = oauth1.create_request_token(request)
        return form_response(request_token.id, request_token.secret, request_token.expires_at)


class AuthorizeView(ApiView):
    policy = {"put": "any"}

    def put(self, request, request_token_id):
        verifier = oauth1.authorize(request.auth, request_token_id, request.data)
        return Response({"token": {"oauth_verifier": verifier}})


class AccessTokenView(ApiView):
    policy = {"post": "public"}

    def post(self, request):
        access_token = oauth1.create_access_token(request)
        return form_response(access_token.id, access_token.secret, access_token.expires_at)


def access_token_body(request, access_token):
    path = f"/identity/v3/users/{access_token.authorizing_user_id}/OS-OAUTH1/access_tokens/{access_token.id}"
    return {"id": access_token.id, "consumer_id": access_token.consumer_id, "project_id": access_token.project_id,
            "authorizing_user_id": access_token.authorizing_user_id,
            "expires_at": isotime(access_token.expires_at) if access_token.expires_at else None,
            "links": {"self": request.build_absolute_uri(path), "roles": request.build_absolute_uri(f"{path}/roles")}}


def users_access_token(user_id, access_token_id):
    access_token = OAuthAccessToken.objects.filter(id=access_token_id, authorizing_user_id=user_id).first()
    if access_token is None:
        raise NotFound(f"Could not find access token: {access_token_id}.")
    return access_token


class UserAccessTokenListView(ApiView):
    policy = {"get": is_self}

    def get(self, request, user_id):
        rows = OAuthAccessToken.objects.filter(authorizing_user_id=user_id)
        return Response({"access_tokens": [access_token_body(request, row) for row in rows],
                         "links": list_links(request)})


class UserAccessTokenView(ApiView):
    policy = {"get": is_self, "delete": is_self}

    def get(self, request, user_id, access_token_id):
        return Response({"access_token": access_token_body(request, users_access_token(user_id, access_token_id))})

    def delete(self, request, user_id, access_token_id):
        oauth1.delete_access_token(users_access_token(user_id, access_token_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserAccessTokenRoleListView(ApiView):
    policy = {"get": is_self}

    def get(self, request, user_id, access_token_id):
        access_token = users_access_token(user_id, access_token_id)
        return Response({"roles": [role_body(request, role) for role in access_token.roles.order_by("name")],
                         "links": list_links(request)})


class UserAccessTokenRoleView(ApiView):
    policy = {"get": is_self}

    def get(self, request, user_id, access_token_id, role_id):
        role = users_access_token(user_id, access_token_id).roles.filter(id=role_id).first()
        if role is None:
            raise NotFound(f"Could not find role: {role_id}.")
        return Response({"role": role_body(request, role)})
