"""Ending sessions when the process ends without end_session().

- normal exit with sessions running: Indeterminate, after sending what is queued (unless
  skip_auto_end_session; the queue is sent either way);
- SIGINT / SIGTERM: Indeterminate, "user-triggered interrupt (SIGINT)", then whatever the
  signal would have done (KeyboardInterrupt, the previous handler, or death by the signal);
  a signal that arrives while that flush runs (a double Ctrl-C) changes nothing; one that
  arrives during the flush of a normal exit cuts it short;
- an uncaught exception: Fail, with the exception and its traceback as the reason.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import traceback
import weakref

from ._log import logger
from .session import EndState

EXIT_REASON = "N/A (process exited without calling agentops.end_session(...))"

_clients: weakref.WeakSet = weakref.WeakSet()
_installed = False
_install_lock = threading.Lock()
_previous_handlers: dict = {}
_previous_excepthook = None


def register(client) -> None:
    _clients.add(client)


# The thread ending the sessions right now, and whether a signal made it: a signal handler runs
# in the main thread on top of whatever it interrupted, which may be our own flush.
_ending_in: int | None = None
_ending_for_a_signal = False


def _end_all(end_state, reason: str, *, at_exit: bool = False) -> None:
    global _ending_in
    _ending_in = threading.get_ident()
    try:
        for client in list(_clients):
            try:
                client.end_for_exit(end_state, reason, at_exit=at_exit)
            except Exception:  # never let our cleanup hide the program's own exit
                logger.exception("agentops: could not end the sessions at exit")
    finally:
        _ending_in = None


def _at_exit() -> None:
    _end_all(EndState.INDETERMINATE, EXIT_REASON, at_exit=True)


def _on_signal(signum, frame) -> None:
    global _ending_for_a_signal
    if _ending_in == threading.get_ident():
        # We interrupted our own flush (a second Ctrl-C, or one during the exit's flush).
        # Flushing again here would wait, in this very thread, for the batch and the locks the
        # interrupted flush holds: the whole max_flush_time, then a false "never delivered".
        if _ending_for_a_signal:
            return  # the first signal's handler finishes the flush, then does what it would
        _chain(signum, frame)  # a Ctrl-C during the exit's flush: stop waiting, as asked
        return
    name = signal.Signals(signum).name
    _ending_for_a_signal = True
    try:
        _end_all(EndState.INDETERMINATE, f"user-triggered interrupt ({name})")
    finally:
        _ending_for_a_signal = False
    _chain(signum, frame)


def _chain(signum, frame) -> None:
    """Do what the signal would have done without us."""
    previous = _previous_handlers.get(signum)
    if callable(previous):
        previous(signum, frame)  # e.g. Python's default_int_handler: KeyboardInterrupt
        return
    if previous == signal.SIG_IGN:
        return
    # SIG_DFL (or a handler set outside Python): die by the signal, as we would have.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _excepthook(exc_type, exc, tb) -> None:
    try:
        if issubclass(exc_type, KeyboardInterrupt):
            _end_all(EndState.INDETERMINATE, "user-triggered interrupt (SIGINT)")
        else:
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            _end_all(EndState.FAIL, f"{exc_type.__name__}: {exc}\n\n{text}")
    finally:
        (_previous_excepthook or sys.__excepthook__)(exc_type, exc, tb)


def install() -> None:
    """Install the handlers once per process; signals only from the main thread (Python
    allows no other)."""
    global _installed, _previous_excepthook
    with _install_lock:
        if _installed:
            return
        _installed = True
        atexit.register(_at_exit)
        _previous_excepthook = sys.excepthook
        sys.excepthook = _excepthook
        if threading.current_thread() is not threading.main_thread():
            logger.info("agentops: initialised outside the main thread; SIGINT/SIGTERM not handled")
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)
            if previous == signal.SIG_IGN:
                continue  # the program chose to ignore it: so do we
            _previous_handlers[signum] = previous
            signal.signal(signum, _on_signal)


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
