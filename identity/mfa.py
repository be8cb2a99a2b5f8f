"""Multi-factor authentication rules (a user's multi_factor_auth_rules
option) and Keystone's auth receipts.

A rule is a list of authentication methods; a token needs every method of
one rule, given in one request or over several: a request that proves the
user but meets no rule is a 401 carrying a receipt (the
Openstack-Auth-Receipt header and its body), which a following request
sends back with the missing methods. As in Keystone, methods a rule names
that this cloud does not offer are left out of it, so that a rule naming
one cannot lock its user out."""
import json
import time

from cloud.errors import Unauthorized
from identity import user_options

RECEIPT_HEADER = "Openstack-Auth-Receipt"
RECEIPT_DURATION = 300  # seconds, Keystone's [receipt] expiration
RECEIPT_KIND = "receipt"  # first field of a receipt's payload: never a token's version


class ReceiptRequired(Exception):
    """The user is proven, but the methods used meet none of their rules."""

    def __init__(self, user, methods, rules):
        super().__init__("Insufficient auth methods")
        self.user, self.methods, self.rules = user, methods, rules


def unmet_rules(user, methods, offered):
    """The user's rules (only the methods `offered`) when `methods` meet
    none of them; None when they meet one or the user has no rules."""
    options = user.options or {}
    rules = options.get(user_options.MFA_RULES) or []
    if not rules or options.get(user_options.MFA_ENABLED) is False:
        return None
    used = set(methods)
    effective = [[method for method in rule if method in offered] for rule in rules]
    if any(used >= set(rule) for rule in effective):
        return None
    return [rule for rule in effective if rule]


def issue_receipt(user_id, methods):
    """(receipt id, issued at, expires at): the methods already proven for
    the user, encrypted with the token keys."""
    from identity.tokens import keys

    now = time.time()
    payload = [RECEIPT_KIND, user_id, list(methods), round(now, 6), round(now + RECEIPT_DURATION, 6)]
    receipt = keys.fernet().encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    return receipt, now, now + RECEIPT_DURATION


def receipt_methods(receipt, user_id):
    """The methods a receipt proves for user_id; 401 when it is forged,
    expired or another user's (Keystone's ReceiptNotFound)."""
    from cryptography.fernet import InvalidToken

    from identity.tokens import keys

    refused = Unauthorized(f"Could not find auth receipt: {receipt}.")
    try:
        payload = json.loads(keys.fernet().decrypt((receipt + "=" * (-len(receipt) % 4)).encode()))
    except (InvalidToken, ValueError, TypeError, UnicodeError):
        raise refused
    if not isinstance(payload, list) or len(payload) != 5 or payload[0] != RECEIPT_KIND:
        raise refused
    _, owner, methods, _, expires_at = payload
    if owner != user_id or expires_at <= time.time():
        raise refused
    return list(methods)
