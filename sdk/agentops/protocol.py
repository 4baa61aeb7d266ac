"""The AgentOps v2 protocol as one session speaks it: one method per call, each retried the
same way (connection errors, 5xx, 408 and 429, with capped exponential backoff honouring
Retry-After), and a session token renewed once when the server answers 401.

Every call of the protocol is idempotent (events carry their ids, the end carries its
timestamp), so a call whose answer was lost is simply made again.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from uuid import UUID

from ._log import logger
from .config import Configuration
from .transport import Connection, Result
from .wire import encode_json

BACKOFF_BASE = 0.25  # seconds
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 300.0


def backoff_delay(attempt: int) -> float:
    """Seconds before retry number `attempt` (1, 2, ...): capped exponential backoff with
    jitter, so many SDKs do not retry in lockstep."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(attempt - 1, 16)))
    return delay * random.uniform(0.75, 1.0)


def decimal_or_none(value: Any) -> Decimal | None:
    """A cost from the server ("0.125", 0.125, null or "unknown") as a Decimal; None when it is
    not a number."""
    if value is None or value == "unknown":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def granted(result: Result | None) -> bool:
    """Whether an answer to create_session or reauthorize_jwt carries a session token."""
    return (
        result is not None
        and result.ok
        and isinstance(result.body, dict)
        and bool(result.body.get("jwt"))
    )


class Deadline:
    """How long a flush may wait for the server: `window` seconds without progress. Each batch
    the server takes (from any thread) restarts the window, so a slow server that keeps taking
    events is waited for, and a server that is down costs at most one window."""

    def __init__(self, window: float, start: float | None = None) -> None:
        self.window = window
        self.start = time.monotonic() if start is None else start

    def remaining(self, progress: float) -> float:
        """Seconds left, given the monotonic time the server last took something from us."""
        return max(self.start, progress) + self.window - time.monotonic()


class SessionApi:
    """The v2 calls of one session. `jwt` is its session token (None until create_session
    answered); `last_progress` the monotonic time the server last took something from it.

    Each call returns the server's Result (which may be a refusal: check `.ok`), or None when
    `deadline` passed before an answer worth keeping. Without a deadline a call retries for as
    long as the server keeps answering with something retryable.
    """

    def __init__(
        self,
        session_id: UUID,
        config: Configuration,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session_id = session_id
        self.config = config
        self.jwt: str | None = None
        self.last_progress = 0.0
        # What the server's last retried answer was (e.g. "no answer (ConnectionRefusedError...)"),
        # until it next answers: tells "unreachable" from "slower than the agent" in warnings.
        self.last_trouble: str | None = None
        self._sleep = sleep  # how a retry waits: the sender's worker can be woken from it

    def remaining(self, deadline: Deadline) -> float:
        return deadline.remaining(self.last_progress)

    def progressed(self) -> None:
        self.last_progress = time.monotonic()

    # --- the calls ----------------------------------------------------------------------------

    def create_session(
        self, conn: Connection, fields: dict, deadline: Deadline | None
    ) -> Result | None:
        """POST /v2/create_session (starts the session, or joins it: inherited sessions). A
        success keeps the answer's jwt."""
        body = encode_json({"session": fields})
        result = self._call(conn, "/v2/create_session", body, deadline, auth="key")
        if granted(result):
            self.jwt = result.body["jwt"]
            self.progressed()
        return result

    def create_events(self, conn: Connection, body: bytes, deadline: Deadline | None):
        """POST /v2/create_events with a batch_body() of events."""
        result = self._call(conn, "/v2/create_events", body, deadline)
        if result is not None and result.ok:
            self.progressed()
        return result

    def update_session(self, conn: Connection, fields: dict, deadline: Deadline | None):
        """POST /v2/update_session: tags, video, and the end (end_timestamp, end_state...)."""
        return self._call(conn, "/v2/update_session", encode_json({"session": fields}), deadline)

    def create_agent(self, conn: Connection, agent: dict, deadline: Deadline | None):
        """POST /v2/create_agent with {"id", "name"}."""
        return self._call(conn, "/v2/create_agent", encode_json(agent), deadline)

    def stats(self, conn: Connection, deadline: Deadline | None):
        """GET /v2/sessions/{id}/stats (with the API key: it also works for ended sessions)."""
        path = f"/v2/sessions/{self.session_id}/stats"
        return self._call(conn, path, None, deadline, auth="key", method="GET")

    def reauthorize(self, conn: Connection, deadline: Deadline | None) -> Result:
        """POST /v2/reauthorize_jwt; a success replaces `jwt`. Status 0: the deadline passed."""
        body = encode_json({"session_id": str(self.session_id)})
        result = self._call(conn, "/v2/reauthorize_jwt", body, deadline, auth="key")
        if result is None:
            return Result(0, error="deadline passed")
        if granted(result):
            self.jwt = result.body["jwt"]
        return result

    # --- retries ------------------------------------------------------------------------------

    def _call(
        self,
        conn: Connection,
        path: str,
        body: bytes | None,
        deadline: Deadline | None,
        *,
        auth: str = "jwt",
        method: str = "POST",
    ) -> Result | None:
        """One protocol call, retried until it gets an answer that is not worth retrying.
        None: the deadline passed first. A 401 on a session token re-authorizes once."""
        config = self.config
        url = config.endpoint + path
        attempt = 0
        reauthorized = False
        while True:
            timeout = config.request_timeout / 1000
            if deadline is not None:
                remaining = self.remaining(deadline)
                if remaining <= 0:
                    return None
                timeout = min(timeout, remaining)
            if auth == "jwt":
                jwt = self.jwt
                result = conn.request(method, url, body, jwt=jwt, timeout=timeout)
                if result.status == 401 and not reauthorized:
                    reauthorized = True
                    if self.jwt != jwt:  # another thread re-authorized meanwhile
                        continue
                    renewed = self.reauthorize(conn, deadline)
                    if renewed.ok:
                        continue
                    # Retried if worth it; else its refusal says why (e.g. the key was revoked).
                    result = renewed
            else:
                result = conn.request(method, url, body, api_key=config.api_key, timeout=timeout)
            if not result.retryable:
                self.last_trouble = None
                return result
            self.last_trouble = result.message
            attempt += 1
            if result.retry_after is not None:
                wait = min(result.retry_after, RETRY_AFTER_CAP)
            else:
                wait = backoff_delay(attempt)
            if attempt == 1 or attempt % 10 == 0:
                logger.info(
                    "agentops: %s %s; retrying in %.1fs (attempt %d)",
                    path,
                    result.message,
                    wait,
                    attempt,
                )
            if deadline is not None and wait > self.remaining(deadline):
                return None
            self._sleep(wait)
