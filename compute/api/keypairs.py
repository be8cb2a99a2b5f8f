"""Keypairs: a user's SSH public keys by name. Create without a public key
generates the pair and returns the private key once."""
import base64
import hashlib
import re

from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.db import IntegrityError, transaction
from rest_framework.response import Response

from cloud.errors import ApiError, BadRequest, Conflict, NotFound
from compute import quotas
from compute.api.base import ComputeView, nova_time_usec, paginate_from, require_string
from compute.models import KeyPair

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9 _.@-]+$")


def fingerprint_of(public_key):
    """MD5 fingerprint of an OpenSSH public key, as ssh-keygen -l -E md5 prints it."""
    parts = public_key.strip().split()
    if len(parts) < 2:
        raise ValueError("not an OpenSSH public key")
    blob = base64.b64decode(parts[1], validate=True)
    try:
        serialization.load_ssh_public_key(public_key.strip().encode())
    except UnsupportedAlgorithm as error:  # a key type this cloud cannot read is no key to it
        raise ValueError(f"unsupported key type {parts[0]!r}") from error
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def x509_fingerprint_of(certificate):
    """SHA-1 fingerprint of a PEM certificate's DER bytes, colon separated,
    as Nova gives x509 keypairs."""
    try:
        loaded = x509.load_pem_x509_certificate(certificate.strip().encode())
    except ValueError as error:
        raise ValueError("not a PEM x509 certificate") from error
    digest = loaded.fingerprint(hashes.SHA1()).hex()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def generate_key_pair(key_type="ssh", user_id=""):
    """(private key PEM, public key): an OpenSSH public key, or for x509 a
    self-signed certificate for the user (what Windows guests take for
    WinRM certificate login, as Nova makes it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    if key_type == "x509":
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id or "stratus")])
        now = datetime.now(timezone.utc)
        certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
        return private, certificate.public_bytes(serialization.Encoding.PEM).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode() + " Generated-by-Stratus"
    return private, public


def keypair_body(request, keypair, full=False):
    data = {"name": keypair.name, "public_key": keypair.public_key, "fingerprint": keypair.fingerprint}
    if request.api_version >= (2, 2):
        data["type"] = keypair.type
    if full:
        data.update({"user_id": keypair.user_id, "id": keypair.id, "created_at": nova_time_usec(keypair.created_at),
                     "deleted": False, "deleted_at": None, "updated_at": None})
    return data


def target_user(request, body=None):
    """Whose keypairs: the caller's, or (admin, 2.10+) the user_id asked for."""
    user_id = None
    if request.api_version >= (2, 10):
        user_id = (body or {}).get("user_id") or request.query_params.get("user_id")
        if user_id is not None:
            user_id = require_string(user_id, "user_id")
    if user_id and user_id != request.auth.user_id:
        if not request.auth.is_admin:
            raise ApiError("You are not authorized to perform the requested action.", status=403)
        return user_id
    return request.auth.user_id


class KeyPairListView(ComputeView):
    policy = {"get": "reader", "post": "member"}

    def get(self, request):
        keypairs = KeyPair.objects.filter(user_id=target_user(request))
        # Pages from 2.35 on, by name; the marker is a name of this user's.
        rows, next_url = paginate_from(request, (2, 35), keypairs, [("name", "asc")], marker_field="name",
                                       markers=keypairs)
        body = {"keypairs": [{"keypair": keypair_body(request, keypair)} for keypair in rows]}
        if next_url:
            body["keypairs_links"] = [{"rel": "next", "href": next_url}]
        return Response(body)

    def post(self, request):
        data = self.body("keypair")
        name = require_string(data.get("name"), "name")
        if not NAME_PATTERN.match(name):
            raise BadRequest("Invalid input for field 'name': keypair names may contain only letters, digits, "
                             "spaces, '_', '.', '@' and '-'.")
        key_type = data.get("type", "ssh") if request.api_version >= (2, 2) else "ssh"
        if key_type not in ("ssh", "x509"):
            raise BadRequest("Invalid input for field 'type': must be 'ssh' or 'x509'.")
        user_id = target_user(request, data)
        private_key = None
        public_key = data.get("public_key")
        if public_key is None:
            private_key, public_key = generate_key_pair(key_type, user_id)
        else:
            public_key = require_string(public_key, "public_key", max_length=16384)
        try:
            fingerprint = x509_fingerprint_of(public_key) if key_type == "x509" else fingerprint_of(public_key)
        except ValueError:
            expected = "a PEM x509 certificate" if key_type == "x509" else "a valid OpenSSH public key"
            raise BadRequest(f"Keypair data is invalid: 'public_key' is not {expected}.")
        try:
            with transaction.atomic():
                quotas.reserve_key_pair(user_id, request.auth.project_id)
                keypair = KeyPair.objects.create(user_id=user_id, name=name, type=key_type,
                                                 public_key=public_key, fingerprint=fingerprint)
        except IntegrityError:
            raise Conflict(f"Key pair '{name}' already exists.")
        body = keypair_body(request, keypair)
        body["user_id"] = user_id
        if private_key:
            body["private_key"] = private_key
        return Response({"keypair": body}, status=201 if request.api_version >= (2, 2) else 200)


class KeyPairView(ComputeView):
    policy = {"get": "reader", "delete": "member"}

    def find(self, request, name):
        keypair = KeyPair.objects.filter(user_id=target_user(request), name=name).first()
        if keypair is None:
            raise NotFound(f"Keypair {name} not found for user {target_user(request)}.")
        return keypair

    def get(self, request, name):
        return Response({"keypair": keypair_body(request, self.find(request, name), full=True)})

    def delete(self, request, name):
        self.find(request, name).delete()
        return Response(status=204 if request.api_version >= (2, 2) else 202)
