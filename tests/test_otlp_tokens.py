"""projects/tokens.py: the /v3/auth/token ingest token, against real keys in the database."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from projects.auth import issue_session_jwt
from projects.keys import issue_key, revoke_key
from projects.tokens import (
    TOKEN_AUDIENCE,
    IngestTokenExpired,
    IngestTokenInvalid,
    IngestTokenRevoked,
    decode_ingest_token,
    issue_ingest_token,
    verify_ingest_token,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(project):
    return issue_key(project=project, label="agent")


def test_a_token_names_the_project_and_key_never_the_key_itself(key, project):
    token, expires_at = issue_ingest_token(key.api_key)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["pid"] == str(project.id) and claims["kid"] == str(key.api_key.pk)
    assert key.raw not in token and key.raw not in str(claims)
    assert claims["aud"] == TOKEN_AUDIENCE
    grant, last_used = verify_ingest_token(token)
    assert (grant.project_id, grant.key_id) == (project.id, key.api_key.pk)
    assert grant.expires_at == expires_at
    assert last_used is None


def test_a_token_lives_at_least_30_days(key):
    token, expires_at = issue_ingest_token(key.api_key)
    assert expires_at - datetime.now(UTC) >= timedelta(days=30) - timedelta(seconds=2)
    assert expires_at.tzinfo is UTC
    decode_ingest_token(token)  # still good now


def test_revoking_the_key_stops_its_tokens_at_once(key, django_assert_num_queries):
    token, _ = issue_ingest_token(key.api_key)
    with django_assert_num_queries(1):
        verify_ingest_token(token)
    revoke_key(key.api_key)
    with pytest.raises(IngestTokenRevoked), django_assert_num_queries(1):
        verify_ingest_token(token)
    # The signature alone still checks out: the key check is what refuses it.
    assert decode_ingest_token(token).key_id == key.api_key.pk


def test_a_deleted_key_or_one_of_another_project_is_refused(key, other_project):
    token, _ = issue_ingest_token(key.api_key)
    key.api_key.project = other_project
    key.api_key.save()
    with pytest.raises(IngestTokenRevoked):
        verify_ingest_token(token)
    key.api_key.delete()
    with pytest.raises(IngestTokenRevoked):
        verify_ingest_token(token)


def test_an_expired_token_says_so(key):
    token, _ = issue_ingest_token(key.api_key, ttl=timedelta(seconds=-1))
    with pytest.raises(IngestTokenExpired) as caught:
        verify_ingest_token(token)
    assert caught.value.status_code == 401
    assert "expired" in str(caught.value.detail)


def test_last_used_is_returned_for_touch_key(key):
    used = datetime(2026, 11, 1, tzinfo=UTC)
    key.api_key.last_used_at = used
    key.api_key.save()
    token, _ = issue_ingest_token(key.api_key)
    assert verify_ingest_token(token)[1] == used


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-20] + ("A" if t[-20] != "A" else "B") + t[-19:],  # signature changed
        lambda t: t.split(".")[0] + ".e30." + t.split(".")[2],  # claims replaced
        lambda t: "",
        lambda t: "not-a-jwt",
        lambda t: "Bearer " + t,
    ],
)
def test_mangled_tokens_are_invalid_not_errors(key, mangle):
    token, _ = issue_ingest_token(key.api_key)
    with pytest.raises(IngestTokenInvalid) as caught:
        verify_ingest_token(mangle(token))
    assert caught.value.status_code == 401


def test_other_tokens_signed_with_our_secret_are_not_ingest_tokens(key, project, settings):
    # A v2 session JWT: another derived secret and audience.
    session_jwt = issue_session_jwt(
        session_id=project.id, project_id=project.id, key_id=key.api_key.pk
    )
    with pytest.raises(IngestTokenInvalid):
        decode_ingest_token(session_jwt)
    # Signed with SECRET_KEY itself, right claims: still not ours.
    now = datetime.now(UTC)
    forged = jwt.encode(
        {
            "pid": str(project.id),
            "kid": str(key.api_key.pk),
            "aud": TOKEN_AUDIENCE,
            "iat": now,
            "exp": now + timedelta(days=1),
        },
        settings.SECRET_KEY,
        algorithm="HS256",
    )
    with pytest.raises(IngestTokenInvalid):
        decode_ingest_token(forged)
    # alg=none
    unsigned = jwt.encode(
        {"pid": str(project.id), "kid": str(key.api_key.pk)}, None, algorithm="none"
    )
    with pytest.raises(IngestTokenInvalid):
        decode_ingest_token(unsigned)


def test_a_new_secret_key_invalidates_tokens(key, settings):
    token, _ = issue_ingest_token(key.api_key)
    settings.SECRET_KEY = "another-secret-key-0123456789abcdef0123456789abcdef"
    with pytest.raises(IngestTokenInvalid):
        decode_ingest_token(token)
