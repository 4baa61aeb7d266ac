"""Session: one run of an agent, and the events it records."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, Callable
from uuid import UUID

from ._log import logger
from ._time import get_ISO_time, parse_iso
from .config import Configuration
from .delivery import Delivery
from .event import Event
from .protocol import Deadline, decimal_or_none
from .sender import Sender

MAX_REASON = 10_000  # the server's limit for end_state_reason


class EndState(Enum):
    SUCCESS = "Success"
    FAIL = "Fail"
    INDETERMINATE = "Indeterminate"


END_STATES = tuple(s.value for s in EndState)


def end_state_value(end_state: Any) -> str | None:
    """ "Success", "Fail" or "Indeterminate" (or their EndState); None for anything else."""
    if isinstance(end_state, EndState):
        return end_state.value
    return end_state if isinstance(end_state, str) and end_state in END_STATES else None


def clip_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    reason = str(reason)
    if len(reason) <= MAX_REASON:
        return reason
    # Keep the head (what failed) and the tail (where): the middle of a traceback matters least.
    return reason[: MAX_REASON // 2 - 10] + "\n[...]\n" + reason[-(MAX_REASON // 2 - 10) :]


def format_duration(seconds: float) -> str:
    hours, rest = divmod(max(0.0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{int(hours)}h"] if hours else []
    if minutes:
        parts.append(f"{int(minutes)}m")
    parts.append(f"{secs:.1f}s")
    return " ".join(parts)


NOT_AN_EVENT = "record() takes an agentops event (or a dict with event_type)"


def queued_copy(event: Any) -> dict:
    """What record() queues for an event it cannot mark with its time: a dict (the copy gets
    the fields an event object would have had) or an object that refuses new attributes."""
    if isinstance(event, dict):
        if "event_type" not in event:
            raise TypeError(NOT_AN_EVENT)
        fields = {"id": uuid.uuid4(), "init_timestamp": get_ISO_time(), **event}
    else:
        try:
            fields = vars(event).copy()
        except TypeError:
            raise TypeError(NOT_AN_EVENT) from None
    fields["_recorded_at"] = time.time()
    return fields


def cost_text(cost: Decimal | None, unknown: int | None) -> str:
    """The session's cost for a person: "cost $0.125", "cost unknown", or "cost $0.125 + 2
    calls of unknown cost" (the server prices what it can; unknown is not zero)."""
    if cost is None:
        return "cost unknown"
    if unknown:
        return f"cost ${cost} + {unknown} call{'s' if unknown != 1 else ''} of unknown cost"
    return f"cost ${cost}"


class Session:
    """A run of an agent. Made by agentops.init() / start_session(), not directly.

    record() never blocks and never raises: it appends the event to this session's queue,
    which the client's background sender delivers (see `delivery`). end_session() sends what
    is still queued, then ends the session on the server and returns its total cost.
    """

    def __init__(
        self,
        session_id: UUID,
        config: Configuration,
        tags: list | None = None,
        host_env: dict | None = None,
        *,
        sender: Sender,
        on_end: Callable[[Session], None] | None = None,
    ) -> None:
        self.session_id: UUID = session_id
        self.config = config
        self.init_timestamp: str = get_ISO_time()
        self.end_timestamp: str | None = None
        self.end_state: str | None = None
        self.end_state_reason: str | None = None
        self.tags: list[str] = list(dict.fromkeys(str(t) for t in (tags or [])))
        self.host_env: dict | None = host_env
        self.video: str | None = None
        self._on_end = on_end
        self._lock = threading.RLock()  # re-entrant: a signal handler may end us mid-call
        self._warned_not_running = False
        self._delivery = sender.open(
            session_id,
            config,
            {
                "session_id": str(session_id),
                "init_timestamp": self.init_timestamp,
                "tags": list(self.tags),
                "host_env": host_env,
                "end_state": None,
            },
        )
        # Read on every record(): plain attributes, no locks, no calls.
        self._running = True
        self._queue = self._delivery.queue
        self._trigger = config.max_queue_size
        self._cap = self._delivery.cap
        self._notify = self._delivery.wake

    # --- what users call --------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._running

    @property
    def delivery(self) -> Delivery:
        """How this session's events reach the server: its queue, retries and accounting."""
        return self._delivery

    @property
    def session_url(self) -> str:
        return self._delivery.session_url or f"{self.config.endpoint}/sessions/{self.session_id}"

    @property
    def jwt(self) -> str | None:
        """The session token the server gave (None until it answered)."""
        return self._delivery.api.jwt

    @jwt.setter
    def jwt(self, value: str | None) -> None:
        self._delivery.api.jwt = value

    @property
    def project_id(self) -> str | None:
        return self._delivery.project_id

    @property
    def token_cost(self) -> Decimal | None:
        """The total cost in USD the server answered to the end; None while unknown."""
        return self._delivery.token_cost

    @property
    def cost_unknown_events(self) -> int | None:
        """How many LLM calls the server could not price (not in token_cost); None: not said."""
        return self._delivery.cost_unknown_events

    def record(self, event: Event, flush_now: bool = False) -> None:
        """Queue the event for sending. Never blocks on the network, never raises.

        The queue holds the event itself, as the official SDK's does; the sender copies its
        fields when it takes it, within max_wait_time. A copy here would allocate a container
        on every call, and those allocations set off the agent's garbage collections inside
        record() (bench/sdk_record.py: mean 1.0 us with a copy, 0.33 us without).
        """
        try:
            if not self._running:
                self._record_refused()
                return
            try:
                event._recorded_at = time.time()  # the end_timestamp of an event without one
            except AttributeError:
                event = queued_copy(event)
            queue = self._queue
            queue.append(event)
            n = len(queue)
            if n >= self._trigger or flush_now:
                if n > self._cap:
                    self._delivery.overflow()
                self._notify()
        except Exception as exc:
            with contextlib.suppress(Exception):
                logger.warning("agentops: could not record %r: %s", type(event).__name__, exc)

    def end_session(
        self,
        end_state: str | EndState = EndState.INDETERMINATE,
        end_state_reason: str | None = None,
        video: str | None = None,
    ) -> Decimal | None:
        """Send what is queued, end the session, and return its total cost in USD.

        Returns None when the cost is not known: the server could price none of the session's
        LLM calls (`cost_unknown_events` says how many), the end state was refused, or the
        server could not be reached within max_flush_time (the SDK keeps trying in the
        background for as long as the process lives, and says so). A partly known cost is the
        known part; `cost_unknown_events` counts the calls left out.
        """
        state = end_state_value(end_state)
        if state is None:
            logger.error(
                "agentops: end_state %r refused: use one of %s (or agentops.EndState). "
                "The session is still running.",
                end_state,
                ", ".join(END_STATES),
            )
            return None
        return self.end_within(
            Deadline(self.config.max_flush_time / 1000), state, clip_reason(end_state_reason), video
        )

    def end_within(
        self,
        deadline: Deadline,
        end_state: str,
        end_state_reason: str | None = None,
        video: str | None = None,
    ) -> Decimal | None:
        """end_session() with a given deadline (the exit handlers share one among sessions)
        and an end state already checked ("Success", "Fail" or "Indeterminate")."""
        with self._lock:
            if not self._running:
                logger.warning("agentops: session %s has already ended", self.session_id)
                return self.token_cost
            self._running = False
            self.end_timestamp = get_ISO_time()
            self.end_state = end_state
            self.end_state_reason = end_state_reason
            if video is not None:
                self.video = video
            self._delivery.send_end(
                {
                    "end_timestamp": self.end_timestamp,
                    "end_state": self.end_state,
                    "end_state_reason": self.end_state_reason,
                    **({"video": self.video} if self.video else {}),
                }
            )
        if self._on_end is not None:
            self._on_end(self)
        delivery = self._delivery
        if not delivery.flush(deadline):
            delivery.warn_pending("end_session()")
        elif delivery.end_confirmed:
            logger.info(
                "agentops: session %s ended (%s), %s: %s",
                self.session_id,
                self.end_state,
                cost_text(delivery.token_cost, delivery.cost_unknown_events),
                self.session_url,
            )
        elif delivery.failure is not None:
            logger.info(
                "agentops: session %s ended here (%s) but not on the server (%s): %d event(s) "
                "not delivered in all",
                self.session_id,
                self.end_state,
                delivery.failure,
                delivery.lost,
            )
        return delivery.token_cost

    def add_tags(self, tags: str | list) -> None:
        """Add tags (sent in the background)."""
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        with self._lock:
            if not self._running:
                return self._record_refused("add_tags")
            for tag in tags:
                if str(tag) not in self.tags:
                    self.tags.append(str(tag))
            self._delivery.send_tags(self.tags)

    def set_tags(self, tags: str | list) -> None:
        """Replace the tags (sent in the background)."""
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        with self._lock:
            if not self._running:
                return self._record_refused("set_tags")
            self.tags = list(dict.fromkeys(str(t) for t in tags))
            self._delivery.send_tags(self.tags)

    def set_video(self, video: str) -> None:
        """The session's video URL, sent with the next update (tags or the end)."""
        self.video = video
        self._delivery.set_video(video)

    def create_agent(self, name: str | None, agent_id: str | None = None) -> str:
        agent_id = str(agent_id or uuid.uuid4())
        self._delivery.add_agent(agent_id, name or "")
        return agent_id

    def get_analytics(self) -> dict | None:
        """The session's numbers as the server counts them, after sending what is queued:
        LLM calls, tool calls, actions, errors, duration, cost and tokens. None if the server
        cannot be reached within max_flush_time."""
        deadline = Deadline(self.config.max_flush_time / 1000)
        if not self._delivery.flush(deadline):
            self._delivery.warn_pending("get_analytics()")
        result = self._delivery.read_stats(deadline)
        if result is None or not result.ok or not isinstance(result.body, dict):
            reason = "no answer in time" if result is None else result.message
            logger.warning("agentops: no analytics for session %s: %s", self.session_id, reason)
            return None
        stats = result.body
        seconds = stats.get("duration_seconds")
        if seconds is None:
            start = parse_iso(self.init_timestamp)
            end = (
                parse_iso(self.end_timestamp) if self.end_timestamp else datetime.now(timezone.utc)
            )
            seconds = (end - start).total_seconds()
        cost = decimal_or_none(stats.get("cost"))
        return {
            "LLM calls": stats.get("llms", 0),
            "Tool calls": stats.get("tools", 0),
            "Actions": stats.get("actions", 0),
            "Errors": stats.get("errors", 0),
            "API calls": stats.get("apis", 0),
            "Events": stats.get("events", 0),
            "Duration": format_duration(seconds),
            "Duration seconds": seconds,
            "Cost": cost,
            "Cost unknown events": stats.get("cost_unknown_events", 0),
            "Prompt tokens": stats.get("prompt_tokens", 0),
            "Completion tokens": stats.get("completion_tokens", 0),
            "Total tokens": stats.get(
                "total_tokens", stats.get("prompt_tokens", 0) + stats.get("completion_tokens", 0)
            ),
        }

    # What became of the recorded events so far (counts), as the delivery keeps them.

    @property
    def accepted(self) -> int:
        return self._delivery.accepted

    @property
    def duplicates(self) -> int:
        return self._delivery.duplicates

    @property
    def rejected(self) -> int:
        return self._delivery.rejected

    @property
    def dropped(self) -> int:
        """Dropped (the oldest first) when the buffer of max_buffer_size events was full."""
        return self._delivery.dropped

    @property
    def lost(self) -> int:
        """Refused by the server, or undeliverable for another reason (always warned)."""
        return self._delivery.lost

    @property
    def pending(self) -> int:
        return self._delivery.pending

    def delivery_stats(self) -> dict:
        """{"accepted", "duplicates", "rejected", "dropped", "lost", "pending"}: event counts."""
        return self._delivery.stats()

    def __repr__(self) -> str:
        state = "running" if self._running else self.end_state
        return f"<agentops.Session {self.session_id} {state}>"

    def _record_refused(self, what: str = "record") -> None:
        if not self._warned_not_running:
            self._warned_not_running = True
            logger.warning(
                "agentops: session %s has ended; %s() ignored. Start a new session with "
                "agentops.start_session().",
                self.session_id,
                what,
            )
