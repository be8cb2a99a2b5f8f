"""Hashes of cloud users' passwords and application-credential secrets."""
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher


class _Hasher(PBKDF2PasswordHasher):
    @property
    def iterations(self):
        return settings.PASSWORD_HASH_ITERATIONS


_hasher = _Hasher()
# Compared against when the user does not exist, so that an unknown user
# takes as long to refuse as a wrong password.
_DUMMY = None


def hash_secret(raw):
    return _hasher.encode(raw, _hasher.salt())


def check_secret(raw, encoded):
    global _DUMMY
    if not encoded:
        if _DUMMY is None:
            _DUMMY = hash_secret("dummy")
        _hasher.verify(raw or "", _DUMMY)
        return False
    try:
        return _hasher.verify(raw, encoded)
    except (ValueError, TypeError):
        return False
