"""One session's delivery: what is still to reach the server and what became of the rest.

A `Delivery` owns the session's queue (record() only appends to it), the events taken from it
and not yet confirmed (in flight, or back for a retry), the updates waiting to go (agents, tags,
video, the end), and the accounting of every event (accepted, duplicates, rejected, dropped,
lost). It drains itself through `service()`: the Sender's worker calls it in the background, and
`flush()` calls it from the agent's thread with a deadline, both at once. The v2 calls it makes
are those of its `SessionApi`.
"""

from __future__ import annotations

import threading
from collections import deque
from decimal import Decimal
from typing import Any, Callable
from uuid import UUID

from ._log import logger
from .config import Configuration
from .protocol import Deadline, SessionApi, decimal_or_none, granted
from .transport import Connection, Result
from .wire import batch_body, recorded_fields, to_wire

Items = list  # events in wire shape (dicts)


class Delivery:
    """The delivery state of one session, opened by Sender.open().

    Public, for the Session and the Sender:
    - `queue`: the deque record() appends events to (any thread, no lock); `cap`: how many it
      may hold (`overflow()` drops the oldest beyond that);
    - `send_tags()`, `set_video()`, `add_agent()`, `send_end()`: updates to send;
    - `service()`, `flush()`: send what is pending; `idle`, `pending`, `stats()`;
    - what the server answered: `registered`, `project_id`, `session_url`, `token_cost`,
      `cost_unknown_events`, `end_confirmed`, and `failure` (why the server will take
      nothing more of this session; None while it does).
    """

    def __init__(
        self,
        session_id: UUID,
        config: Configuration,
        create_fields: dict,
        *,
        wake: Callable[[], None],
        kick: Callable[[], None],
        sleep: Callable[[float], None],
    ) -> None:
        self.session_id = session_id
        self.config = config
        self.api = SessionApi(session_id, config, sleep)
        self.queue: deque = deque()
        self.cap = config.max_buffer_size
        self.wake = wake  # the sender's: a queue reached max_queue_size, or an update waits
        self._kick = kick  # the sender's: cut its worker's backoff sleep short
        self._create_fields = create_fields

        self._retry: deque = deque()  # events in wire shape to resend first, oldest first
        self._idle = threading.Condition(threading.RLock())
        self._inflight = 0  # batches being sent
        self._inflight_events = 0
        self._drop_lock = threading.Lock()
        self._update_lock = threading.Lock()  # one thread at a time sends the updates
        self._pending_lock = threading.RLock()
        self._tags: list[str] | None = None  # to send (they replace the server's); None: unchanged
        self._video: str | None = None
        self._agents: list[dict] = []
        self._end: dict | None = None  # the end fields, until the server confirmed them
        self.closed = False  # the session has ended here: nothing new will be queued

        self.registered = False
        self.failure: str | None = None
        self.project_id: str | None = None
        self.session_url: str | None = None
        self.token_cost: Decimal | None = None
        self.cost_unknown_events: int | None = None  # None: the server did not say
        self.end_confirmed = False
        # Accounting (exact: each event is counted by the one thread that took it).
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.dropped = 0  # the buffer overflowed
        self.lost = 0  # refused or undeliverable for another reason
        self._dropped_reported = 0

    # --- the session's side -----------------------------------------------------------------

    def overflow(self) -> None:
        """Drop the oldest queued events beyond `cap` (record() calls it past the cap)."""
        with self._drop_lock:
            queue, cap, n = self.queue, self.cap, 0
            while len(queue) > cap:
                try:
                    queue.popleft()
                except IndexError:
                    break
                n += 1
            self.dropped += n

    def send_tags(self, tags: list[str]) -> None:
        """Send these tags (they replace the session's on the server), in the background."""
        with self._pending_lock:
            self._tags = list(tags)
        self.wake()

    def set_video(self, video: str | None) -> None:
        """The video URL, sent with the next update (tags or the end)."""
        self._video = video

    def add_agent(self, agent_id: str, name: str) -> None:
        with self._pending_lock:
            self._agents.append({"id": agent_id, "name": name})
        self.wake()

    def send_end(self, fields: dict) -> None:
        """The end of the session (end_timestamp, end_state, end_state_reason[, video]): sent
        once every queued event is in, so that the cost the server answers counts them all."""
        with self._pending_lock:
            self._end = dict(fields)
            self.closed = True

    @property
    def pending(self) -> int:
        """Events recorded and not yet confirmed by the server."""
        return len(self.queue) + len(self._retry) + self._inflight_events

    @property
    def idle(self) -> bool:
        """Nothing left to send (or nothing ever will be: the server refused the session)."""
        return self.failure is not None or (
            not self.queue
            and not self._retry
            and self._inflight == 0
            and not self._agents
            and self._tags is None
            and self._end is None
        )

    def stats(self) -> dict:
        """{"accepted", "duplicates", "rejected", "dropped", "lost", "pending"}: event counts."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "lost": self.lost,
            "pending": self.pending,
        }

    def read_stats(self, deadline: Deadline) -> Result | None:
        """The server's numbers for the session (GET .../stats); None: no answer in time."""
        conn = Connection()
        try:
            return self.api.stats(conn, deadline)
        finally:
            conn.close()

    # --- draining ---------------------------------------------------------------------------

    def register(self, conn: Connection, deadline: Deadline | None) -> bool:
        """Create (or join) the session on the server. False: no answer in time, or refused
        (then `failure` says why and nothing of the session will be sent)."""
        result = self.api.create_session(conn, self._create_fields, deadline)
        if result is None:
            return False
        if granted(result):
            body = result.body
            self.project_id = body.get("project_id")
            self.session_url = body.get("session_url") or self.session_url
            self.registered = True
            return True
        self._fail(f"the server refused to start the session: {result.message}", log=False)
        return False

    def service(self, conn: Connection, deadline: Deadline | None = None) -> bool:
        """Send everything pending. True when nothing is left to send."""
        if self.failure is not None:
            self._discard_all()
            return True
        if not self.registered and not self.register(conn, deadline):
            return self.failure is not None
        while True:
            items = self.take_batch()
            if items is None:
                break
            try:
                done = self._deliver(conn, items, deadline)
            finally:
                self._batch_done(len(items))
            if not done:
                return False
        if not self.send_updates(conn, deadline):
            return False
        self.report_drops()
        return True

    def flush(self, deadline: Deadline) -> bool:
        """Deliver the pending events (and updates) before the deadline, sending from this
        thread while the sender's worker does too; then wait for the worker's batch in flight.
        True: everything is delivered (or the session failed: see `failure`)."""
        conn = Connection()
        try:
            done = self.service(conn, deadline)
        finally:
            conn.close()
        if not done:
            return False
        self._kick()  # if the worker is sleeping out a backoff with our batch, retry it now
        if not self._wait_idle(deadline):
            return False
        if self.failure is not None or (self._end is None and self._tags is None):
            return True
        conn = Connection()
        try:
            return self.send_updates(conn, deadline) and self._end is None
        finally:
            conn.close()

    def take_batch(self) -> Items | None:
        """Up to one request's worth of events in wire shape; None when there are none.
        Marks a batch in flight before taking anything, so a flush that finds the queue empty
        knows to wait for it. The caller must call batch_done() once it is through."""
        with self._idle:
            self._inflight += 1
        max_events = self.config.max_batch_size
        items: Items = []
        retry, queue = self._retry, self.queue
        while retry and len(items) < max_events:
            try:
                items.append(retry.popleft())
            except IndexError:
                break
        while len(items) < max_events:
            try:
                event = queue.popleft()
            except IndexError:
                break
            items.append(to_wire(*recorded_fields(event)))
        if not items:
            self._batch_done(0)
            return None
        with self._idle:
            self._inflight_events += len(items)
        return items

    def _batch_done(self, count: int) -> None:
        with self._idle:
            self._inflight -= 1
            self._inflight_events -= count
            if self._inflight == 0:
                self._idle.notify_all()

    def _wait_idle(self, deadline: Deadline) -> bool:
        with self._idle:
            while self._inflight:
                remaining = self.api.remaining(deadline)
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.5))
        return not self.queue and not self._retry

    def _deliver(self, conn: Connection, items: Items, deadline: Deadline | None) -> bool:
        """Post the events (halving a batch over max_batch_bytes or refused with 413). False:
        the deadline passed first; the events not yet confirmed go back to the head of the
        retry queue, in order."""
        pending = [items]
        while pending:
            chunk = pending.pop()
            if self.failure is not None:
                self.lost += len(chunk)  # said once, when the session failed
                continue
            body = batch_body(chunk)
            if len(body) > self.config.max_batch_bytes and len(chunk) > 1:
                half = len(chunk) // 2
                pending.extend([chunk[half:], chunk[:half]])
                continue
            result = self.api.create_events(conn, body, deadline)
            if result is None:
                for rest in [chunk, *reversed(pending)]:
                    self._retry.extendleft(reversed(rest))
                return False
            if result.ok:
                self._count(result.body, chunk)
            elif result.status == 413 and len(chunk) > 1:
                half = len(chunk) // 2
                pending.extend([chunk[half:], chunk[:half]])
            elif result.status in (401, 403, 404):
                self.lost += len(chunk)
                self._fail(f"the server no longer accepts it: {result.message}")
            else:
                self._lose(len(chunk), f"the server refused them: {result.message}")
        return True

    def send_updates(self, conn: Connection, deadline: Deadline | None) -> bool:
        """Agents, tag changes and the end, sent by one thread at a time (the worker and
        end_session() may both get here; the end must reach the server once)."""
        if self.failure is not None:
            return True
        if not (self._agents or self._tags is not None or self._end is not None):
            return True
        timeout = -1 if deadline is None else max(0.0, self.api.remaining(deadline))
        if not self._update_lock.acquire(timeout=timeout):
            return False
        try:
            return self._send_updates(conn, deadline)
        finally:
            self._update_lock.release()

    def _send_updates(self, conn: Connection, deadline: Deadline | None) -> bool:
        with self._pending_lock:
            agents, self._agents = self._agents, []
        for i, agent in enumerate(agents):
            result = self.api.create_agent(conn, agent, deadline)
            if result is None:
                with self._pending_lock:
                    self._agents[:0] = agents[i:]
                return False
            if not result.ok:
                logger.warning(
                    "agentops: agent %s of session %s not registered: %s",
                    agent.get("name"),
                    self.session_id,
                    result.message,
                )
        # The end goes only once every event is in: the cost it answers must include them all.
        with self._pending_lock:
            settled = not self.queue and not self._retry and self._inflight == 0
            end = self._end if settled else None
            tags, self._tags = self._tags, None
        if tags is None and end is None:
            return True
        fields: dict[str, Any] = {"session_id": str(self.session_id)}
        if tags is not None:
            # Only when changed here: tags replace on the server, and another process of an
            # inherited session may have added its own.
            fields["tags"] = tags
        if end is not None:
            fields.update(end)
        elif self._video:
            fields["video"] = self._video
        result = self.api.update_session(conn, fields, deadline)
        if result is None:
            with self._pending_lock:
                if self._tags is None:
                    self._tags = tags  # unless newer ones came meanwhile
            return False
        self._update_answered(end, result)
        return True

    def _update_answered(self, end: dict | None, result: Result) -> None:
        if not result.ok:
            logger.warning(
                "agentops: the server refused the %s of session %s: %s",
                "end" if end is not None else "tags",
                self.session_id,
                result.message,
            )
            if end is not None:
                with self._pending_lock:
                    if self._end is end:
                        self._end = None
            return
        if end is None:
            return
        body = result.body if isinstance(result.body, dict) else {}
        # The server answers null when no call's cost is known, and a count of the calls of
        # unknown cost beside a partial sum (an older server: only the sum, unknown as "0").
        self.token_cost = decimal_or_none(body.get("token_cost"))
        unknown = body.get("cost_unknown_events")
        self.cost_unknown_events = unknown if isinstance(unknown, int) else None
        self.session_url = body.get("session_url") or self.session_url
        with self._pending_lock:
            if self._end is end:
                self._end = None
                self.end_confirmed = True

    # --- accounting -------------------------------------------------------------------------

    def _count(self, body: Any, chunk: list) -> None:
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

    def _fail(self, reason: str, *, log: bool = True) -> None:
        """The server will take nothing more of this session: say so once, with what was not
        delivered; from now on what is queued is counted as lost without a word each time."""
        if self.failure is not None:
            return
        self.failure = reason
        self._discard_all()
        if log:
            # Events still in flight on another thread are counted when it gets the same
            # refusal; end_session() says the total.
            logger.error(
                "agentops: session %s: %s. Its events (%d not delivered so far), tags and end "
                "state will not be recorded.",
                self.session_id,
                reason.rstrip("."),
                self.lost,
            )

    def _discard_all(self) -> int:
        """Count everything queued as lost (the session failed). The number discarded."""
        count = 0
        for queue in (self.queue, self._retry):
            while True:
                try:
                    queue.popleft()
                except IndexError:
                    break
                count += 1
        with self._pending_lock:
            self._agents.clear()
            self._tags = None
        self.lost += count
        return count

    def report_drops(self) -> None:
        """Warn about events dropped since the last report, naming why the buffer filled."""
        dropped = self.dropped
        if dropped <= self._dropped_reported:
            return
        trouble = self.api.last_trouble
        why = (
            f"the server did not take events ({trouble})"
            if trouble
            else "the server took events more slowly than they were recorded"
        )
        logger.warning(
            "agentops: the buffer of %d events filled while %s: dropped the %d oldest event(s) "
            "of session %s (%d in all)",
            self.cap,
            why,
            dropped - self._dropped_reported,
            self.session_id,
            dropped,
        )
        self._dropped_reported = dropped

    def warn_pending(self, during: str) -> None:
        """After a flush that ran out of time: what is still waiting, and that we keep trying."""
        self.report_drops()
        if self.failure is not None:
            return  # said when it failed
        pending = self.pending
        if pending or self._end is not None:
            logger.warning(
                "agentops: %s of session %s: %d event(s)%s not delivered yet: the server at %s "
                "did not answer within %gs. Still trying in the background while the process "
                "runs.",
                during,
                self.session_id,
                pending,
                " and the end state" if self._end is not None else "",
                self.config.endpoint,
                self.config.max_flush_time / 1000,
            )

    def warn_lost_at_exit(self) -> None:
        """After the exit's flush ran out of time: what the process takes with it."""
        self.report_drops()
        if self.failure is not None:
            return  # said when it failed
        if self.pending or self._end is not None:
            logger.warning(
                "agentops: the process is exiting: %d event(s)%s of session %s were never "
                "delivered: the server at %s did not answer in time",
                self.pending,
                " and the end state" if self._end is not None else "",
                self.session_id,
                self.config.endpoint,
            )
