"""Events: what happened in an agent's run. Field names are AgentOps' wire names.

Building an event costs a UUID and a timestamp; turning it into JSON happens later, in the
background sender, so that recording stays cheap for the agent.
"""

from __future__ import annotations

import contextvars
import sys
import traceback
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from uuid import UUID, uuid4

from ._time import get_ISO_time

# The agent (see track_agent) whose code is running; events created inside take its id.
# A ContextVar, not a stack walk: reading it costs about 50 ns, and it follows asyncio tasks.
current_agent_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "agentops_agent_id", default=None
)


def _agent_from_context() -> str | None:
    return current_agent_id.get()


class EventType(Enum):
    LLM = "llms"
    ACTION = "actions"
    API = "apis"
    TOOL = "tools"
    ERROR = "errors"


@dataclass
class Event:
    """Base of all events. params: the inputs of the work; returns: its result."""

    event_type: str
    params: dict | None = None
    returns: Any = None
    init_timestamp: str = field(default_factory=get_ISO_time)
    end_timestamp: str | None = None  # None: set to the time the event is recorded
    agent_id: UUID | str | None = field(default_factory=_agent_from_context)
    id: UUID | str = field(default_factory=uuid4)
    session_id: UUID | str | None = None


@dataclass
class ActionEvent(Event):
    """Anything the agent does. action_type names it; screenshot is a URL."""

    event_type: str = EventType.ACTION.value
    action_type: str | None = None
    logs: Any = None
    screenshot: str | None = None


@dataclass
class LLMEvent(Event):
    """A call to a language model. prompt/completion: a string or ChatML messages.
    prompt_tokens: every input token, cache reads and writes included (cache_read_tokens and
    cache_write_tokens say how many of them).
    cost in USD (a Decimal, a decimal string or a number); without it the server prices the
    call from its price table by model and tokens."""

    event_type: str = EventType.LLM.value
    thread_id: UUID | str | None = None
    prompt: Any = None
    prompt_tokens: int | None = None
    completion: Any = None
    completion_tokens: int | None = None
    cost: Any = None
    model: str | None = None
    # Parts of prompt_tokens (which includes them, as OpenAI counts) and of completion_tokens;
    # the server prices cache reads and writes at the model's cache prices.
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass
class ToolEvent(Event):
    """A tool call: name is the tool (e.g. the function's name)."""

    event_type: str = EventType.TOOL.value
    name: str | None = None
    logs: Any = None


@dataclass
class ErrorEvent(Event):
    """An error. From an exception: error_type is its class, details its message, logs its
    traceback. trigger_event: the event during which it happened (sent as its id and type)."""

    event_type: str = EventType.ERROR.value
    trigger_event: Event | None = None
    exception: BaseException | None = None
    error_type: str | None = None
    code: str | None = None
    details: Any = None
    logs: str | None = None

    def __post_init__(self) -> None:
        exc = self.exception
        if exc is not None:
            self.error_type = self.error_type or type(exc).__name__
            if self.details is None:
                self.details = str(exc)
            if self.logs is None:
                self.logs = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            self.exception = None  # an exception object is not data: never serialise it
        elif self.logs is None and sys.exc_info()[0] is not None:
            self.logs = traceback.format_exc()
        if self.end_timestamp is None:
            self.end_timestamp = self.init_timestamp

    @property
    def timestamp(self) -> str:
        return self.init_timestamp
