"""Ingest tokens: what `POST /v3/auth/token {"api_key"}` answers and `/v1/traces`, `/v4/...`
accept as `Authorization: Bearer <token>`.

An HS256 JWT naming the project and the API key's id, never the key (AgentOps' own token carries
the raw key in clear: shared/protocols/agentops-otlp.md §3, §6). agentops 0.4.21 fetches one
token per process and never refreshes it, nor retries on 401 (§3), so it lives 30 days, as
AgentOps' does. Verifying it looks the key up by primary key (one indexed query): revoking the key
stops every token issued for it at once, as it does the v2 session JWTs (projects/auth.py).
"""

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from rest_framework import exceptions

from projects.models import ApiKey

TOKEN_ALGORITHM = "HS256"
TOKEN_AUDIENCE = "agentops-ingest"
TOKEN_TTL = timedelta(days=30)


class IngestTokenInvalid(exceptions.AuthenticationFailed):
    """Not a token we signed for ingest (forged, mangled, a v2 session JWT, another audience)."""


class IngestTokenExpired(IngestTokenInvalid):
    """A token of ours that ran out: fetch a new one from /v3/auth/token (restart the agent)."""


class IngestTokenRevoked(IngestTokenInvalid):
    """The token's API key was revoked (or deleted, or moved projects) since it was issued."""


@dataclass(frozen=True)
class IngestGrant:
    project_id: uuid.UUID
    key_id: uuid.UUID
    expires_at: datetime | None  # aware UTC; None for a raw API key (it does not expire)


def _secret() -> bytes:
    # Derived from SECRET_KEY for this use alone: an ingest token never verifies as a session
    # JWT or a signed cookie, nor they as one.
    return hmac.new(settings.SECRET_KEY.encode(), b"agentops-ingest-token", hashlib.sha256).digest()


def issue_ingest_token(api_key: ApiKey, *, ttl: timedelta = TOKEN_TTL) -> tuple[str, datetime]:
    """(token, expires_at aware UTC) for an active key; the caller has checked the raw key."""
    now = datetime.now(UTC).replace(microsecond=0)  # JWT times are whole seconds
    expires_at = now + ttl
    claims = {
        "pid": str(api_key.project_id),
        "kid": str(api_key.pk),
        "aud": TOKEN_AUDIENCE,
        "iat": now,
        "exp": expires_at,
    }
    return jwt.encode(claims, _secret(), algorithm=TOKEN_ALGORITHM), expires_at


def decode_ingest_token(token: str) -> IngestGrant:
    """The grant a token names, from its signature alone (no query): for a write that checks
    the key itself, as events/ingest.py does. IngestTokenExpired / IngestTokenInvalid (401)."""
    try:
        claims = jwt.decode(
            token,
            _secret(),
            algorithms=[TOKEN_ALGORITHM],
            audience=TOKEN_AUDIENCE,
            options={"require": ["exp", "iat", "pid", "kid", "aud"]},
        )
        return IngestGrant(
            project_id=uuid.UUID(claims["pid"]),
            key_id=uuid.UUID(claims["kid"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except jwt.ExpiredSignatureError:
        raise IngestTokenExpired(
            "The token has expired: restart the agent so the SDK fetches a new one."
        ) from None
    except (jwt.InvalidTokenError, ValueError, TypeError, KeyError):
        raise IngestTokenInvalid("The token is not valid.") from None


def verify_ingest_token(token: str) -> tuple[IngestGrant, datetime | None]:
    """The grant, checked against the key's row: (grant, the key's last_used_at, for
    projects.auth.touch_key). IngestTokenRevoked when the key is revoked or gone, and the errors
    of decode_ingest_token. One query, by primary key."""
    grant = decode_ingest_token(token)
    key = (
        ApiKey.objects.filter(pk=grant.key_id, project_id=grant.project_id, revoked_at__isnull=True)
        .values_list("pk", "last_used_at")
        .first()
    )
    if key is None:
        raise IngestTokenRevoked("The API key this token was issued for has been revoked.")
    return grant, key[1]
