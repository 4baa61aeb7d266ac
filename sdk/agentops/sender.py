"""Delivery in the background: one thread per Client drains every session's Delivery.

record() only appends to its session's queue. This thread wakes when a queue reaches
max_queue_size or every max_wait_time, turns events into JSON, and posts them (up to
max_batch_size events / max_batch_bytes per request). Connection errors, 5xx, 408 and 429 are
retried with capped exponential backoff (honouring Retry-After), always with the same event
ids, so a batch that reached the server before its answer was lost is counted there once.

end_session() and the exit handlers flush from the calling thread with a deadline, alongside
this thread, through the same Delivery.service().
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from uuid import UUID

from ._log import logger
from .config import Configuration
from .delivery import Delivery
from .protocol import Deadline
from .transport import Connection

BURST_STEP = 0.002  # seconds between looks at a queue that is still growing
BURST_WAIT = 0.25  # at most this long before sending anyway


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def let_the_burst_end(deliveries: list[Delivery], stopped=lambda: False) -> None:
    """While the agent is still recording in a tight loop, wait (BURST_STEP at a time, at most
    BURST_WAIT seconds) for the deliveries' queues to stop growing before turning events into
    JSON.

    That work (~7 us an event) holds the interpreter lock: done mid-burst, it lands on the
    recording thread's record() calls (bench/sdk_record.py). Agents mostly wait on the
    network, so a quiet moment comes within milliseconds; a queue half way to its cap is
    sent at once, so nothing is dropped for waiting.
    """
    deadline = time.monotonic() + BURST_WAIT
    sizes = [len(d.queue) for d in deliveries]
    while not stopped() and time.monotonic() < deadline:
        if any(n * 2 >= d.cap for n, d in zip(sizes, deliveries, strict=True)):
            return
        _pause(BURST_STEP)
        now = [len(d.queue) for d in deliveries]
        if now == sizes:
            return
        sizes = now


class Sender:
    """The background sender of one Client. `open()` gives each session its Delivery; the
    worker thread (started on first use, again after fork) services every open delivery until
    it is closed and has nothing left to send."""

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._kick = threading.Event()  # cuts the worker's backoff sleep short
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._deliveries: dict[UUID, Delivery] = {}  # with work: running or ending
        self._stopped = False

    # --- the agent's side -------------------------------------------------------------------

    def open(self, session_id: UUID, config: Configuration, create_fields: dict) -> Delivery:
        """A Delivery for a new session; the worker starts servicing it once `start(...)`."""
        return Delivery(
            session_id,
            config,
            create_fields,
            wake=self.notify,
            kick=self.kick,
            sleep=self._backoff_sleep,
        )

    def start(self, delivery: Delivery) -> None:
        """Service the delivery in the background from now on."""
        self._deliveries[delivery.session_id] = delivery
        self._ensure_thread()

    def deliveries(self) -> list[Delivery]:
        """The deliveries the worker still services (running sessions and ended ones with
        something left to send)."""
        return list(self._deliveries.values())

    def notify(self) -> None:
        """A queue reached max_queue_size (called from record(), so: cheap)."""
        if not self._wake.is_set():
            self._wake.set()

    def kick(self) -> None:
        self._kick.set()
        self._wake.set()

    def flush_all(self, deadline: Deadline) -> list[Delivery]:
        """Flush every delivery that has something to send, one after the other within the one
        deadline (a server that is down delays the exit once, not per session). Returns those
        that did not finish."""
        unfinished = []
        for delivery in self.deliveries():
            if not delivery.idle and not delivery.flush(deadline):
                unfinished.append(delivery)
        return unfinished

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

    def _backoff_sleep(self, seconds: float) -> None:
        if threading.current_thread() is self._thread:
            self._kick.wait(seconds)  # a flush kicks it: retry its batch at once
            self._kick.clear()
        else:
            time.sleep(seconds)

    # --- the worker -------------------------------------------------------------------------

    def _run(self) -> None:
        conn = Connection()
        while not self._stopped:
            deliveries = self.deliveries()
            interval = min((d.config.max_wait_time for d in deliveries), default=5000) / 1000
            self._wake.wait(interval)
            self._wake.clear()
            let_the_burst_end(deliveries, lambda: self._stopped)
            self._service(conn, _with_newcomers(deliveries, self.deliveries()))

    def _service(self, conn: Connection, deliveries: Iterable[Delivery]) -> None:
        for delivery in deliveries:
            try:
                delivery.service(conn)
            except Exception:  # the worker must outlive any bug; say so loudly
                logger.exception("agentops: unexpected error while sending; will retry")
                time.sleep(1)
            if delivery.closed and delivery.idle:
                self._deliveries.pop(delivery.session_id, None)


def _with_newcomers(seen: list[Delivery], now: list[Delivery]) -> list[Delivery]:
    return seen + [d for d in now if d not in seen]
