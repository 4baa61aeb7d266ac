"""Configuration: what a Client (and each Session it starts) needs to talk to the server."""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Iterable
from typing import Any

from ._log import logger

# Our server, run with `make run`. Deliberately not AgentOps' cloud: a self-hosted SDK must not
# send anyone's data to a third party because an endpoint was forgotten.
DEFAULT_ENDPOINT = "http://localhost:8000"

# The server's per-request limits (INGEST_MAX_EVENTS_PER_BATCH, INGEST_MAX_BODY_BYTES).
SERVER_MAX_BATCH_EVENTS = 1000
SERVER_MAX_BATCH_BYTES = 10 * 1024 * 1024


def _env_bool(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    return raw.strip().lower() in ("1", "true", "yes", "on")


def valid_api_key(value: str) -> bool:
    # Keys are UUID4 strings; refusing anything else here gives a clear message at init()
    # instead of a 401 from every request later.
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


class Configuration:
    """Settings of a Client; a copy passed to start_session(config=...) governs that session only.

    Times are in milliseconds, as in the official SDK (max_wait_time=5000 is 5 seconds).
    """

    def __init__(self, **settings: Any) -> None:
        self.api_key: str | None = None
        self.parent_key: str | None = None  # accepted for compatibility; our server has no orgs
        self.endpoint: str = DEFAULT_ENDPOINT
        self.max_wait_time: int = 5000  # ms: a batch leaves at the latest this long after record()
        self.max_queue_size: int = 512  # events: a batch leaves as soon as this many wait
        self.max_batch_size: int = SERVER_MAX_BATCH_EVENTS  # events per request
        self.max_batch_bytes: int = SERVER_MAX_BATCH_BYTES - 512 * 1024  # JSON bytes per request
        self.max_buffer_size: int = 100_000  # events held while the server is away
        self.max_flush_time: int = (
            10_000  # ms: end_session/exit give up after this long without progress
        )
        self.request_timeout: int = 20_000  # ms: one HTTP request
        self.default_tags: list[str] = []
        self.instrument_llm_calls: bool = True  # init() patches OpenAI/Anthropic/LiteLLM
        self.auto_start_session: bool = True
        self.skip_auto_end_session: bool = False
        self.env_data_opt_out: bool = False
        if settings:
            self.configure(**settings)

    def copy(self) -> Configuration:
        return copy.deepcopy(self)

    def apply_environment(self) -> None:
        """AGENTOPS_API_KEY, AGENTOPS_API_ENDPOINT, AGENTOPS_ENV_DATA_OPT_OUT fill what is unset."""
        self.configure(
            api_key=os.environ.get("AGENTOPS_API_KEY") or None,
            endpoint=os.environ.get("AGENTOPS_API_ENDPOINT") or None,
            env_data_opt_out=_env_bool("AGENTOPS_ENV_DATA_OPT_OUT"),
        )

    def configure(
        self,
        api_key: str | None = None,
        parent_key: str | None = None,
        endpoint: str | None = None,
        max_wait_time: int | None = None,
        max_queue_size: int | None = None,
        default_tags: Iterable[str] | None = None,
        instrument_llm_calls: bool | None = None,
        auto_start_session: bool | None = None,
        skip_auto_end_session: bool | None = None,
        env_data_opt_out: bool | None = None,
        max_batch_size: int | None = None,
        max_batch_bytes: int | None = None,
        max_buffer_size: int | None = None,
        max_flush_time: int | None = None,
        request_timeout: int | None = None,
    ) -> None:
        """Set what is given; None leaves a setting as it is. Bad values are refused with a
        warning and the previous value is kept: configuration must never crash the agent."""
        if api_key is not None:
            if valid_api_key(api_key):
                self.api_key = str(api_key)
            else:
                logger.error(
                    "API key %r is not valid: a key looks like a UUID. Copy it from your "
                    "project's settings page on the server.",
                    api_key,
                )
        if parent_key is not None:
            self.parent_key = str(parent_key)
        if endpoint is not None:
            if isinstance(endpoint, str) and endpoint.startswith(("http://", "https://")):
                self.endpoint = endpoint.rstrip("/")
            else:
                logger.error(
                    "endpoint %r is not an http(s):// URL; keeping %s", endpoint, self.endpoint
                )
        limits = {
            "max_wait_time": (max_wait_time, 1, None),
            "max_queue_size": (max_queue_size, 1, None),
            "max_batch_size": (max_batch_size, 1, SERVER_MAX_BATCH_EVENTS),
            "max_batch_bytes": (max_batch_bytes, 1024, SERVER_MAX_BATCH_BYTES),
            "max_buffer_size": (max_buffer_size, 1, None),
            "max_flush_time": (max_flush_time, 0, None),
            "request_timeout": (request_timeout, 100, None),
        }
        for name, (value, low, high) in limits.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
                logger.error("%s=%r refused: it must be a number >= %s", name, value, low)
                continue
            if high is not None and value > high:
                logger.warning("%s=%r is above the server's limit; using %s", name, value, high)
                value = high
            setattr(self, name, int(value))
        if default_tags is not None:
            tags = [default_tags] if isinstance(default_tags, str) else list(default_tags)
            for tag in tags:
                if str(tag) not in self.default_tags:
                    self.default_tags.append(str(tag))
        for name, value in (
            ("instrument_llm_calls", instrument_llm_calls),
            ("auto_start_session", auto_start_session),
            ("skip_auto_end_session", skip_auto_end_session),
            ("env_data_opt_out", env_data_opt_out),
        ):
            if value is not None:
                setattr(self, name, bool(value))
        # The buffer must hold at least one trigger's worth of events.
        self.max_buffer_size = max(self.max_buffer_size, self.max_queue_size)

    def __repr__(self) -> str:
        key = f"{self.api_key[:8]}..." if self.api_key else None
        return f"Configuration(endpoint={self.endpoint!r}, api_key={key!r})"
