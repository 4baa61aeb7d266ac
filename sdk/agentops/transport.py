"""HTTP for the SDK: the standard library's http.client, JSON in and out, keep-alive.

A `Connection` is used by one thread at a time (the sender keeps one for its whole life;
calls made from the agent's threads open their own and close it after), so no request ever
waits for another thread's socket.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from ._version import __version__

USER_AGENT = f"agentops-selfhosted/{__version__} (python)"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class Result:
    """One HTTP exchange: status 0 means no answer (connection refused, reset, timed out)."""

    __slots__ = ("body", "error", "retry_after", "status")

    def __init__(self, status: int, body: Any = None, error: str = "", retry_after=None):
        self.status = status
        self.body = body
        self.error = error
        self.retry_after = retry_after

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status in RETRYABLE_STATUS

    @property
    def message(self) -> str:
        """What the server said, for a warning a person can act on."""
        if self.status == 0:
            return f"no answer ({self.error})"
        if isinstance(self.body, dict) and self.body.get("message"):
            text = str(self.body["message"])
            errors = self.body.get("errors")
            if errors:
                text += f" {json.dumps(errors)[:500]}"
            return f"HTTP {self.status}: {text}"
        return f"HTTP {self.status}"

    def __repr__(self) -> str:
        return f"Result({self.status}, {self.message!r})"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait, from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class Connection:
    """Keep-alive connections to the endpoints one thread talks to."""

    def __init__(self) -> None:
        self._conns: dict[tuple[str, str], http.client.HTTPConnection] = {}

    def close(self) -> None:
        for conn in self._conns.values():
            with contextlib.suppress(Exception):
                conn.close()
        self._conns.clear()

    def _connection(self, scheme: str, netloc: str, timeout: float):
        key = (scheme, netloc)
        conn = self._conns.get(key)
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(
                    netloc, timeout=timeout, context=ssl.create_default_context()
                )
            else:
                conn = http.client.HTTPConnection(netloc, timeout=timeout)
            self._conns[key] = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        *,
        api_key: str | None = None,
        jwt: str | None = None,
        timeout: float = 20.0,
    ) -> Result:
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if api_key:
            headers["X-Agentops-Api-Key"] = api_key
        if jwt:
            headers["Authorization"] = f"Bearer {jwt}"
        timeout = max(0.05, timeout)
        for attempt in (1, 2):
            conn = self._connection(parts.scheme, parts.netloc, timeout)
            reused = conn.sock is not None
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                # A keep-alive socket the server closed while idle: one fresh try, at once.
                # (Resending is safe: every call of the protocol is idempotent.)
                if reused and attempt == 1:
                    continue
                return Result(0, error=f"{type(exc).__name__}: {exc}")
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                reason = "timed out" if isinstance(exc, socket.timeout) else str(exc)
                return Result(0, error=f"{type(exc).__name__}: {reason}")
            if response.will_close:
                conn.close()
            parsed: Any = None
            if raw:
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = raw[:500].decode("utf-8", "replace")
            return Result(
                response.status,
                parsed,
                retry_after=parse_retry_after(response.getheader("Retry-After")),
            )
        raise AssertionError("unreachable")
