"""Delivery: one background thread per Client sends every session's events in batches.

record() only appends to its session's queue. This thread wakes when a queue reaches
max_queue_size or every max_wait_time, turns events into JSON, and posts them (up to
max_batch_size events / max_batch_bytes per request). Connection errors, 5xx, 408 and 429 are
retried with capped exponential backoff (honouring Retry-After), always with the same event
ids, so a batch that reached the server before its answer was lost is counted there once.

end_session() and the exit handlers flush from the calling thread with a deadline, alongside
this thread, through the same functions (`flush`, `deliver`).
"""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Callable

from ._log import logger
from .transport import Connection, Result
from .wire import batch_body, encode_json, recorded_fields, to_wire

if TYPE_CHECKING:
    from .session import Session

BACKOFF_BASE = 0.25  # seconds
BURST_STEP = 0.002  # seconds between looks at a queue that is still growing
BURST_WAIT = 0.25  # at most this long before sending anyway
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 300.0

Items = list  # events in wire shape (dicts)


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def backoff_delay(attempt: int) -> float:
    """Capped exponential backoff with jitter, so many SDKs do not retry in lockstep."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(attempt - 1, 16)))
    return delay * random.uniform(0.75, 1.0)


class Deadline:
    """How long a flush may wait for the server: `window` seconds without progress. Each batch
    the server takes (from any thread) restarts the window, so a slow server that keeps taking
    events is waited for, and a server that is down costs at most one window."""

    def __init__(self, window: float, start: Deadline | None = None) -> None:
        self.window = window
        self.start = time.monotonic() if start is None else start

    def remaining(self, session: Session) -> float:
        return max(self.start, session._last_progress) + self.window - time.monotonic()


def decimal_or_none(value) -> Decimal | None:
    if value is None or value == "unknown":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


class Sender:
    def __init__(self) -> None:
        self._wake = threading.Event()
        self._kick = threading.Event()  # cuts the worker's backoff sleep short
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._sessions: dict = {}  # session_id -> Session with work, running or ending
        self._stopped = False

    # --- the agent's side -------------------------------------------------------------------

    def add(self, session: Session) -> None:
        self._sessions[session.session_id] = session
        self._ensure_thread()

    def notify(self) -> None:
        """A queue reached max_queue_size (called from record(), so: cheap)."""
        if not self._wake.is_set():
            self._wake.set()

    def kick(self) -> None:
        self._kick.set()
        self._wake.set()

    def after_fork(self) -> None:
        # The thread did not survive fork(); the child starts its own on first use.
        self._thread = None
        self._wake = threading.Event()
        self._kick = threading.Event()
        self._lock = threading.Lock()

    def _ensure_thread(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="agentops-sender", daemon=True
                )
                self._thread.start()

    # --- the worker -------------------------------------------------------------------------

    def _run(self) -> None:
        conn = Connection()
        while not self._stopped:
            sessions = list(self._sessions.values())
            interval = min((s.config.max_wait_time for s in sessions), default=5000) / 1000
            self._wake.wait(interval)
            self._wake.clear()
            self._let_the_burst_end(sessions)
            for session in sessions + [s for s in self._sessions.values() if s not in sessions]:
                try:
                    self.service(conn, session)
                except Exception:  # the worker must outlive any bug; say so loudly
                    logger.exception("agentops: unexpected error while sending; will retry")
                    time.sleep(1)
                if session.idle and not session.is_running:
                    self._sessions.pop(session.session_id, None)

    def _let_the_burst_end(self, sessions: list) -> None:
        """While the agent is still recording in a tight loop, wait (BURST_STEP at a time, at most
        BURST_WAIT) for its queues to stop growing before turning events into JSON.

        That work (~7 us an event) holds the interpreter lock: done mid-burst, it lands on the
        recording thread's record() calls (bench/sdk_record.py). Agents mostly wait on the
        network, so a quiet moment comes within milliseconds; a queue half way to its cap is
        sent at once, so nothing is dropped for waiting.
        """
        deadline = time.monotonic() + BURST_WAIT
        sizes = [len(s._queue) for s in sessions]
        while not self._stopped and time.monotonic() < deadline:
            if any(n * 2 >= s._cap for n, s in zip(sizes, sessions, strict=True)):
                return
            _pause(BURST_STEP)
            now = [len(s._queue) for s in sessions]
            if now == sizes:
                return
            sizes = now

    def service(self, conn: Connection, session: Session, deadline: Deadline | None = None) -> bool:
        """Send everything pending for the session. True when nothing is left to send."""
        if session._dead is not None:
            session._discard_all()
            return True
        if not session._registered and not self.register(conn, session, deadline):
            return False
        while True:
            items = self.take_batch(session)
            if items is None:
                break
            try:
                done = self.deliver(conn, session, items, deadline)
            finally:
                session._batch_done(len(items))
            if not done:
                return False
        if not self.send_updates(conn, session, deadline):
            return False
        session._report_drops()
        return True

    # --- building and sending batches -------------------------------------------------------

    def take_batch(self, session: Session) -> Items | None:
        """Up to one request's worth of events in wire shape; None when there are none.
        Marks a batch in flight before taking anything, so a flush that finds the queue empty
        knows to wait for it."""
        session._batch_started()
        max_events = session.config.max_batch_size
        items: Items = []
        retry = session._retry
        queue = session._queue
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
            session._batch_done()
            return None
        session._batch_taken(len(items))
        return items

    def deliver(
        self, conn: Connection, session: Session, items: Items, deadline: Deadline | None
    ) -> bool:
        """Post the events (halving a batch over max_batch_bytes or refused with 413). False:
        the deadline passed first; the events not yet confirmed go back to the head of the
        session's queue, in order."""
        pending = [items]
        while pending:
            chunk = pending.pop()
            if session._dead is not None:
                session._lose(len(chunk), session._dead)
                continue
            body = batch_body(chunk)
            if len(body) > session.config.max_batch_bytes and len(chunk) > 1:
                half = len(chunk) // 2
                pending.extend([chunk[half:], chunk[:half]])
                continue
            result = self.call(conn, session, "/v2/create_events", body, deadline=deadline)
            if result is None:
                for rest in [chunk, *reversed(pending)]:
                    session._retry.extendleft(reversed(rest))
                return False
            if result.ok:
                session._count_delivery(result.body, chunk)
            elif result.status == 413 and len(chunk) > 1:
                half = len(chunk) // 2
                pending.extend([chunk[half:], chunk[:half]])
            else:
                session._lose(len(chunk), f"the server refused them: {result.message}")
                if result.status in (401, 403, 404):
                    session._dead = f"the server no longer accepts this session: {result.message}"
        return True

    def send_updates(self, conn: Connection, session: Session, deadline: Deadline | None) -> bool:
        """Agents, tag changes and the end state, sent by one thread at a time (the worker and
        end_session() may both get here; the end must reach the server once)."""
        if not (session._agents_pending or session._tags_dirty or session._end_payload):
            return True
        timeout = -1 if deadline is None else max(0.0, deadline.remaining(session))
        if not session._update_lock.acquire(timeout=timeout):
            return False
        try:
            return self._send_updates(conn, session, deadline)
        finally:
            session._update_lock.release()

    def _send_updates(self, conn: Connection, session: Session, deadline: Deadline | None) -> bool:
        for agent in session._take_agents():
            body = encode_json(agent)
            result = self.call(conn, session, "/v2/create_agent", body, deadline=deadline)
            if result is None:
                session._agents_pending.insert(0, agent)
                return False
            if not result.ok:
                logger.warning(
                    "agentops: agent %s of session %s not registered: %s",
                    agent.get("name"),
                    session.session_id,
                    result.message,
                )
        # The end goes only once every event is in: the cost it answers must include them all.
        with_end = session._end_payload is not None and session._events_settled()
        if session._tags_dirty or with_end:
            payload = session._update_payload(with_end)
            result = self.call(
                conn, session, "/v2/update_session", encode_json(payload), deadline=deadline
            )
            if result is None:
                session._tags_dirty = session._tags_dirty or "tags" in payload["session"]
                return False
            session._update_answered(payload, result)
        return True

    def register(self, conn: Connection, session: Session, deadline: Deadline | None) -> bool:
        body = encode_json({"session": session._create_payload()})
        result = self.call(conn, session, "/v2/create_session", body, deadline=deadline, auth="key")
        if result is None:
            return False
        if result.ok and isinstance(result.body, dict) and result.body.get("jwt"):
            session._on_registered(result.body)
            return True
        session._dead = f"the server refused to start the session: {result.message}"
        session._discard_all()
        return False

    def reauthorize(self, conn: Connection, session: Session, deadline: Deadline | None) -> Result:
        body = encode_json({"session_id": str(session.session_id)})
        result = self.call(
            conn, session, "/v2/reauthorize_jwt", body, deadline=deadline, auth="key"
        )
        if result is None:
            return Result(0, error="deadline passed")
        if result.ok and isinstance(result.body, dict) and result.body.get("jwt"):
            session.jwt = result.body["jwt"]
        return result

    def call(
        self,
        conn: Connection,
        session: Session,
        path: str,
        body: bytes | None,
        *,
        deadline: Deadline | None,
        auth: str = "jwt",
        method: str = "POST",
        sleep: Callable[[float], None] | None = None,
    ) -> Result | None:
        """One protocol call, retried until it gets an answer that is not worth retrying.
        None: the deadline passed first. A 401 on a session token re-authorizes once."""
        config = session.config
        url = config.endpoint + path
        attempt = 0
        reauthorized = False
        while True:
            timeout = config.request_timeout / 1000
            if deadline is not None:
                remaining = deadline.remaining(session)
                if remaining <= 0:
                    return None
                timeout = min(timeout, remaining)
            if auth == "jwt":
                jwt = session.jwt
                result = conn.request(method, url, body, jwt=jwt, timeout=timeout)
                if result.status == 401 and not reauthorized:
                    reauthorized = True
                    if session.jwt != jwt:  # another thread re-authorized meanwhile
                        continue
                    renewed = self.reauthorize(conn, session, deadline)
                    if renewed.ok:
                        continue
                    result = renewed if renewed.retryable else result
            else:
                result = conn.request(method, url, body, api_key=config.api_key, timeout=timeout)
            if not result.retryable:
                return result
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
            if deadline is not None and wait > deadline.remaining(session):
                return None
            if sleep is not None:
                sleep(wait)
            elif threading.current_thread() is self._thread:
                self._kick.wait(wait)
                self._kick.clear()
            else:
                time.sleep(wait)

    # --- flushing from the caller's thread ----------------------------------------------------

    def flush(self, session: Session, deadline: Deadline) -> bool:
        """Deliver the session's pending events (and updates) before the deadline, sending from
        this thread while the worker does too; then wait for the worker's batch in flight."""
        conn = Connection()
        try:
            done = self.service(conn, session, deadline)
        finally:
            conn.close()
        if not done:
            return False
        self.kick()  # if the worker is sleeping out a backoff with our batch, retry it now
        if not session._wait_idle(deadline):
            return False
        if session._end_payload is None and not session._tags_dirty:
            return True
        conn = Connection()
        try:
            return self.send_updates(conn, session, deadline) and session._end_payload is None
        finally:
            conn.close()
