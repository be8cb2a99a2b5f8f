"""The `totp` authentication method, as Keystone's: the user proves a
time-based one-time passcode (RFC 6238: six digits, 30-second steps,
HMAC-SHA1) made from the base32 secret of one of their `totp` credentials
(/v3/credentials). The passcode of the step before also passes, for a
clock a little behind (Keystone's [totp] included_previous_windows)."""
import base64
import binascii
import time

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

TOTP_TYPE = "totp"
DIGITS, STEP = 6, 30
PREVIOUS_WINDOWS = 1


def _key(secret):
    """The bytes of a base32 secret (padding optional, as authenticator
    apps show it), or None when it is not base32."""
    text = secret.strip().replace(" ", "").upper()
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None


def passcode_matches(secret, passcode, now=None):
    key = _key(secret)
    if key is None or len(passcode) != DIGITS or not passcode.isdigit():
        return False
    totp = TOTP(key, DIGITS, SHA1(), STEP, enforce_key_length=False)
    now = time.time() if now is None else now
    for window in range(PREVIOUS_WINDOWS + 1):
        try:
            totp.verify(passcode.encode(), int(now) - window * STEP)
            return True
        except InvalidToken:
            continue
    return False


def user_passcode_matches(user, passcode):
    """Whether the passcode is right for one of the user's totp secrets."""
    from identity.models import Credential

    blobs = Credential.objects.filter(user=user, type=TOTP_TYPE).values_list("blob", flat=True)
    return any(passcode_matches(blob, passcode) for blob in blobs)
