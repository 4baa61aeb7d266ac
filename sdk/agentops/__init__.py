"""agentops: record your agents' sessions on a self-hosted AgentOps server.

import agentops
agentops.init(api_key="...", endpoint="http://localhost:8000")
agentops.record(agentops.ActionEvent(action_type="search", params={"q": "..."}))
agentops.end_session("Success")
"""

from __future__ import annotations

import threading
from decimal import Decimal

from . import default_client
from ._log import logger
from ._time import get_ISO_time
from ._version import __version__
from .client import Client
from .config import Configuration
from .decorators import record_action, record_function, record_tool, track_agent
from .event import ActionEvent, ErrorEvent, Event, EventType, LLMEvent, ToolEvent
from .session import EndState, Session

__all__ = [
    "ActionEvent",
    "Client",
    "Configuration",
    "EndState",
    "ErrorEvent",
    "Event",
    "EventType",
    "LLMEvent",
    "Session",
    "ToolEvent",
    "__version__",
    "add_tags",
    "configure",
    "create_agent",
    "end_all_sessions",
    "end_session",
    "get_ISO_time",
    "get_api_key",
    "get_client",
    "get_session",
    "init",
    "record",
    "record_action",
    "record_function",
    "record_tool",
    "set_api_key",
    "set_tags",
    "start_session",
    "track_agent",
]

_client: Client | None = None
_client_lock = threading.Lock()


def get_client() -> Client:
    """The process's default Client, which the module-level functions use."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = Client()
    return _client


default_client.provide(get_client)


def init(
    api_key: str | None = None,
    parent_key: str | None = None,
    endpoint: str | None = None,
    max_wait_time: int | None = None,
    max_queue_size: int | None = None,
    tags: list | None = None,
    default_tags: list | None = None,
    instrument_llm_calls: bool | None = None,
    auto_start_session: bool | None = None,
    inherited_session_id: str | None = None,
    skip_auto_end_session: bool | None = None,
    env_data_opt_out: bool | None = None,
    **settings,
) -> Session | None:
    """Configure the default client and (unless auto_start_session=False) start a session,
    returned. api_key and endpoint default to AGENTOPS_API_KEY and AGENTOPS_API_ENDPOINT.

    Further settings (see Configuration): max_buffer_size, max_batch_size, max_flush_time,
    request_timeout.
    """
    client = get_client()
    if client.is_initialized and client.has_sessions:
        logger.warning(
            "agentops: already initialised with a session running; to start another session "
            "call agentops.start_session()."
        )
        return None
    if tags is not None and default_tags is None:
        default_tags = tags  # the official SDK's older name
    client.configure(
        api_key=api_key,
        parent_key=parent_key,
        endpoint=endpoint,
        max_wait_time=max_wait_time,
        max_queue_size=max_queue_size,
        default_tags=default_tags,
        instrument_llm_calls=instrument_llm_calls,
        skip_auto_end_session=skip_auto_end_session,
        env_data_opt_out=env_data_opt_out,
        **settings,
    )
    if auto_start_session is not None:
        client.configure(auto_start_session=auto_start_session)
    if inherited_session_id is not None and client.config.auto_start_session:
        client.configure(auto_start_session=False)
        client.initialize()
        client.configure(auto_start_session=True)
        return client.start_session(inherited_session_id=inherited_session_id)
    return client.initialize()


def configure(**settings) -> None:
    """Change the default client's configuration for sessions started from now on."""
    get_client().configure(**settings)


def start_session(
    tags: str | list | None = None,
    inherited_session_id: str | None = None,
    config: Configuration | None = None,
) -> Session | None:
    """Start a session (another one, if one is running). `config` applies to it alone."""
    return get_client().start_session(tags, inherited_session_id, config)


def end_session(
    end_state: str | EndState = EndState.INDETERMINATE,
    end_state_reason: str | None = None,
    video: str | None = None,
    is_auto_end: bool | None = None,
) -> Decimal | None:
    """End the one running session; with several running, warn and do nothing."""
    return get_client().end_session(end_state, end_state_reason, video, is_auto_end)


def record(event: Event) -> None:
    """Record an event in the one running session (with several running: warn, do nothing)."""
    get_client().record(event)


def add_tags(tags) -> None:
    get_client().add_tags(tags)


def set_tags(tags) -> None:
    get_client().set_tags(tags)


def create_agent(name: str, agent_id: str | None = None) -> str | None:
    return get_client().create_agent(name, agent_id)


def get_session(session_id) -> Session | None:
    return get_client().get_session(session_id)


def end_all_sessions(
    end_state: str | EndState = EndState.INDETERMINATE, end_state_reason=None
) -> None:
    get_client().end_all_sessions(end_state, end_state_reason)


def get_api_key() -> str | None:
    return get_client().api_key


def set_api_key(api_key: str) -> None:
    get_client().configure(api_key=api_key)
