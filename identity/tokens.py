"""Fernet tokens: the token carries everything a service needs to know
about the caller (user, scope, role names, expiry, audit ids), signed and
encrypted, so validating one costs no database round trip. Revocations are
the only shared state: a list held in each process, reloaded when a version
number in Redis changes."""
import json
import os
import threading
import time
import uuid
from base64 import urlsafe_b64encode
from datetime import datetime, timezone as dt_timezone

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils import timezone

from cloud import generations
from cloud.auth import Credentials

PAYLOAD_VERSION = 4


# ---------------------------------------------------------------- keys

class KeyRepository:
    """A directory of numbered Fernet keys, as Keystone keeps them: the
    highest number is the primary (it encrypts), 0 is staged (next primary),
    the others still decrypt older tokens."""

    def __init__(self, path):
        self.path = path
        self._keys = None
        self._mtime = None
        self._lock = threading.Lock()

    def _numbers(self):
        return sorted(int(name) for name in os.listdir(self.path) if name.isdigit())

    def setup(self):
        """Creates the staged and primary keys when there are none."""
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        if not self._numbers():
            self._write(0)
            self._write(1)

    def rotate(self):
        """Staged key becomes primary, a new staged key is made, and keys past
        FERNET_MAX_ACTIVE_KEYS are removed (oldest first). Returns the numbers."""
        self.setup()
        numbers = self._numbers()
        new_primary = numbers[-1] + 1
        os.replace(os.path.join(self.path, "0"), os.path.join(self.path, str(new_primary)))
        self._write(0)
        numbers = self._numbers()
        secondaries = [n for n in numbers if n not in (0, new_primary)]
        excess = len(numbers) - max(settings.FERNET_MAX_ACTIVE_KEYS, 2)
        for number in secondaries[:max(excess, 0)]:
            os.remove(os.path.join(self.path, str(number)))
        return self._numbers()

    def _write(self, number):
        tmp = os.path.join(self.path, f".{number}.tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(Fernet.generate_key())
        os.replace(tmp, os.path.join(self.path, str(number)))

    def fernet(self):
        """MultiFernet with the primary first; reloaded when the directory
        changes (a rotation by another process)."""
        mtime = os.stat(self.path).st_mtime_ns
        if self._keys is None or mtime != self._mtime:
            with self._lock:
                numbers = self._numbers()
                if not numbers:
                    raise RuntimeError(f"no Fernet keys in {self.path}: run `manage.py bootstrap`")
                order = [numbers[-1]] + [n for n in reversed(numbers[:-1])]
                keys = []
                for number in order:
                    with open(os.path.join(self.path, str(number)), "rb") as handle:
                        keys.append(Fernet(handle.read().strip()))
                self._keys, self._mtime = MultiFernet(keys), mtime
        return self._keys


keys = KeyRepository(str(settings.FERNET_KEY_DIR))


# ---------------------------------------------------------------- revocations

# The attribute a revocation event is filed under: its audit id, else the
# first of these it names (every event names one: RevocationEvent's check).
INDEXED_ATTRIBUTES = ("user_id", "project_id", "domain_id", "application_credential_id", "trust_id",
                      "access_token_id", "consumer_id")


def _live_revocations():
    """Every revocation event younger than the longest token life, as
    (attributes, audit id, issued before), filed by (attribute, value) so a
    validation looks only at the events that could match its token."""
    from identity.models import RevocationEvent

    horizon = timezone.now() - max_token_life()
    index = {}
    for event in RevocationEvent.objects.filter(issued_before__gte=horizon):
        attributes = {name: getattr(event, name) for name in RevocationEvent.MATCHED_ATTRIBUTES if getattr(event, name)}
        if event.audit_id:
            key = ("audit_id", event.audit_id)
        else:
            key = next((name, attributes[name]) for name in INDEXED_ATTRIBUTES if name in attributes)
        index.setdefault(key, []).append((attributes, event.audit_id, event.issued_before.timestamp()))
    return index


# Held in memory and reloaded when the `revocations` generation counter
# moves (another process revoked); read from the database while Redis is down.
revocations = generations.Derived("revocations", _live_revocations)


def revocations_changed():
    """Tell every process to reload, once the writing transaction commits."""
    generations.changed("revocations")


def max_token_life():
    from datetime import timedelta

    return timedelta(seconds=settings.TOKEN_EXPIRATION)


def revoke(issued_before=None, **attributes):
    """Revokes matching tokens (user_id=..., project_id=..., audit_id=...;
    system=True narrows to system-scoped tokens). A domain_id reaches the
    tokens scoped to the domain, to its projects and of its users."""
    revoke_all([attributes], issued_before)


def revoke_all(events, issued_before=None):
    """Writes several revocations at once (dicts of attributes, as revoke()
    takes). Each must name at least one id: an event without any would
    match, and revoke, every token of the cloud."""
    from identity.models import RevocationEvent

    if not events:
        return
    issued_before = issued_before or timezone.now()
    rows = []
    for attributes in events:
        unknown = set(attributes) - set(RevocationEvent.MATCHED_ATTRIBUTES) - {"audit_id"}
        if unknown:
            raise TypeError(f"unknown revocation attributes: {', '.join(sorted(unknown))}")
        if not any(value for name, value in attributes.items() if name != "system"):
            raise ValueError(f"a revocation must name what it revokes, got {attributes!r}")
        rows.append(RevocationEvent(issued_before=issued_before, **attributes))
    RevocationEvent.objects.bulk_create(rows)
    revocations_changed()


def _matches(payload, name, value):
    if name == "domain_id":
        return value in (payload["domain_id"], payload["user_domain_id"], payload["project_domain_id"])
    oauth1 = payload["oauth1"]
    if name == "access_token_id":
        return bool(oauth1) and oauth1[0] == value
    if name == "consumer_id":
        return bool(oauth1) and oauth1[1] == value
    trust = payload["trust"]
    if name == "trust_id":
        return bool(trust) and trust[0] == value
    if name == "user_id" and trust:
        # As Keystone's: what revokes the trustor's or the trustee's tokens
        # revokes the tokens of their trusts too, whoever the token acts as.
        return value in (payload["user_id"], trust[1], trust[2])
    return payload.get(name) == value


def _index_keys(payload, audit_ids):
    """The (attribute, value) keys under which an event matching this token
    would be filed (see _matches for what each attribute matches)."""
    trust = payload["trust"]
    keys = [("audit_id", audit_id) for audit_id in audit_ids]
    keys += [("user_id", user_id) for user_id in {payload["user_id"], *(trust[1:3] if trust else ())}]
    keys += [("domain_id", domain_id) for domain_id in
             {payload["domain_id"], payload["user_domain_id"], payload["project_domain_id"]} if domain_id]
    keys += [("project_id", payload["project_id"]), ("application_credential_id", payload["application_credential_id"])]
    if trust:
        keys.append(("trust_id", trust[0]))
    if payload["oauth1"]:
        keys += [("access_token_id", payload["oauth1"][0]), ("consumer_id", payload["oauth1"][1])]
    return keys


def is_revoked(payload, audit_ids, issued_at):
    index = revocations.get()
    if not index:
        return False
    candidates = [event for key in _index_keys(payload, audit_ids) for event in index.get(key, ())]
    for attributes, audit_id, issued_before in candidates:
        if issued_at > issued_before:
            continue
        if audit_id and audit_id not in audit_ids:
            continue
        if all(_matches(payload, name, value) for name, value in attributes.items()):
            return True
    return False


# ---------------------------------------------------------------- tokens

def new_audit_id():
    return urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


# The payload is a JSON list of these fields, in this order, the version
# first. Version 2 added the project's domain, system scope and
# is_admin_project; version 3 the trust ([id, trustor id, trustee id,
# impersonation] or null); version 4 the OS-OAUTH1 access token ([access
# token id, consumer id] or null). Versions 2 and 3 still validate (they
# have neither); tokens of any other version are invalid.
PAYLOAD_FIELDS = (
    "version", "user_id", "user_domain_id", "methods", "project_id", "project_domain_id", "domain_id", "system",
    "roles", "issued_at", "expires_at", "audit_ids", "application_credential_id", "unrestricted",
    "is_admin_project", "trust", "oauth1",
)
V3_FIELDS = PAYLOAD_FIELDS[:-1]
V2_FIELDS = PAYLOAD_FIELDS[:-2]


def issue_token(*, user_id, user_domain_id, methods, project_id=None, project_domain_id=None, domain_id=None,
                system=False, roles=(), expires_at=None, audit_ids=None, application_credential_id=None,
                unrestricted=True, is_admin_project=False, trust=None, oauth1=None):
    """A new token string and the Credentials it stands for. `system` is a
    token scoped to the whole cloud (Keystone's {"system": {"all": true}});
    `is_admin_project` marks a token scoped to the admin project; `trust`
    is (trust id, trustor id, trustee id, impersonation) for a token
    scoped to a trust; `oauth1` is (access token id, consumer id) for a
    token made with an OS-OAUTH1 access token."""
    now = time.time()
    expires = now + settings.TOKEN_EXPIRATION
    if expires_at is not None:  # a rescoped token or an expiring credential ends no later
        expires = min(expires, expires_at.timestamp())
    payload = {
        "version": PAYLOAD_VERSION, "user_id": user_id, "user_domain_id": user_domain_id, "methods": list(methods),
        "project_id": project_id, "project_domain_id": project_domain_id if project_id else None,
        "domain_id": domain_id, "system": bool(system), "roles": list(roles),
        "issued_at": round(now, 6), "expires_at": round(expires, 6), "audit_ids": list(audit_ids or [new_audit_id()]),
        "application_credential_id": application_credential_id, "unrestricted": unrestricted,
        "is_admin_project": bool(is_admin_project and project_id), "trust": list(trust) if trust else None,
        "oauth1": list(oauth1) if oauth1 else None,
    }
    fields = [payload[name] for name in PAYLOAD_FIELDS]
    token = keys.fernet().encrypt(json.dumps(fields, separators=(",", ":")).encode()).decode().rstrip("=")
    return token, _credentials(token, payload)


def _credentials(token, payload):
    return Credentials(
        token=token, user_id=payload["user_id"], user_domain_id=payload["user_domain_id"],
        methods=tuple(payload["methods"]), project_id=payload["project_id"],
        project_domain_id=payload["project_domain_id"], domain_id=payload["domain_id"], system=payload["system"],
        roles=tuple(payload["roles"]),
        issued_at=datetime.fromtimestamp(payload["issued_at"], dt_timezone.utc),
        expires_at=datetime.fromtimestamp(payload["expires_at"], dt_timezone.utc),
        audit_ids=tuple(payload["audit_ids"]), application_credential_id=payload["application_credential_id"],
        unrestricted=payload["unrestricted"], is_admin_project=payload["is_admin_project"],
        access_rules=access_rules_of(payload["application_credential_id"]),
        trust=tuple(payload["trust"]) if payload["trust"] else None,
        extra={"oauth1": tuple(payload["oauth1"])} if payload["oauth1"] else {},
    )


def access_rules_of(application_credential_id):
    """An application credential cannot change once made, so its rules are
    read once per token."""
    if not application_credential_id:
        return None
    from identity import summaries

    return summaries.access_rules(application_credential_id)


# Tokens this process has decrypted, with what they carry and the keys
# that decrypted them: a token never changes, so until the keys do (a
# rotation may retire its key) only its expiry and the revocations are
# checked again. Only valid tokens are kept: garbage cannot fill it.
_validated = {}
VALIDATED_MAX = 10000


def validate_token(token):
    """Credentials for a valid token; None when it is malformed, tampered
    with, expired or revoked."""
    fernet = keys.fernet()
    known = _validated.get(token)
    if known is None or known[0] is not fernet:
        known = _decrypt(fernet, token)
        if known is None:
            return None
        if len(_validated) >= VALIDATED_MAX:
            _validated.clear()
        _validated[token] = known
    _, payload, credentials = known
    if payload["expires_at"] <= time.time():
        return None
    if is_revoked(payload, payload["audit_ids"], payload["issued_at"]):
        return None
    return credentials


def _decrypt(fernet, token):
    try:
        padded = token + "=" * (-len(token) % 4)
        fields = json.loads(fernet.decrypt(padded.encode()))
    except (InvalidToken, ValueError, TypeError, UnicodeError):
        return None
    if not isinstance(fields, list) or not fields:
        return None
    if fields[0] == 2 and len(fields) == len(V2_FIELDS):
        fields = [PAYLOAD_VERSION, *fields[1:], None, None]  # issued before trusts: none
    elif fields[0] == 3 and len(fields) == len(V3_FIELDS):
        fields = [PAYLOAD_VERSION, *fields[1:], None]  # issued before OS-OAUTH1: none
    if len(fields) != len(PAYLOAD_FIELDS) or fields[0] != PAYLOAD_VERSION:
        return None
    payload = dict(zip(PAYLOAD_FIELDS, fields))
    return fernet, payload, _credentials(token, payload)
