"""Agent programs that use our SDK (sdk/, import name `agentops`), run as subprocesses we own."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# How the agents print a line: ONE write(2), newline included. Their stderr is the same file,
# and the SDK's sender thread logs there ("INFO agentops: /v2/create_events HTTP 503: injected;
# retrying in 0.0s (attempt 1)"). print("event", id) makes four writes; a log line that landed
# between them cut the id off its "event " prefix ("eventINFO agentops: ...", then " <id>"), so
# the test missed an event the agent did send and then found it stored as an id nobody listed
# (the intermittent-503 test, about one run in two). The kernel keeps each write to a regular
# file whole, however the two threads' writes interleave. start_agent runs every script after
# this prelude.
SAY = r"""
import os
def say(line):
    data = (line + "\n").encode()
    while data:
        data = data[os.write(1, data):]
"""

# Records EVENTS tool events, one every PAUSE seconds, then ends the session (Success) and
# prints the session id first and "done" last. Every event id is printed, so the test knows
# exactly what was sent.
RECORDING_AGENT = r"""
import os, sys, time, agentops
n, pause = int(os.environ["EVENTS"]), float(os.environ["PAUSE"])
session = agentops.init(
    api_key=os.environ["KEY"], endpoint=os.environ["ENDPOINT"], instrument_llm_calls=False,
    max_wait_time=int(os.environ.get("MAX_WAIT_MS", "100")),
    max_flush_time=int(os.environ.get("FLUSH_MS", "60000")), env_data_opt_out=True,
)
say(f"session {session.session_id}")
for i in range(n):
    event = agentops.ToolEvent(name="step", params={"i": i}, returns="ok")
    agentops.record(event)
    say(f"event {event.id}")
    time.sleep(pause)
agentops.end_session("Success")
say("done")
"""


def agent_env(*, key: str, endpoint: str, events: int, pause: float, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOPS_")}
    env.update(
        KEY=key,
        ENDPOINT=endpoint,
        EVENTS=str(events),
        PAUSE=str(pause),
        PYTHONUNBUFFERED="1",
        **{k: str(v) for k, v in extra.items()},
    )
    return env


def start_agent(log_path: Path, script: str = RECORDING_AGENT, **env) -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115 - the child owns it; read back with agent_output
    return subprocess.Popen(
        [sys.executable, "-c", SAY + script],
        cwd=ROOT,
        env=agent_env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def agent_output(log_path: Path) -> tuple[str | None, list[str], bool, str]:
    """(session id, event ids printed, whether it printed done, the whole log)."""
    text = log_path.read_text(errors="replace")
    session_id, ids, done = None, [], False
    # The child writes unbuffered, so print()'s pieces land one by one: a line read while it
    # is being written ("event " without its id yet) is not a line until its newline.
    for line in complete_lines(text):
        if line.startswith("session "):
            session_id = line.split()[1]
        elif line.startswith("event "):
            ids.append(line.split()[1])
        elif line == "done":
            done = True
    return session_id, ids, done, text


def complete_lines(text: str) -> list[str]:
    return text.split("\n")[:-1]


# Records LLM events for DURATION seconds (one every PAUSE seconds), then ends the session.
LOAD_AGENT = r"""
import os, time, agentops
duration, pause = float(os.environ["DURATION"]), float(os.environ["PAUSE"])
session = agentops.init(
    api_key=os.environ["KEY"], endpoint=os.environ["ENDPOINT"], instrument_llm_calls=False,
    max_wait_time=500, max_flush_time=120000, env_data_opt_out=True,
)
say(f"session {session.session_id}")
end = time.monotonic() + duration
out = []
while time.monotonic() < end:
    event = agentops.LLMEvent(model="gpt-4o", prompt="Hello " * 20, completion="World " * 40,
                              prompt_tokens=20, completion_tokens=40)
    agentops.record(event)
    out.append(f"event {event.id}")
    time.sleep(pause)
agentops.end_session("Success")
say("\n".join(out))
say("done")
"""
