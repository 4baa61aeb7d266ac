"""A process that ends without end_session(): normal exit, SIGINT, SIGTERM, an exception."""

import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

pytestmark = pytest.mark.system  # agent subprocesses

PRELUDE = """
import os, sys, time, agentops
session = agentops.init(api_key=os.environ["KEY"], endpoint=os.environ["URL"], max_wait_time=60000,
                        skip_auto_end_session=os.environ.get("SKIP") == "1")
for i in range(25):
    agentops.record(agentops.ActionEvent(action_type="step", params={"i": i}))
print("ready", flush=True)
"""


def run(server, body, *, env=None, send=None):
    script = PRELUDE + textwrap.dedent(body)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env={"KEY": str(uuid.uuid4()), "URL": server.url, "PATH": "/usr/bin:/bin", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if send is not None:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        proc.send_signal(send)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def the_end(server):
    assert len(server.updates) == 1, server.updates
    return server.updates[0]


def test_exit_without_end_session_ends_it_indeterminate_after_sending_events(server):
    code, err = run(server, "")
    assert code == 0, err
    end = the_end(server)
    assert end["end_state"] == "Indeterminate"
    assert "exited without calling agentops.end_session" in end["end_state_reason"]
    assert len(server.events) == 25


def test_skip_auto_end_session_sends_the_events_but_does_not_end(server):
    code, err = run(server, "", env={"SKIP": "1"})
    assert code == 0, err
    assert server.updates == []
    assert len(server.events) == 25


def test_sigint_ends_indeterminate_then_raises_keyboard_interrupt(server):
    code, err = run(server, "time.sleep(30)", send=signal.SIGINT)
    end = the_end(server)
    assert end["end_state"] == "Indeterminate"
    assert end["end_state_reason"] == "user-triggered interrupt (SIGINT)"
    assert len(server.events) == 25
    assert "KeyboardInterrupt" in err
    assert code != 0


def test_sigterm_ends_indeterminate_then_dies_by_the_signal(server):
    code, _ = run(server, "time.sleep(30)", send=signal.SIGTERM)
    end = the_end(server)
    assert end["end_state_reason"] == "user-triggered interrupt (SIGTERM)"
    assert len(server.events) == 25
    assert code == -signal.SIGTERM


def test_a_program_handler_for_sigterm_still_runs(server):
    body = """
    import signal
    def bye(signum, frame):
        print("handler ran", file=sys.stderr, flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, bye)
    agentops.start_session()  # a second session: the handler is ours, installed at init
    time.sleep(30)
    """
    # The program replaced our handler after init: its own runs; the exit still ends sessions.
    code, err = run(server, body, send=signal.SIGTERM)
    assert code == 3 and "handler ran" in err
    assert {u["end_state"] for u in server.updates} == {"Indeterminate"}


def test_an_uncaught_exception_ends_the_session_as_fail_with_the_exception(server):
    code, err = run(server, "raise RuntimeError('the agent fell over')")
    assert code == 1
    end = the_end(server)
    assert end["end_state"] == "Fail"
    assert end["end_state_reason"].startswith("RuntimeError: the agent fell over")
    assert "Traceback" in end["end_state_reason"]
    assert "RuntimeError: the agent fell over" in err  # the program's own traceback still shows
    assert len(server.events) == 25


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_chains_to_the_handler_installed_before_init(server, sig):
    prelude_handler = f"""
import signal, sys
def before(signum, frame):
    print("previous handler", file=sys.stderr, flush=True)
    sys.exit(7)
signal.signal({int(sig)}, before)
"""
    script = prelude_handler + PRELUDE + "time.sleep(30)"
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env={"KEY": str(uuid.uuid4()), "URL": server.url, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 7 and "previous handler" in err
    assert the_end(server)["end_state_reason"] == f"user-triggered interrupt ({sig.name})"


def test_a_second_sigint_during_the_flush_neither_waits_out_the_window_nor_warns_falsely(server):
    # The server holds the first batch for 0.6 s, so the second SIGINT lands while the first
    # one's handler is sending it. That nested handler used to wait, in the same thread, for
    # the batch its own interrupted self was sending: the whole 10 s window, then a warning
    # that events and end state were never delivered, though the server had both.
    proc = subprocess.Popen(
        [sys.executable, "-c", PRELUDE + "time.sleep(30)"],
        env={"KEY": str(uuid.uuid4()), "URL": server.url, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    server.hang.set()
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.6)
    server.hang.clear()
    _, err = proc.communicate(timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed < 4, f"exited {elapsed:.1f}s after the first SIGINT"
    assert "KeyboardInterrupt" in err and proc.returncode != 0
    assert "never delivered" not in err and "not delivered" not in err
    assert len(server.events) == 25
    assert the_end(server)["end_state_reason"] == "user-triggered interrupt (SIGINT)"
