"""Keystone's user options (`options` in a user's body): per-user
exceptions to the security compliance rules and the user's multi-factor
authentication rules. Admins set them through POST/PATCH /v3/users; a
null value removes an option; the body shows the options set."""
from rest_framework import serializers

IGNORE_CHANGE_PASSWORD_UPON_FIRST_USE = "ignore_change_password_upon_first_use"
IGNORE_PASSWORD_EXPIRY = "ignore_password_expiry"
IGNORE_LOCKOUT_FAILURE_ATTEMPTS = "ignore_lockout_failure_attempts"
IGNORE_USER_INACTIVITY = "ignore_user_inactivity"
LOCK_PASSWORD = "lock_password"
MFA_ENABLED = "multi_factor_auth_enabled"
MFA_RULES = "multi_factor_auth_rules"

BOOLEAN_OPTIONS = (IGNORE_CHANGE_PASSWORD_UPON_FIRST_USE, IGNORE_PASSWORD_EXPIRY, IGNORE_LOCKOUT_FAILURE_ATTEMPTS,
                   IGNORE_USER_INACTIVITY, LOCK_PASSWORD, MFA_ENABLED)
OPTIONS = (*BOOLEAN_OPTIONS, MFA_RULES)


def _checked_rules(rules):
    """A list of rules, each a non-empty list of distinct method names, no
    rule twice (Keystone's schema)."""
    problem = ("must be a list of rules, each a non-empty list of distinct authentication method names, "
               "no rule repeated")
    if not isinstance(rules, list):
        raise serializers.ValidationError({MFA_RULES: problem})
    seen = []
    for rule in rules:
        if not isinstance(rule, list) or not rule or not all(isinstance(m, str) and m for m in rule) \
                or len(set(rule)) != len(rule) or set(rule) in seen:
            raise serializers.ValidationError({MFA_RULES: problem})
        seen.append(set(rule))
    return rules


def checked(options):
    """The options of a request body, as given (None for those to remove);
    a validation error naming the option when one is unknown or ill-typed."""
    if not isinstance(options, dict):
        raise serializers.ValidationError("Expected an object of user options.")
    for name, value in options.items():
        if name not in OPTIONS:
            raise serializers.ValidationError({name: f"is not a user option (they are: {', '.join(OPTIONS)})"})
        if value is None:
            continue
        if name == MFA_RULES:
            _checked_rules(value)
        elif not isinstance(value, bool):
            raise serializers.ValidationError({name: "must be true, false or null"})
    return options


def merged(current, changes):
    """The options after a request: `changes` over `current`, nulls removed."""
    result = dict(current or {})
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def is_set(user, name):
    """Whether a boolean option is on for the user."""
    return (user.options or {}).get(name) is True
