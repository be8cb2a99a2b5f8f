"""Password rules (Keystone's [security_compliance]): account lockout after
failed password authentications, password expiry, history, minimum age,
strength regex, change upon first use and disabling inactive users. Every
rule is a setting and off by default, as in Keystone; a user's options
(identity.user_options) exempt that user from some of them."""
import re
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from cloud.errors import BadRequest, Forbidden, Unauthorized
from identity import user_options
from identity.models import DEFAULT_DOMAIN_ID, PasswordHistory, User
from identity.passwords import check_secret, hash_secret

# The options Keystone lets any user read through the domain config API
# (GET /v3/domains/default/config/security_compliance): what a client needs
# to pick an acceptable password.
READABLE = ("password_regex", "password_regex_description")


def readable_config(domain_id, option=None):
    if domain_id != DEFAULT_DOMAIN_ID:
        raise Forbidden("Reading security compliance information for any domain other than the default domain "
                        "is not allowed or supported.")
    if option is not None and option not in READABLE:
        raise Forbidden(f"Invalid domain specific configuration: Reading security compliance values other than "
                        f"{' and '.join(READABLE)} is not allowed. (option {option})")
    config = {"password_regex": settings.PASSWORD_REGEX,
              "password_regex_description": settings.PASSWORD_REGEX_DESCRIPTION}
    return {option: config[option]} if option else config


# ---------------------------------------------------------------- lockout

def _lockout_on():
    return settings.LOCKOUT_FAILURE_ATTEMPTS > 0


def refuse_if_locked(user):
    """401 while the user has failed lockout_failure_attempts times in a
    row and lockout_duration has not passed since the last failure."""
    if not _lockout_on() or user.failed_auth_count < settings.LOCKOUT_FAILURE_ATTEMPTS:
        return
    if user_options.is_set(user, user_options.IGNORE_LOCKOUT_FAILURE_ATTEMPTS):
        return  # failures are still counted, as in Keystone: they lock once the option is gone
    if user.failed_auth_at and timezone.now() < user.failed_auth_at + timedelta(seconds=settings.LOCKOUT_DURATION):
        raise Unauthorized(f"The account is locked for user: {user.id}.")


def _set_failures(user, **values):
    # A plain UPDATE: the failure count takes no permission away, so it
    # skips the revocation and summary bookkeeping of User's queryset.
    models.QuerySet.update(User.objects.filter(pk=user.pk), **values)


def password_failed(user):
    if not _lockout_on():
        return
    now = timezone.now()
    expired = user.failed_auth_at and now >= user.failed_auth_at + timedelta(seconds=settings.LOCKOUT_DURATION)
    # After a lockout has run out, counting starts again.
    _set_failures(user, failed_auth_count=1 if expired else F("failed_auth_count") + 1, failed_auth_at=now)


def password_succeeded(user):
    if user.failed_auth_count:
        _set_failures(user, failed_auth_count=0, failed_auth_at=None)


def refuse_if_expired(user):
    if user_options.is_set(user, user_options.IGNORE_PASSWORD_EXPIRY):
        return
    if user.password_expires_at and user.password_expires_at <= timezone.now():
        raise Unauthorized(f"The password is expired and needs to be changed for user: {user.id}.")


# ---------------------------------------------------------------- inactive users

def inactive(user):
    """Whether the user has not authenticated for
    disable_user_account_days_inactive days (counted from the day they were
    made when they never have): Keystone then treats them as disabled until
    an admin enables them again."""
    days = settings.DISABLE_USER_ACCOUNT_DAYS_INACTIVE
    if days <= 0 or not user.enabled or user_options.is_set(user, user_options.IGNORE_USER_INACTIVITY):
        return False
    last_active = user.last_active_at or timezone.localdate(user.created_at)
    return (timezone.localdate() - last_active).days >= days


def mark_active(user):
    """Records that the user authenticated today. Written at most once a
    day (the day is compared on the row already read), so authentication
    costs no extra statement on other requests; a plain UPDATE, as the day
    changes nothing a token or summary shows."""
    today = timezone.localdate()
    if user.last_active_at != today:
        models.QuerySet.update(User.objects.filter(pk=user.pk), last_active_at=today)
        user.last_active_at = today


# ---------------------------------------------------------------- setting a password

def check_strength(password, field="password"):
    """400 naming the field and the rule's description when the password
    does not match password_regex."""
    if settings.PASSWORD_REGEX and not re.match(settings.PASSWORD_REGEX, password):
        description = settings.PASSWORD_REGEX_DESCRIPTION or f"it must match {settings.PASSWORD_REGEX}"
        raise BadRequest(f"Invalid input for field '{field}': the password does not meet the requirements: "
                         f"{description}")


def _expiry(now, by_admin, options):
    def exempt(name):
        return (options or {}).get(name) is True

    if by_admin and settings.CHANGE_PASSWORD_UPON_FIRST_USE and \
            not exempt(user_options.IGNORE_CHANGE_PASSWORD_UPON_FIRST_USE):
        return now  # the user must change it before using it
    if settings.PASSWORD_EXPIRES_DAYS > 0 and not exempt(user_options.IGNORE_PASSWORD_EXPIRY):
        return now + timedelta(days=settings.PASSWORD_EXPIRES_DAYS)
    return None


def admin_set_fields(password, options):
    """The User fields for a password an admin sets (create or update) for
    a user with these options: its hash and expiry. History is not enforced
    here, as in Keystone."""
    if not password:
        return {"password": "", "password_expires_at": None}
    check_strength(password)
    return {"password": hash_secret(password),
            "password_expires_at": _expiry(timezone.now(), by_admin=True, options=options)}


def remember(user):
    """Records the user's current password in their history, keeping as
    many as unique_last_password_count needs (one at least, for the
    minimum age)."""
    if not user.password:
        return
    PasswordHistory.objects.create(user=user, password=user.password)
    keep = max(settings.UNIQUE_LAST_PASSWORD_COUNT, 1)
    stale = PasswordHistory.objects.filter(user=user).values_list("id", flat=True)[keep:]
    PasswordHistory.objects.filter(id__in=list(stale)).delete()


def change_own_password(user, original, password):
    """POST /v3/users/{id}/password: the user's own change, with every
    rule; the original password authenticates it, lockout included."""
    if user is not None:
        refuse_if_locked(user)
    if not check_secret(original, user.password if user else "") or not user.enabled:
        if user is not None:
            password_failed(user)
        raise Unauthorized("The request you have made requires authentication.")
    if user_options.is_set(user, user_options.LOCK_PASSWORD):
        raise BadRequest("You cannot change your password at this time due to password policy disallowing password "
                         "changes (the user's lock_password option). Please contact your administrator to reset "
                         "your password.")
    check_strength(password, "user.password")
    history = list(PasswordHistory.objects.filter(user=user)[:max(settings.UNIQUE_LAST_PASSWORD_COUNT, 1)])
    now = timezone.now()
    current = history[0] if history and history[0].password == user.password else None
    expired = user.password_expires_at is not None and user.password_expires_at <= now
    # An expired password (one an admin set, to be changed upon first use) may always be replaced.
    if settings.MINIMUM_PASSWORD_AGE > 0 and current and not expired and \
            now < current.created_at + timedelta(days=settings.MINIMUM_PASSWORD_AGE):
        raise BadRequest(f"Invalid input for field 'user.password': you cannot change your password at this time "
                         f"due to minimum_password_age: once changed, a password must be used for "
                         f"{settings.MINIMUM_PASSWORD_AGE} day(s).")
    if settings.UNIQUE_LAST_PASSWORD_COUNT > 0:
        # The current password first (one set before history was kept has no entry).
        recent = [user.password] + [entry.password for entry in history if entry.password != user.password]
        if any(check_secret(password, encoded) for encoded in recent[:settings.UNIQUE_LAST_PASSWORD_COUNT]):
            raise BadRequest(f"Invalid input for field 'user.password': the new password cannot be identical to "
                             f"one of the last {settings.UNIQUE_LAST_PASSWORD_COUNT} passwords "
                             f"(unique_last_password_count).")
    with transaction.atomic():  # the password, its history and the revocation of its tokens, together
        user.password = hash_secret(password)
        user.password_expires_at = _expiry(now, by_admin=False, options=user.options)
        user.failed_auth_count, user.failed_auth_at = 0, None
        user.save(update_fields=["password", "password_expires_at", "failed_auth_count", "failed_auth_at"])
        remember(user)
