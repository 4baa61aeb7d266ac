"""The one narrow interface between the provider wrappers and the SDK: a Call is started before
the library's function runs and ends exactly once, as an LLMEvent (plus an ErrorEvent linked to
it when the call raised) in the session that is running.

Nothing here may raise into the user's program: every failure of ours is logged and swallowed.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any, Callable

from .. import default_client
from .._log import logger
from .._time import get_ISO_time
from ..event import ErrorEvent, LLMEvent

# Set while an instrumented call runs: a library that calls another instrumented library
# (LiteLLM calls OpenAI's client) records the outer call only. A ContextVar follows asyncio
# tasks and LiteLLM's executor threads (it copies the context into them).
inside_call: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentops_inside_llm_call", default=False
)

# Request arguments never copied into the event: credentials, and transport details.
_SECRET_PARAMS = frozenset(
    {
        "api_key",
        "extra_headers",
        "headers",
        "azure_ad_token",
        "azure_ad_token_provider",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "vertex_credentials",
        "client",
        "http_client",
        "litellm_logging_obj",
    }
)
_PROMPT_PARAMS = frozenset({"messages", "input", "system", "instructions"})


def _default_sink(event: Any) -> None:
    """Record into the one running session of the client that instrumented (init()'s)."""
    client = _client
    if client is None:
        client = default_client.get()
    sessions = client.sessions
    if len(sessions) == 1:
        sessions[0].record(event)
    elif sessions:
        _warn_once(
            "several",
            "agentops: %d sessions are running, so LLM calls are not recorded automatically; "
            "record them with session.record(LLMEvent(...)).",
            len(sessions),
        )


_sink: Callable[[Any], None] = _default_sink
_client: Any = None
_warned: set = set()
_warned_lock = threading.Lock()


def set_sink(sink: Callable[[Any], None] | None) -> None:
    """Where finished events go (the SDK's running session by default)."""
    global _sink
    _sink = sink or _default_sink


def set_client(client: Any) -> None:
    """The Client whose running session receives the events (None: the default client)."""
    global _client
    _client = client


def _warn_once(key: str, message: str, *args: Any) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(message, *args)


def log_failure(what: str, exc: BaseException) -> None:
    """A failure of the instrumentation itself: logged (once per kind at warning level)."""
    try:
        _warn_once(
            f"fail:{what}:{type(exc).__name__}",
            "agentops: could not record an LLM call (%s): %s: %s; the call itself is unaffected",
            what,
            type(exc).__name__,
            exc,
        )
        logger.debug("agentops: LLM instrumentation failure in %s", what, exc_info=exc)
    except Exception:
        pass


def clean_params(kwargs: dict) -> dict:
    """The call's arguments for the event's `params`: no prompt (it has its own field), no
    credentials or clients, no 'not given' sentinels of the Stainless clients."""
    out = {}
    for key, value in kwargs.items():
        if key in _SECRET_PARAMS or key in _PROMPT_PARAMS:
            continue
        if key.endswith(("_key", "_secret", "_token", "_password")) and key != "max_tokens":
            continue
        if type(value).__name__ in ("NotGiven", "Omit"):
            continue
        out[key] = value
    return out


class Call:
    """One LLM call in flight. Created by start(); ended once by succeed() or fail()."""

    __slots__ = ("_done", "_lock", "init_timestamp", "model", "params", "prompt", "started")

    def __init__(self, model: Any, prompt: Any, params: dict) -> None:
        self.model = model if isinstance(model, str) else (str(model) if model else None)
        self.prompt = prompt
        self.params = params
        self.init_timestamp = get_ISO_time()
        self.started = time.perf_counter()
        self._done = False
        self._lock = threading.Lock()

    def _claim(self) -> bool:
        """True for the first ending only: a stream can end by exhaustion, close() and GC."""
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True

    def succeed(
        self,
        *,
        completion: Any,
        model: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        returns: Any = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> None:
        try:
            if not self._claim():
                return
            event = self._event(completion, model, prompt_tokens, completion_tokens, returns)
            event.cache_read_tokens = _count(cache_read_tokens)
            event.cache_write_tokens = _count(cache_write_tokens)
            event.reasoning_tokens = _count(reasoning_tokens)
            _sink(event)
        except Exception as exc:
            log_failure("record", exc)

    def fail(self, exc: BaseException, **partial: Any) -> None:
        """The call raised: an LLMEvent with what is known, and an ErrorEvent that names it."""
        try:
            if not self._claim():
                return
            llm = self._event(
                partial.get("completion"),
                partial.get("model"),
                partial.get("prompt_tokens"),
                partial.get("completion_tokens"),
                None,
            )
            _sink(llm)
            error = ErrorEvent(trigger_event=llm, exception=exc)
            code = getattr(exc, "status_code", None)
            if code is not None:
                error.code = str(code)
            _sink(error)
        except Exception as inner:
            log_failure("record error", inner)

    def _event(self, completion, model, prompt_tokens, completion_tokens, returns) -> LLMEvent:
        return LLMEvent(
            model=model or self.model,
            prompt=self.prompt,
            completion=completion,
            prompt_tokens=_count(prompt_tokens),
            completion_tokens=_count(completion_tokens),
            params=self.params,
            returns=returns,
            init_timestamp=self.init_timestamp,
            end_timestamp=get_ISO_time(),
        )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def start(model: Any, prompt: Any, kwargs: dict) -> Call | None:
    """A new Call, or None (and nothing recorded) when this is a nested instrumented call."""
    if inside_call.get():
        return None
    try:
        return Call(model, prompt, clean_params(kwargs))
    except Exception as exc:
        log_failure("start", exc)
        return None


def enter() -> contextvars.Token:
    return inside_call.set(True)


def leave(token: contextvars.Token) -> None:
    try:
        inside_call.reset(token)
    except ValueError:  # reset from another context (a generator resumed elsewhere)
        inside_call.set(False)
