"""Fernet tokens in process: key rotation, expiry, and validation without
a database round trip."""
from datetime import datetime, timedelta, timezone

import pytest

from identity import tokens


@pytest.fixture
def key_repository(tmp_path, monkeypatch, settings):
    settings.FERNET_MAX_ACTIVE_KEYS = 3
    repository = tokens.KeyRepository(str(tmp_path / "keys"))
    repository.setup()
    monkeypatch.setattr(tokens, "keys", repository)
    return repository


def issue(**overrides):
    fields = dict(user_id="u1", user_domain_id="default", methods=["password"], project_id="p1", roles=["member"])
    fields.update(overrides)
    return tokens.issue_token(**fields)[0]


@pytest.mark.django_db
def test_tokens_survive_rotations_until_their_key_is_retired(key_repository):
    token = issue()
    assert tokens.validate_token(token).project_id == "p1"
    key_repository.rotate()  # the old primary is now a secondary: still valid
    assert tokens.validate_token(token) is not None
    fresh = issue()
    key_repository.rotate()  # three keys kept (staged, primary, one secondary): the first primary is gone
    assert tokens.validate_token(token) is None
    assert tokens.validate_token(fresh) is not None


@pytest.mark.django_db
def test_an_expired_token_is_refused(key_repository):
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    assert tokens.validate_token(issue(expires_at=past)) is None


@pytest.mark.django_db
def test_validation_reads_no_database_once_revocations_are_loaded(key_repository, django_assert_num_queries):
    token = issue()
    tokens.validate_token(token)
    with django_assert_num_queries(0):
        credentials = tokens.validate_token(token)
    assert credentials.roles == ("member",) and credentials.user_id == "u1"


@pytest.mark.django_db
def test_revocation_is_seen_by_the_next_validation(key_repository, django_capture_on_commit_callbacks):
    token = issue(user_id="u-revoked")
    other = issue(user_id="u-kept")
    with django_capture_on_commit_callbacks(execute=True):
        tokens.revoke(user_id="u-revoked")
    assert tokens.validate_token(token) is None
    assert tokens.validate_token(other) is not None
    # A token issued after the revocation is valid.
    assert tokens.validate_token(issue(user_id="u-revoked")) is not None


@pytest.mark.django_db
def test_tokens_issued_before_trusts_still_validate_and_others_do_not(key_repository):
    """A version 2 payload (no trust field) is read as one without a trust;
    any other version or length is refused."""
    import json
    import time

    now = time.time()
    v2 = [2, "u1", "default", ["password"], "p1", "default", None, False, ["member"], now, now + 600, ["audit"],
          None, True, False]

    def token_of(fields):
        return key_repository.fernet().encrypt(json.dumps(fields).encode()).decode().rstrip("=")

    credentials = tokens.validate_token(token_of(v2))
    assert credentials is not None and credentials.project_id == "p1" and credentials.trust is None
    assert credentials.roles == ("member",)
    assert tokens.validate_token(token_of([1, *v2[1:]])) is None
    assert tokens.validate_token(token_of([2, *v2[1:], None])) is None  # a version 2 payload is 15 fields
    assert tokens.validate_token(token_of([3, *v2[1:]])) is None  # a version 3 one is 16
