"""Keystone's [security_compliance] password rules as Stratus settings:
off by default (the shared server), enforced by API servers started on the
same database with the rules set: lockout, history, strength regex,
expiry, minimum age, change upon first use and inactive users; and the
user options that exempt one user from them."""
import time
import uuid

import pytest

from tests.conftest import Api, free_port, start_api_server, stop_api_server
from tests.identity.test_api import admin_token, issue, password_auth, unique  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live

REGEX = r"^(?=.*\d)(?=.*[a-zA-Z]).{8,}$"
REGEX_DESCRIPTION = "at least 8 characters, with a letter and a digit"
LOCKOUT_ATTEMPTS, LOCKOUT_SECONDS = 3, 3
INACTIVE_DAYS = 90


def server_with(tmp_path_factory, **env):
    port = free_port()
    process = start_api_server(port, tmp_path_factory.mktemp("logs") / "api.log", **env)
    return Api(f"http://127.0.0.1:{port}"), process


@pytest.fixture(scope="module")
def strict(cloud, tmp_path_factory):
    """A server with lockout, history, strength regex, expiry and the
    disabling of inactive users on."""
    server, process = server_with(
        tmp_path_factory, STRATUS_LOCKOUT_FAILURE_ATTEMPTS=str(LOCKOUT_ATTEMPTS),
        STRATUS_LOCKOUT_DURATION=str(LOCKOUT_SECONDS), STRATUS_UNIQUE_LAST_PASSWORD_COUNT="2",
        STRATUS_PASSWORD_REGEX=REGEX, STRATUS_PASSWORD_REGEX_DESCRIPTION=REGEX_DESCRIPTION,
        STRATUS_PASSWORD_EXPIRES_DAYS="30", STRATUS_DISABLE_USER_ACCOUNT_DAYS_INACTIVE=str(INACTIVE_DAYS))
    yield server
    stop_api_server(process)


@pytest.fixture(scope="module")
def first_use(cloud, tmp_path_factory):
    """A server where admin-set passwords must be changed before use, and
    kept for a day once changed."""
    server, process = server_with(tmp_path_factory, STRATUS_CHANGE_PASSWORD_UPON_FIRST_USE="1",
                                  STRATUS_MINIMUM_PASSWORD_AGE="1")
    yield server
    stop_api_server(process)


def new_password():
    return f"pw{uuid.uuid4().hex}"


def create_user(server, admin_token, password, **options):
    body = {"name": unique("user"), "password": password}
    if options:
        body["options"] = options
    return server.post("/identity/v3/users", token=admin_token, json={"user": body})


def login(server, name, password):
    return issue(server, password_auth(name, password))


def change(server, user_id, token, original, password):
    return server.post(f"/identity/v3/users/{user_id}/password", token=token,
                       json={"user": {"original_password": original, "password": password}})


def test_rules_are_off_by_default(api, admin_token):
    config = api.get("/identity/v3/domains/default/config/security_compliance", token=admin_token)
    assert config.status_code == 200
    assert config.json() == {"config": {"password_regex": None, "password_regex_description": None}}
    password = "x"  # no strength rule
    user = create_user(api, admin_token, password).json()["user"]
    assert user["password_expires_at"] is None
    for _ in range(LOCKOUT_ATTEMPTS + 2):
        assert login(api, user["name"], "wrong").status_code == 401
    token = login(api, user["name"], password)
    assert token.status_code == 201  # never locked
    token = token.headers["X-Subject-Token"]
    assert change(api, user["id"], token, password, "y").status_code == 204
    token = login(api, user["name"], "y").headers["X-Subject-Token"]
    assert change(api, user["id"], token, "y", password).status_code == 204  # no history kept


def test_any_user_reads_the_strength_rule_and_only_it(strict, admin_token):
    password = new_password()
    user = create_user(strict, admin_token, password).json()["user"]
    token = login(strict, user["name"], password).headers["X-Subject-Token"]
    path = "/identity/v3/domains/default/config/security_compliance"
    assert strict.get(path, token=token).json() == {
        "config": {"password_regex": REGEX, "password_regex_description": REGEX_DESCRIPTION}}
    assert strict.get(f"{path}/password_regex_description", token=token).json() == {
        "config": {"password_regex_description": REGEX_DESCRIPTION}}
    assert strict.get(f"{path}/lockout_duration", token=token).status_code == 403
    domain = strict.post("/identity/v3/domains", token=admin_token,
                         json={"domain": {"name": unique("dom")}}).json()["domain"]
    assert strict.get(f"/identity/v3/domains/{domain['id']}/config/security_compliance",
                      token=admin_token).status_code == 403
    assert strict.patch(path, token=admin_token, json={"config": {"security_compliance": {
        "password_regex": ".*"}}}).status_code == 403
    assert strict.get(path).status_code == 401


def test_a_locked_out_user_gets_401_until_the_duration_passes(strict, admin_token):
    password = new_password()
    user = create_user(strict, admin_token, password).json()["user"]
    assert login(strict, user["name"], password).status_code == 201
    for _ in range(LOCKOUT_ATTEMPTS):
        assert login(strict, user["name"], "wrong").status_code == 401
    locked = login(strict, user["name"], password)  # the right password, refused
    assert locked.status_code == 401 and "locked" in locked.json()["error"]["message"]
    by_id = strict.post("/identity/v3/auth/tokens", json={"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"id": user["id"], "password": password}}}}})
    assert by_id.status_code == 401
    time.sleep(LOCKOUT_SECONDS + 0.5)
    assert login(strict, user["name"], password).status_code == 201
    # A success resets the count: fewer failures than the limit never lock.
    for _ in range(LOCKOUT_ATTEMPTS - 1):
        assert login(strict, user["name"], "wrong").status_code == 401
    assert login(strict, user["name"], password).status_code == 201
    for _ in range(LOCKOUT_ATTEMPTS - 1):
        assert login(strict, user["name"], "wrong").status_code == 401
    assert login(strict, user["name"], password).status_code == 201


def test_reusing_a_recent_password_is_a_400_naming_the_rule(strict, admin_token):
    first = new_password()
    user = create_user(strict, admin_token, first).json()["user"]
    token = login(strict, user["name"], first).headers["X-Subject-Token"]
    second = new_password()
    assert change(strict, user["id"], token, first, second).status_code == 204
    token = login(strict, user["name"], second).headers["X-Subject-Token"]
    for reused in (second, first):
        refused = change(strict, user["id"], token, second, reused)
        assert refused.status_code == 400, refused.text
        assert "unique_last_password_count" in refused.json()["error"]["message"]
        assert "user.password" in refused.json()["error"]["message"]
    assert login(strict, user["name"], second).status_code == 201  # nothing changed
    third = new_password()
    assert change(strict, user["id"], token, second, third).status_code == 204
    token = login(strict, user["name"], third).headers["X-Subject-Token"]
    assert change(strict, user["id"], token, third, first).status_code == 204  # two back: allowed again
    # An admin's reset is not held to the history, as in Keystone.
    assert strict.patch(f"/identity/v3/users/{user['id']}", token=admin_token,
                        json={"user": {"password": first}}).status_code == 200


def test_a_password_breaking_the_regex_is_a_400_with_its_description(strict, admin_token):
    weak = create_user(strict, admin_token, "short")
    assert weak.status_code == 400 and REGEX_DESCRIPTION in weak.json()["error"]["message"]
    assert "'password'" in weak.json()["error"]["message"]
    password = new_password()
    user = create_user(strict, admin_token, password).json()["user"]
    token = login(strict, user["name"], password).headers["X-Subject-Token"]
    refused = change(strict, user["id"], token, password, "lettersonly")
    assert refused.status_code == 400 and REGEX_DESCRIPTION in refused.json()["error"]["message"]
    assert login(strict, user["name"], password).status_code == 201
    reset = strict.patch(f"/identity/v3/users/{user['id']}", token=admin_token, json={"user": {"password": "1234"}})
    assert reset.status_code == 400 and REGEX_DESCRIPTION in reset.json()["error"]["message"]


def test_passwords_expire_after_the_configured_days(strict, admin_token, committed_db):
    from datetime import timedelta

    from django.utils import timezone

    from identity.models import User

    password = new_password()
    user = create_user(strict, admin_token, password).json()["user"]
    expires = User.objects.get(id=user["id"]).password_expires_at
    assert timedelta(days=29) < expires - timezone.now() <= timedelta(days=30)
    body = login(strict, user["name"], password).json()["token"]
    assert body["user"]["password_expires_at"] is not None
    User.objects.filter(id=user["id"]).update(password_expires_at=timezone.now() - timedelta(seconds=1))
    expired = login(strict, user["name"], password)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


def test_admin_set_passwords_must_be_changed_upon_first_use(first_use, admin_token):
    password = new_password()
    user = create_user(first_use, admin_token, password).json()["user"]
    expired = login(first_use, user["name"], password)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    # The user changes it, without a token (they cannot have one), the
    # expired password authenticating the change; then they may log in.
    changed = new_password()
    assert change(first_use, user["id"], None, "wrong", changed).status_code == 401
    assert change(first_use, "no-such-user", None, password, changed).status_code == 401
    assert change(first_use, user["id"], None, password, changed).status_code == 204
    token = login(first_use, user["name"], changed)
    assert token.status_code == 201
    # And must keep it for minimum_password_age (a day).
    refused = change(first_use, user["id"], token.headers["X-Subject-Token"], changed, new_password())
    assert refused.status_code == 400 and "minimum_password_age" in refused.json()["error"]["message"]


# ---------------------------------------------------------------- user options

def test_ignore_lockout_failure_attempts_keeps_the_user_from_being_locked(strict, admin_token):
    password = new_password()
    user = create_user(strict, admin_token, password, ignore_lockout_failure_attempts=True).json()["user"]
    assert user["options"] == {"ignore_lockout_failure_attempts": True}
    for _ in range(LOCKOUT_ATTEMPTS + 2):
        assert login(strict, user["name"], "wrong").status_code == 401
    assert login(strict, user["name"], password).status_code == 201
    # Without the option, the failures counted lock the account.
    for _ in range(LOCKOUT_ATTEMPTS):
        assert login(strict, user["name"], "wrong").status_code == 401
    assert strict.patch(f"/identity/v3/users/{user['id']}", token=admin_token, json={"user": {"options": {
        "ignore_lockout_failure_attempts": None}}}).json()["user"]["options"] == {}
    locked = login(strict, user["name"], password)
    assert locked.status_code == 401 and "locked" in locked.json()["error"]["message"]


def test_ignore_password_expiry_keeps_an_expired_password_working(strict, admin_token, committed_db):
    from datetime import timedelta

    from django.utils import timezone

    from identity.models import User

    password = new_password()
    exempt = create_user(strict, admin_token, password, ignore_password_expiry=True).json()["user"]
    assert exempt["password_expires_at"] is None  # password_expires_days does not apply to them
    other = create_user(strict, admin_token, password).json()["user"]
    User.objects.filter(id__in=[exempt["id"], other["id"]]).update(
        password_expires_at=timezone.now() - timedelta(seconds=1))
    assert login(strict, exempt["name"], password).status_code == 201
    assert login(strict, other["name"], password).status_code == 401


def test_ignore_change_password_upon_first_use_lets_the_user_in_at_once(first_use, admin_token):
    password = new_password()
    exempt = create_user(first_use, admin_token, password, ignore_change_password_upon_first_use=True)
    assert exempt.json()["user"]["password_expires_at"] is None
    assert login(first_use, exempt.json()["user"]["name"], password).status_code == 201
    # An admin's reset of another user's password still must be changed.
    user = create_user(first_use, admin_token, password).json()["user"]
    assert login(first_use, user["name"], password).status_code == 401
    assert first_use.patch(f"/identity/v3/users/{user['id']}", token=admin_token, json={"user": {
        "options": {"ignore_change_password_upon_first_use": True}, "password": password}}).status_code == 200
    assert login(first_use, user["name"], password).status_code == 201


def test_lock_password_refuses_the_users_own_change_but_not_an_admins(strict, admin_token):
    password = new_password()
    user = create_user(strict, admin_token, password, lock_password=True).json()["user"]
    token = login(strict, user["name"], password).headers["X-Subject-Token"]
    refused = change(strict, user["id"], token, password, new_password())
    assert refused.status_code == 400 and "lock_password" in refused.json()["error"]["message"]
    assert login(strict, user["name"], password).status_code == 201  # unchanged
    # The wrong original password is still the 401 it always is.
    assert change(strict, user["id"], token, "wrong", new_password()).status_code == 401
    reset = new_password()
    assert strict.patch(f"/identity/v3/users/{user['id']}", token=admin_token,
                        json={"user": {"password": reset}}).status_code == 200
    assert login(strict, user["name"], reset).status_code == 201


# ---------------------------------------------------------------- inactive users

def _last_active(user_id):
    from identity.models import User

    return User.objects.filter(id=user_id).values_list("last_active_at", flat=True).get()


def _set_last_active(user_id, days_ago):
    from datetime import timedelta

    from django.utils import timezone

    from identity.models import User

    User.objects.filter(id=user_id).update(last_active_at=timezone.localdate() - timedelta(days=days_ago))


def test_a_user_inactive_for_the_configured_days_is_refused_until_enabled(strict, admin_token, committed_db):
    from django.utils import timezone

    password = new_password()
    user = create_user(strict, admin_token, password).json()["user"]
    assert _last_active(user["id"]) == timezone.localdate()
    # One day short of the limit: let in, and the day of the authentication recorded.
    _set_last_active(user["id"], INACTIVE_DAYS - 1)
    token = login(strict, user["name"], password)
    assert token.status_code == 201
    assert _last_active(user["id"]) == timezone.localdate()
    _set_last_active(user["id"], INACTIVE_DAYS)
    refused = login(strict, user["name"], password)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "The request you have made requires authentication."
    # Nor by rescoping a token of theirs.
    rescope = strict.post("/identity/v3/auth/tokens", json={"auth": {"identity": {"methods": ["token"], "token": {
        "id": token.headers["X-Subject-Token"]}}}})
    assert rescope.status_code == 401
    # Shown as disabled, as Keystone shows them; enabling them again lets them in.
    assert strict.get(f"/identity/v3/users/{user['id']}", token=admin_token).json()["user"]["enabled"] is False
    assert strict.patch(f"/identity/v3/users/{user['id']}", token=admin_token,
                        json={"user": {"enabled": True}}).json()["user"]["enabled"] is True
    assert login(strict, user["name"], password).status_code == 201


def test_a_user_never_active_counts_from_their_creation(strict, admin_token, committed_db):
    from datetime import timedelta

    from django.utils import timezone

    from identity.models import User

    password = new_password()
    user = create_user(strict, admin_token, password).json()["user"]
    User.objects.filter(id=user["id"]).update(last_active_at=None,
                                              created_at=timezone.now() - timedelta(days=INACTIVE_DAYS + 1))
    assert login(strict, user["name"], password).status_code == 401


def test_ignore_user_inactivity_and_the_rule_off(strict, api, admin_token, committed_db):
    password = new_password()
    exempt = create_user(strict, admin_token, password, ignore_user_inactivity=True).json()["user"]
    _set_last_active(exempt["id"], INACTIVE_DAYS * 2)
    assert login(strict, exempt["name"], password).status_code == 201
    # The shared server has no inactivity rule: the same long-idle user is let in there.
    user = create_user(strict, admin_token, password).json()["user"]
    _set_last_active(user["id"], INACTIVE_DAYS * 2)
    assert login(strict, user["name"], password).status_code == 401
    assert login(api, user["name"], password).status_code == 201


@pytest.mark.django_db
def test_authentication_writes_the_active_day_at_most_once_a_day(cloud):
    import json
    from datetime import timedelta

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from identity.models import User
    from identity.passwords import hash_secret

    password = new_password()
    user = User.objects.create(name=unique("user"), domain_id="default", password=hash_secret(password),
                               last_active_at=timezone.localdate() - timedelta(days=3))
    client = Client()

    def day_writes():
        with CaptureQueriesContext(connection) as captured:
            response = client.post("/identity/v3/auth/tokens", data=json.dumps(password_auth(user.name, password)),
                                   content_type="application/json")
        assert response.status_code == 201, response.content
        return [query["sql"] for query in captured
                if query["sql"].startswith("UPDATE") and "last_active_at" in query["sql"]]

    assert len(day_writes()) == 1
    assert _last_active(user.id) == timezone.localdate()
    assert day_writes() == []  # the same day again: no statement
