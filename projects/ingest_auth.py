"""Credentials of the OpenTelemetry endpoints (`/v1/traces`, `/v4/...`, `/public/v1/...`).

Three are accepted, because three kinds of senders exist (shared/protocols/agentops-otlp.md §10):
- `Authorization: Bearer <ingest token>`, what agentops 0.4 fetched from `/v3/auth/token`;
- `Authorization: Bearer <project API key>`, and
- `X-Agentops-Api-Key: <project API key>`, what users put in a plain OTel exporter's
  `OTEL_EXPORTER_OTLP_TRACES_HEADERS`.

Failed checks count against the client address like every other key check (projects/throttle.py).
A request with no credentials at all does not: it is the normal symptom of an agent whose token
fetch was slow or failed (the 0.4 SDK then exports unauthenticated), not a guesser, and throttling
its address would also refuse the token it is about to ask for. It is logged, with the address,
so an operator can see which agent is misconfigured.
"""

import logging

from rest_framework import exceptions

from projects import throttle
from projects.keys import find_active_key, parse_raw_key
from projects.tokens import (
    IngestGrant,
    IngestTokenInvalid,
    decode_ingest_token,
    verify_ingest_token,
)

logger = logging.getLogger(__name__)

NO_CREDENTIALS = (
    "No credentials: send 'Authorization: Bearer <token from /v3/auth/token>' or your project's "
    "API key as 'X-Agentops-Api-Key'. An AgentOps SDK that sends none did not get its token in "
    "time: check that AGENTOPS_API_ENDPOINT points at this server."
)
BAD_KEY = "The API key is not valid (or was revoked): a key looks like a UUID."


def ingest_grant(request, *, check_key: bool) -> IngestGrant:
    """The grant of the request's credentials. `check_key=False` when the caller's write checks
    the key itself (events/otlp_ingest.py: a token then costs no query; a raw key always does).
    Raises rest_framework AuthenticationFailed (401) or Throttled (429)."""
    meta = request.META
    header = meta.get("HTTP_AUTHORIZATION", "").strip()
    raw_key = meta.get("HTTP_X_AGENTOPS_API_KEY")
    if not header and raw_key is None:
        logger.warning(
            "%s %s without credentials from %s (a slow or failing /v3/auth/token?)",
            request.method,
            request.path,
            throttle.client_address(request),
        )
        raise exceptions.AuthenticationFailed(NO_CREDENTIALS)
    throttle.refuse_if_address_blocked(request)
    if header:
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            throttle.record_auth_failure(request)
            raise exceptions.AuthenticationFailed("Send 'Authorization: Bearer <token>'.")
        if parse_raw_key(value) is None:
            try:
                grant = verify_ingest_token(value)[0] if check_key else decode_ingest_token(value)
            except IngestTokenInvalid:
                throttle.record_auth_failure(request)
                raise
            throttle.refuse_if_key_over_rate(grant.key_id)
            return grant
        raw_key = value
    api_key = find_active_key(raw_key)
    if api_key is None:
        throttle.record_auth_failure(request)
        raise exceptions.AuthenticationFailed(BAD_KEY)
    throttle.refuse_if_key_over_rate(api_key.pk)
    return IngestGrant(project_id=api_key.project_id, key_id=api_key.pk, expires_at=None)
