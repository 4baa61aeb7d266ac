"""Session: one run of an agent, and the events it records."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ._log import logger
from ._time import get_ISO_time, parse_iso
from .config import Configuration
from .sender import Deadline, Sender, decimal_or_none
from .transport import Connection

if TYPE_CHECKING:
    from .client import Client
    from .event import Event

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


class Session:
    """A run of an agent. Made by agentops.init() / start_session(), not directly.

    record() never blocks and never raises: it appends the event to this session's queue,
    which a background thread sends. end_session() sends what is still queued, then ends the
    session on the server and returns its total cost.
    """

    def __init__(
        self,
        session_id: UUID,
        config: Configuration,
        tags: list | None = None,
        host_env: dict | None = None,
        *,
        client: Client | None = None,
        sender: Sender | None = None,
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
        self.project_id: str | None = None
        self.jwt: str | None = None
        self.token_cost: Decimal | None = None
        self._session_url: str | None = None
        self._client = client
        self._sender = sender or Sender()

        # Read on every record(): plain attributes, no locks.
        self._running = True
        self._queue: deque = deque()
        self._trigger = config.max_queue_size
        self._cap = config.max_buffer_size

        self._state_lock = threading.RLock()  # re-entrant: a signal handler may end us mid-call
        self._drop_lock = threading.Lock()
        self._update_lock = threading.Lock()
        self._idle = threading.Condition(threading.RLock())
        self._inflight = 0  # batches being sent
        self._inflight_events = 0
        self._retry: deque = deque()  # encoded events to resend first, oldest first
        self._registered = False
        self._last_progress = 0.0  # monotonic time the server last took something from us
        self._dead: str | None = None  # why the server will take nothing more from us
        self._tags_dirty = False
        self._agents_pending: list[dict] = []
        self._end_payload: dict | None = None
        self._warned_not_running = False
        # Delivery accounting (exact: each event is counted by the one thread that popped it).
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.dropped = 0  # buffer overflow while the server was away
        self.lost = 0  # refused or undeliverable for another reason (always warned)
        self._dropped_reported = 0

    # --- what users call --------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._running

    @property
    def session_url(self) -> str:
        return self._session_url or f"{self.config.endpoint}/sessions/{self.session_id}"

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
                    self._overflow()
                self._sender.notify()
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

        Returns None when the cost is not known: the end state was refused, or the server
        could not be reached within max_flush_time (the SDK keeps trying in the background
        for as long as the process lives, and says so).
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
        return self._end(
            state,
            clip_reason(end_state_reason),
            video,
            Deadline(self.config.max_flush_time / 1000),
        )

    def _end(
        self, state: str, reason: str | None, video: str | None, deadline: Deadline
    ) -> Decimal | None:
        with self._state_lock:
            if not self._running:
                logger.warning("agentops: session %s has already ended", self.session_id)
                return self.token_cost
            self._running = False
            self.end_timestamp = get_ISO_time()
            self.end_state = state
            self.end_state_reason = reason
            if video is not None:
                self.video = video
            self._end_payload = {
                "end_timestamp": self.end_timestamp,
                "end_state": self.end_state,
                "end_state_reason": self.end_state_reason,
                **({"video": self.video} if self.video else {}),
            }
        if self._client is not None:
            self._client._session_ended(self)
        if not self._sender.flush(self, deadline):
            self._warn_pending("end_session()")
        elif self._end_payload is None:
            logger.info(
                "agentops: session %s ended (%s), cost $%s: %s",
                self.session_id,
                self.end_state,
                self.token_cost,
                self.session_url,
            )
        return self.token_cost

    def add_tags(self, tags: str | list) -> None:
        """Add tags (sent in the background)."""
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        with self._state_lock:
            if not self._running:
                return self._record_refused("add_tags")
            for tag in tags:
                if str(tag) not in self.tags:
                    self.tags.append(str(tag))
            self._tags_dirty = True
        self._sender.notify()

    def set_tags(self, tags: str | list) -> None:
        """Replace the tags (sent in the background)."""
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        with self._state_lock:
            if not self._running:
                return self._record_refused("set_tags")
            self.tags = list(dict.fromkeys(str(t) for t in tags))
            self._tags_dirty = True
        self._sender.notify()

    def set_video(self, video: str) -> None:
        self.video = video

    def create_agent(self, name: str | None, agent_id: str | None = None) -> str:
        agent_id = str(agent_id or uuid.uuid4())
        self._agents_pending.append({"id": agent_id, "name": name or ""})
        self._sender.notify()
        return agent_id

    def get_analytics(self) -> dict | None:
        """The session's numbers as the server counts them, after sending what is queued:
        LLM calls, tool calls, actions, errors, duration, cost and tokens. None if the server
        cannot be reached within max_flush_time."""
        deadline = Deadline(self.config.max_flush_time / 1000)
        if not self._sender.flush(self, deadline):
            self._warn_pending("get_analytics()")
        conn = Connection()
        try:
            result = self._sender.call(
                conn,
                self,
                f"/v2/sessions/{self.session_id}/stats",
                None,
                deadline=deadline,
                auth="key",
                method="GET",
            )
        finally:
            conn.close()
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

    def delivery_stats(self) -> dict:
        """What became of the recorded events so far (counts)."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "lost": self.lost,
            "pending": self.pending,
        }

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._retry) + self._inflight_events

    def __repr__(self) -> str:
        state = "running" if self._running else self.end_state
        return f"<agentops.Session {self.session_id} {state}>"

    # --- the sender's side ------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return (
            not self._queue
            and not self._retry
            and self._inflight == 0
            and not self._agents_pending
            and not self._tags_dirty
            and self._end_payload is None
        ) or self._dead is not None

    def _create_payload(self) -> dict:
        payload = {
            "session_id": str(self.session_id),
            "init_timestamp": self.init_timestamp,
            "tags": list(self.tags),
            "host_env": self.host_env,
            "end_state": None,
        }
        return payload

    def _on_registered(self, answer: dict) -> None:
        self.jwt = answer["jwt"]
        self.project_id = answer.get("project_id")
        self._session_url = answer.get("session_url") or self._session_url
        self._registered = True
        self._last_progress = time.monotonic()

    def _events_settled(self) -> bool:
        return not self._queue and not self._retry and self._inflight == 0

    def _update_payload(self, with_end: bool) -> dict:
        fields: dict[str, Any] = {"session_id": str(self.session_id)}
        with self._state_lock:
            if self._tags_dirty:
                # Only when changed here: tags replace on the server, and another process of
                # an inherited session may have added its own.
                fields["tags"] = list(self.tags)
                self._tags_dirty = False
            if with_end and self._end_payload is not None:
                fields.update(self._end_payload)
            elif self.video:
                fields["video"] = self.video
        return {"session": fields}

    def _update_answered(self, payload: dict, result) -> None:
        ending = "end_timestamp" in payload["session"]
        if result.ok:
            if ending:
                body = result.body if isinstance(result.body, dict) else {}
                self.token_cost = decimal_or_none(body.get("token_cost"))
                self._session_url = body.get("session_url") or self._session_url
                with self._state_lock:
                    if self._end_payload is not None and all(
                        payload["session"].get(k) == v for k, v in self._end_payload.items()
                    ):
                        self._end_payload = None
            return
        logger.warning(
            "agentops: the server refused the update of session %s: %s",
            self.session_id,
            result.message,
        )
        if ending:
            self._end_payload = None

    def _take_agents(self) -> list:
        agents, self._agents_pending = self._agents_pending, []
        return agents

    def _batch_started(self) -> None:
        with self._idle:
            self._inflight += 1

    def _batch_taken(self, count: int) -> None:
        with self._idle:
            self._inflight_events += count

    def _batch_done(self, count: int = 0) -> None:
        with self._idle:
            self._inflight -= 1
            self._inflight_events -= count
            if self._inflight == 0:
                self._idle.notify_all()

    def _wait_idle(self, deadline: Deadline) -> bool:
        with self._idle:
            while self._inflight:
                remaining = deadline.remaining(self)
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.5))
        return not self._queue and not self._retry

    def _count_delivery(self, body: Any, chunk: list) -> None:
        self._last_progress = time.monotonic()
        if not isinstance(body, dict) or "accepted" not in body:
            self.accepted += len(chunk)  # a server that does not count: 200 means stored
            return
        rejected = body.get("rejected") or []
        self.accepted += int(body.get("accepted") or 0)
        self.duplicates += int(body.get("duplicates") or 0)
        if rejected:
            self.rejected += len(rejected)
            first = rejected[0] if isinstance(rejected[0], dict) else {}
            logger.warning(
                "agentops: the server refused %d event(s) of session %s, e.g. event %s: %s",
                len(rejected),
                self.session_id,
                first.get("id"),
                first.get("errors"),
            )

    def _lose(self, count: int, reason: str) -> None:
        self.lost += count
        logger.warning(
            "agentops: %d event(s) of session %s not delivered: %s", count, self.session_id, reason
        )

    def _discard_all(self) -> None:
        count = 0
        while True:
            try:
                self._queue.popleft()
            except IndexError:
                break
            count += 1
        while True:
            try:
                self._retry.popleft()
            except IndexError:
                break
            count += 1
        self._agents_pending.clear()
        self._tags_dirty = False
        self._end_payload = None
        if count:
            self._lose(count, self._dead or "the session cannot be sent")

    def _overflow(self) -> None:
        with self._drop_lock:
            queue, cap, n = self._queue, self._cap, 0
            while len(queue) > cap:
                try:
                    queue.popleft()
                except IndexError:
                    break
                n += 1
            self.dropped += n

    def _report_drops(self) -> None:
        dropped = self.dropped
        if dropped > self._dropped_reported:
            logger.warning(
                "agentops: the server was unreachable and the buffer of %d events filled: "
                "dropped the %d oldest event(s) of session %s (%d in all)",
                self._cap,
                dropped - self._dropped_reported,
                self.session_id,
                dropped,
            )
            self._dropped_reported = dropped

    def _record_refused(self, what: str = "record") -> None:
        if not self._warned_not_running:
            self._warned_not_running = True
            logger.warning(
                "agentops: session %s has ended; %s() ignored. Start a new session with "
                "agentops.start_session().",
                self.session_id,
                what,
            )

    def _warn_lost_at_exit(self) -> None:
        self._report_drops()
        if self.pending or self._end_payload is not None:
            logger.warning(
                "agentops: the process is exiting: %d event(s)%s of session %s were never "
                "delivered: %s",
                self.pending,
                " and the end state" if self._end_payload is not None else "",
                self.session_id,
                self._dead or f"the server at {self.config.endpoint} did not answer in time",
            )

    def _warn_pending(self, during: str) -> None:
        self._report_drops()
        reason = self._dead or (
            f"the server at {self.config.endpoint} did not answer within "
            f"{self.config.max_flush_time / 1000:g}s"
        )
        pending = self.pending
        if self._dead is None and (pending or self._end_payload is not None):
            logger.warning(
                "agentops: %s of session %s: %d event(s)%s not delivered yet: %s. "
                "Still trying in the background while the process runs.",
                during,
                self.session_id,
                pending,
                " and the end state" if self._end_payload is not None else "",
                reason,
            )
