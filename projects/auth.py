"""Credentials of the v2 API: API keys (X-Agentops-Api-Key) and session JWTs (Bearer).

A session JWT names the session, the project and the key that started it; every request
re-checks that the key is not revoked, so revoking a key ends its sessions' tokens at once.
"""

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from projects import throttle
from projects.keys import find_active_key
from projects.models import ApiKey

JWT_ALGORITHM = "HS256"
JWT_AUDIENCE = "agentops-session"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenExpired(exceptions.AuthenticationFailed):
    """A token we signed that has run out: an SDK that ran long, not someone guessing."""


class KeyRevoked(Exception):
    """The API key a session token was issued for is revoked (found by a write that checks it)."""


KEY_REVOKED_MESSAGE = "The API key this session token was issued for has been revoked."


@dataclass(frozen=True)
class SessionGrant:
    session_id: uuid.UUID
    project_id: uuid.UUID
    key_id: uuid.UUID


def _jwt_secret() -> bytes:
    # Derived, so a session token can never be mistaken for anything else SECRET_KEY signs.
    return hmac.new(settings.SECRET_KEY.encode(), b"agentops-session-jwt", hashlib.sha256).digest()


def issue_session_jwt(*, session_id, project_id, key_id) -> str:
    now = datetime.now(UTC)
    claims = {
        "sid": str(session_id),
        "pid": str(project_id),
        "kid": str(key_id),
        "aud": JWT_AUDIENCE,
        "iat": now,
        "exp": now + timedelta(seconds=settings.SESSION_JWT_TTL),
    }
    return jwt.encode(claims, _jwt_secret(), algorithm=JWT_ALGORITHM)


def decode_session_jwt(token: str) -> SessionGrant:
    """The grant a token carries; AuthenticationFailed (401) for anything that does not verify."""
    try:
        claims = jwt.decode(
            token,
            _jwt_secret(),
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            options={"require": ["exp", "sid", "pid", "kid"]},
        )
        return SessionGrant(
            session_id=uuid.UUID(claims["sid"]),
            project_id=uuid.UUID(claims["pid"]),
            key_id=uuid.UUID(claims["kid"]),
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired(
            "The session token has expired: get a new one from /v2/reauthorize_jwt."
        ) from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise exceptions.AuthenticationFailed("The session token is not valid.") from None


def touch_key(api_key_id, last_used_at: datetime | None) -> None:
    """Record use at most once a minute per key: a write per request would serialise ingest."""
    now = timezone.now()
    if last_used_at is not None and now - last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=api_key_id).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)


class ApiKeyAuthentication(BaseAuthentication):
    header = "HTTP_X_AGENTOPS_API_KEY"

    def authenticate(self, request):
        raw = request.META.get(self.header)
        if raw is None:
            return None
        throttle.refuse_if_address_blocked(request)
        api_key = find_active_key(raw)
        if api_key is None:
            throttle.record_auth_failure(request)
            raise exceptions.AuthenticationFailed(
                "The API key is not valid: check X-Agentops-Api-Key (a key looks like a UUID)."
            )
        throttle.refuse_if_key_over_rate(api_key.pk)
        touch_key(api_key.pk, api_key.last_used_at)
        return (None, api_key)

    def authenticate_header(self, request):
        return 'ApiKey header="X-Agentops-Api-Key"'


class SessionTokenAuthentication(BaseAuthentication):
    def __init__(self, checks_key: bool = True) -> None:
        # False for create_events: its write statement checks the key itself (KeyRevoked), which
        # saves a query and a round trip on the busiest endpoint.
        self.checks_key = checks_key

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        throttle.refuse_if_address_blocked(request)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            throttle.record_auth_failure(request)
            raise exceptions.AuthenticationFailed(
                "Send the session token as 'Authorization: Bearer <jwt>'."
            )
        try:
            grant = decode_session_jwt(token.strip())
        except TokenExpired:
            raise
        except exceptions.AuthenticationFailed:
            throttle.record_auth_failure(request)
            raise
        if not self.checks_key:
            throttle.refuse_if_key_over_rate(grant.key_id)
            return (None, grant)
        key = (
            ApiKey.objects.filter(
                pk=grant.key_id, project_id=grant.project_id, revoked_at__isnull=True
            )
            .values_list("pk", "last_used_at")
            .first()
        )
        if key is None:
            refuse_revoked_key(request)
        throttle.refuse_if_key_over_rate(grant.key_id)
        touch_key(grant.key_id, key[1])
        return (None, grant)

    def authenticate_header(self, request):
        return 'Bearer realm="agentops"'


def refuse_revoked_key(request):
    throttle.record_auth_failure(request)
    raise exceptions.AuthenticationFailed(KEY_REVOKED_MESSAGE)


class HasApiKey(BasePermission):
    message = "Send your project's API key in the X-Agentops-Api-Key header."

    def has_permission(self, request, view):
        return isinstance(request.auth, ApiKey)


class HasSessionToken(BasePermission):
    message = "Send the session token from /v2/create_session as 'Authorization: Bearer <jwt>'."

    def has_permission(self, request, view):
        return isinstance(request.auth, SessionGrant)
