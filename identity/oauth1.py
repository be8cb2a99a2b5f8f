"""OS-OAUTH1: a user delegates roles on a project to a consumer (a
third-party application) through OAuth 1.0a with HMAC-SHA1 signatures,
as Keystone does. The consumer gets a request token, the user authorizes
it with some of their roles (getting a verifier), the consumer trades it
once for an access token, and signs POST /v3/auth/tokens with that to get
tokens acting as the user. Deleting the access token or the consumer
revokes those tokens."""
import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from oauthlib.oauth1.rfc5849 import signature, utils

from cloud.errors import BadRequest, Forbidden, NotFound, Unauthorized
from identity import assignments, tokens
from identity.models import OAuthAccessToken, OAuthConsumer, OAuthRequestToken, Project, User

# How far a request's oauth_timestamp may be from the server's clock, and
# so how long its nonce is remembered against replays.
TIMESTAMP_WINDOW = 600


def new_secret():
    return secrets.token_urlsafe(24)


def _refused(why):
    return Unauthorized(f"The OAuth request could not be authenticated: {why}.")


# ---------------------------------------------------------------- signatures

def _signed_parameters(request):
    """(OAuth protocol parameters, every parameter the signature covers)
    of a request signed in its Authorization header."""
    header = request.headers.get("Authorization", "")
    if not header[:6].lower() == "oauth ":
        raise _refused("the request carries no 'Authorization: OAuth ...' header")
    try:
        header_params = signature.collect_parameters(headers={"Authorization": header}, exclude_oauth_signature=False)
        query_params = signature.collect_parameters(uri_query=request.META.get("QUERY_STRING", ""),
                                                    exclude_oauth_signature=False)
    except (ValueError, UnicodeError):
        raise _refused("the Authorization header cannot be parsed")
    body_params = []
    if request.content_type == "application/x-www-form-urlencoded":
        body_params = [(key, value) for key, values in request.data.lists() for value in values]
    oauth = utils.filter_oauth_params(header_params)
    if len(dict(oauth)) != len(oauth):
        raise BadRequest("Invalid input for field 'Authorization': an OAuth parameter is given twice.")
    return dict(oauth), header_params + body_params + query_params


def _signature(request, params, consumer_secret, token_secret):
    covered = [(key, value) for key, value in params if key != "oauth_signature"]
    base = signature.signature_base_string(
        request.method.upper(), signature.base_string_uri(request.build_absolute_uri(request.path)),
        signature.normalize_parameters(covered))
    key = f"{utils.escape(consumer_secret)}&{utils.escape(token_secret or '')}"
    return base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()).decode()


def _verify(request, oauth, params, consumer, token_secret=None):
    """401 unless the request is signed with HMAC-SHA1 by the consumer (and
    the token whose secret is given), fresh and not seen before."""
    if oauth.get("oauth_signature_method") != "HMAC-SHA1":
        raise _refused("the signature method must be HMAC-SHA1")
    if oauth.get("oauth_version", "1.0") != "1.0":
        raise _refused("oauth_version must be 1.0")
    nonce, timestamp = oauth.get("oauth_nonce"), oauth.get("oauth_timestamp", "")
    if not nonce or not timestamp.isdigit():
        raise _refused("oauth_nonce and oauth_timestamp are required")
    if abs(timezone.now().timestamp() - int(timestamp)) > TIMESTAMP_WINDOW:
        raise _refused("oauth_timestamp is too far from the server's clock")
    given = oauth.get("oauth_signature", "")
    if not hmac.compare_digest(_signature(request, params, consumer.secret, token_secret).encode(), given.encode()):
        raise _refused("the signature does not match")
    # Only a valid signature reaches here, so garbage cannot fill the cache.
    if not cache.add(f"oauth1-nonce:{consumer.id}:{timestamp}:{nonce}", 1, TIMESTAMP_WINDOW * 2):
        raise _refused("this nonce was used already")


def _consumer(oauth):
    consumer = OAuthConsumer.objects.filter(id=oauth.get("oauth_consumer_key") or "").first()
    if consumer is None:
        raise _refused("unknown consumer")
    return consumer


def _expired(row):
    return row.expires_at is not None and row.expires_at <= timezone.now()


def _expiry(seconds):
    return timezone.now() + timedelta(seconds=seconds) if seconds > 0 else None


def form_body(token, secret, expires_at):
    """The urlencoded body the request and access token calls answer with."""
    fields = {"oauth_token": token, "oauth_token_secret": secret}
    if expires_at is not None:
        fields["oauth_expires_at"] = expires_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return urlencode(fields)


# ---------------------------------------------------------------- the flow

def create_request_token(request):
    """POST /v3/OS-OAUTH1/request_token, signed by the consumer, for the
    project in the Requested-Project-Id header."""
    oauth, params = _signed_parameters(request)
    if oauth.get("oauth_token"):
        raise _refused("a request token is asked for with the consumer's signature alone")
    consumer = _consumer(oauth)
    _verify(request, oauth, params, consumer)
    project_id = request.headers.get("Requested-Project-Id", "")
    if not project_id:
        raise BadRequest("Invalid input for field 'Requested-Project-Id': the header is required.")
    project = Project.objects.filter(id=project_id).first()
    if project is None:
        raise NotFound(f"Could not find project: {project_id}.")
    # The consumer's request tokens that ran out unused go as it asks for more.
    OAuthRequestToken.objects.filter(consumer=consumer, expires_at__lte=timezone.now()).delete()
    return OAuthRequestToken.objects.create(
        secret=new_secret(), consumer=consumer, project=project,
        expires_at=_expiry(settings.OAUTH1_REQUEST_TOKEN_DURATION))


def _role_refs(body):
    roles = body.get("roles") if isinstance(body, dict) else None
    if not isinstance(roles, list) or not roles:
        raise BadRequest("Invalid input for field 'roles': expected a non-empty list of {\"id\"} or {\"name\"}.")
    for index, ref in enumerate(roles):
        if not isinstance(ref, dict) or not any(isinstance(ref.get(key), str) for key in ("id", "name")):
            raise BadRequest(f"Invalid input for field 'roles[{index}]': expected {{\"id\"}} or {{\"name\"}}.")
    return roles


def authorize(credentials, request_token_id, body):
    """PUT /v3/OS-OAUTH1/authorize/{id}: the caller delegates some of their
    roles on the requested project; the verifier they hand the consumer."""
    roles = _role_refs(body)
    if credentials.extra.get("oauth1"):
        raise Forbidden("A token made with an OAuth access token cannot authorize a request token.")
    if credentials.trust_id:
        raise Forbidden("A trust-scoped token cannot authorize a request token.")
    with transaction.atomic():
        request_token = OAuthRequestToken.objects.select_for_update().filter(id=request_token_id).first()
        if request_token is None:
            raise NotFound(f"Could not find request token: {request_token_id}.")
        if _expired(request_token):
            raise Unauthorized("The request token has expired.")
        if request_token.authorizing_user_id:
            raise Unauthorized("The request token has been authorized already.")
        user = User.objects.get(id=credentials.user_id)
        held = assignments.roles_on_project(user, request_token.project)
        if not held:
            raise Unauthorized("You have no role on the requested project.")
        chosen = []
        for index, ref in enumerate(roles):
            role = next((role for role in held if role.id == ref.get("id") or
                         (role.name == ref.get("name") and "id" not in ref)), None)
            if role is None:
                raise Unauthorized(f"You do not hold the role {ref.get('id') or ref.get('name')} (roles[{index}]) "
                                   f"on the requested project.")
            chosen.append(role)
        request_token.authorizing_user = user
        request_token.verifier = secrets.token_hex(4)
        request_token.save(update_fields=["authorizing_user", "verifier"])
        request_token.roles.set(chosen)
    return request_token.verifier


def create_access_token(request):
    """POST /v3/OS-OAUTH1/access_token, signed by the consumer and the
    authorized request token with its verifier. The request token is used
    up: a second exchange is refused."""
    oauth, params = _signed_parameters(request)
    consumer = _consumer(oauth)
    with transaction.atomic():
        request_token = OAuthRequestToken.objects.select_for_update().filter(
            id=oauth.get("oauth_token") or "", consumer=consumer).first()
        if request_token is None:
            raise _refused("unknown request token")
        _verify(request, oauth, params, consumer, request_token.secret)
        if _expired(request_token):
            raise _refused("the request token has expired")
        if not request_token.authorizing_user_id:
            raise _refused("the request token has not been authorized")
        if not hmac.compare_digest(request_token.verifier.encode(), (oauth.get("oauth_verifier") or "").encode()):
            raise _refused("the verifier does not match")
        access_token = OAuthAccessToken.objects.create(
            secret=new_secret(), consumer=consumer, project_id=request_token.project_id,
            authorizing_user_id=request_token.authorizing_user_id,
            expires_at=_expiry(settings.OAUTH1_ACCESS_TOKEN_DURATION))
        access_token.roles.set(request_token.roles.all())
        request_token.delete()
    return access_token


def authenticate_access_token(request):
    """The access token a POST /v3/auth/tokens (method oauth1) is signed
    with, its consumer's and its own secret; 401 otherwise."""
    if request is None:
        raise _refused("the request is not signed")
    oauth, params = _signed_parameters(request)
    consumer = _consumer(oauth)
    access_token = OAuthAccessToken.objects.select_related("authorizing_user__domain", "project__domain").filter(
        id=oauth.get("oauth_token") or "", consumer=consumer).first()
    if access_token is None:
        raise _refused("unknown access token")
    _verify(request, oauth, params, consumer, access_token.secret)
    if _expired(access_token):
        raise _refused("the access token has expired")
    return access_token


# ---------------------------------------------------------------- revocation

def delete_access_token(access_token):
    access_token_id = access_token.id  # delete() clears it
    with transaction.atomic():
        access_token.delete()
        tokens.revoke(access_token_id=access_token_id)


def delete_consumer(consumer):
    """The consumer, its request and access tokens, and every token made
    with them."""
    consumer_id = consumer.id
    with transaction.atomic():
        consumer.delete()
        tokens.revoke(consumer_id=consumer_id)
