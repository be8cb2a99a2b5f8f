"""Keystone's user options on the wire: set by admins on POST/PATCH
/v3/users and `openstack user set`, shown in the user's body, a null
removing one; unknown or ill-typed options are a 400 naming the option and
change nothing. (What each option does: test_security_compliance.py and
test_mfa.py.)"""
import pytest

from tests.identity.test_api import admin_token, issue, make_user, password_auth, unique  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live


def user_path(user_id):
    return f"/identity/v3/users/{user_id}"


def test_options_are_set_merged_and_removed(api, admin_token):
    created = api.post("/identity/v3/users", token=admin_token, json={"user": {
        "name": unique("user"), "options": {"ignore_password_expiry": True, "lock_password": False}}})
    assert created.status_code == 201, created.text
    user = created.json()["user"]
    assert user["options"] == {"ignore_password_expiry": True, "lock_password": False}
    changed = api.patch(user_path(user["id"]), token=admin_token, json={"user": {"options": {
        "lock_password": None, "multi_factor_auth_rules": [["password", "totp"], ["application_credential"]]}}})
    assert changed.status_code == 200, changed.text
    expected = {"ignore_password_expiry": True,
                "multi_factor_auth_rules": [["password", "totp"], ["application_credential"]]}
    assert changed.json()["user"]["options"] == expected
    assert api.get(user_path(user["id"]), token=admin_token).json()["user"]["options"] == expected
    listed = api.get(f"/identity/v3/users?name={user['name']}", token=admin_token).json()["users"]
    assert listed[0]["options"] == expected
    # A change of other fields leaves the options alone.
    api.patch(user_path(user["id"]), token=admin_token, json={"user": {"description": "x"}})
    assert api.get(user_path(user["id"]), token=admin_token).json()["user"]["options"] == expected
    # A user without options shows an empty object, as Keystone.
    plain = api.post("/identity/v3/users", token=admin_token, json={"user": {"name": unique("user")}})
    assert plain.json()["user"]["options"] == {}


@pytest.mark.parametrize("options, field", [
    ({"no_such_option": True}, "options.no_such_option"),
    ({"lock_password": "true"}, "options.lock_password"),
    ({"ignore_lockout_failure_attempts": 1}, "options.ignore_lockout_failure_attempts"),
    ({"multi_factor_auth_enabled": "yes"}, "options.multi_factor_auth_enabled"),
    ({"multi_factor_auth_rules": "password"}, "options.multi_factor_auth_rules"),
    ({"multi_factor_auth_rules": [[]]}, "options.multi_factor_auth_rules"),
    ({"multi_factor_auth_rules": [["password", "password"]]}, "options.multi_factor_auth_rules"),
    ({"multi_factor_auth_rules": [["password"], ["password"]]}, "options.multi_factor_auth_rules"),
    ({"multi_factor_auth_rules": [["password", 3]]}, "options.multi_factor_auth_rules"),
    ({"multi_factor_auth_rules": ["password"]}, "options.multi_factor_auth_rules"),
    (["lock_password"], "options"),
])
def test_bad_options_are_a_400_naming_the_option_and_change_nothing(api, admin_token, options, field):
    user = api.post("/identity/v3/users", token=admin_token, json={"user": {
        "name": unique("user"), "options": {"lock_password": True}}}).json()["user"]
    refused = api.patch(user_path(user["id"]), token=admin_token, json={"user": {"options": options}})
    assert refused.status_code == 400, refused.text
    assert f"'{field}'" in refused.json()["error"]["message"]
    assert api.get(user_path(user["id"]), token=admin_token).json()["user"]["options"] == {"lock_password": True}
    name = unique("user")
    assert api.post("/identity/v3/users", token=admin_token, json={"user": {
        "name": name, "options": options}}).status_code == 400
    assert api.get(f"/identity/v3/users?name={name}", token=admin_token).json()["users"] == []


def test_users_cannot_set_their_own_options(api, make_user):
    user_id, name, password, _, project = make_user()
    token = issue(api, password_auth(name, password, project)).headers["X-Subject-Token"]
    refused = api.patch(user_path(user_id), token=token, json={"user": {"options": {
        "ignore_lockout_failure_attempts": True}}})
    assert refused.status_code == 403
    assert api.get(user_path(user_id), token=token).json()["user"]["options"] == {}


def test_the_cli_sets_and_unsets_each_option(cloud):
    name = unique("user")
    user_id = cloud.openstack("user", "create", name, "--ignore-password-expiry", "-f", "json")["id"]
    cloud.openstack("user", "set", "--ignore-lockout-failure-attempts", "--ignore-change-password-upon-first-use",
                    "--enable-lock-password", "--enable-multi-factor-auth",
                    "--multi-factor-auth-rule", "password,totp", "--multi-factor-auth-rule", "application_credential",
                    name)
    shown = cloud.openstack("user", "show", name, "-f", "json")
    assert shown["id"] == user_id
    assert shown["options"] == {
        "ignore_password_expiry": True, "ignore_lockout_failure_attempts": True,
        "ignore_change_password_upon_first_use": True, "lock_password": True, "multi_factor_auth_enabled": True,
        "multi_factor_auth_rules": [["password", "totp"], ["application_credential"]]}
    cloud.openstack("user", "set", "--no-ignore-lockout-failure-attempts", "--no-ignore-password-expiry",
                    "--no-ignore-change-password-upon-first-use", "--disable-lock-password",
                    "--disable-multi-factor-auth", name)
    options = cloud.openstack("user", "show", name, "-f", "json")["options"]
    assert options == {"ignore_password_expiry": False, "ignore_lockout_failure_attempts": False,
                       "ignore_change_password_upon_first_use": False, "lock_password": False,
                       "multi_factor_auth_enabled": False,
                       "multi_factor_auth_rules": [["password", "totp"], ["application_credential"]]}
