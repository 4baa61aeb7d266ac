"""SDK overhead: the caller-side cost of record(), ours beside the official agentops 0.3.26 SDK,
and what arrives: a 20k-event burst against gunicorn + Postgres with default settings.

Part 1 runs each SDK in its own process (the official one in its own venv) against the same
do-nothing HTTP endpoint in this process, so only the SDKs' own work is timed: each record()
call is timed alone (perf_counter around the call), events built beforehand: n calls of
session.record(), then n of the module function agentops.record().
Part 2 starts gunicorn on a scratch Postgres database, records 20,000 events in a burst with
our SDK's defaults, times end_session(), and reads back the server's count of the session's
events; the official SDK gets the same burst (2,000 events: it is slow) for its delivered ratio.

    .venv/bin/python bench/sdk_record.py [--events 5000] [--burst 20000] [--rounds 3]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import ROOT, ensure_database, machine, median, report  # also puts ROOT on sys.path
from ingest import start_gunicorn, stop_gunicorn

from tests.official_sdk import official_sdk_python

OURS = str(ROOT / ".venv/bin/python")

RECORD_SCRIPT = """
import json, os, statistics, sys, time, logging
import agentops
logging.disable(logging.CRITICAL)
n = int(os.environ["N"])
session = agentops.init(api_key=os.environ["KEY"], endpoint=os.environ["URL"])
t = time.perf_counter
built = []
build_times = []
for i in range(2 * n):
    s = t()
    built.append(agentops.ActionEvent(action_type="step", params={"i": i, "q": "what next"},
                                      returns="ok"))
    build_times.append(t() - s)
times = []
for event in built[:n]:
    s = t()
    session.record(event)
    times.append(t() - s)
module_times = []
for event in built[n:]:  # the call most agents make: the module function, one session
    s = t()
    agentops.record(event)
    module_times.append(t() - s)
s = t()
session.end_session("Success")
end = t() - s
print(json.dumps({
    "record_median_us": statistics.median(times) * 1e6,
    "record_mean_us": statistics.fmean(times) * 1e6,
    "record_p99_us": sorted(times)[int(0.99 * (n - 1))] * 1e6,
    "module_record_median_us": statistics.median(module_times) * 1e6,
    "module_record_mean_us": statistics.fmean(module_times) * 1e6,
    "build_median_us": statistics.median(build_times) * 1e6,
    "end_session_s": end,
}))
"""

BURST_SCRIPT = """
import json, os, time, logging
import agentops
logging.disable(logging.CRITICAL)
n = int(os.environ["N"])
session = agentops.init(api_key=os.environ["KEY"], endpoint=os.environ["URL"])
events = [agentops.ActionEvent(action_type="burst", params={"i": i}) for i in range(n)]
s = time.perf_counter()
for event in events:
    session.record(event)
recording = time.perf_counter() - s
s = time.perf_counter()
cost = session.end_session("Success")
end = time.perf_counter() - s
print(json.dumps({"session_id": str(session.session_id), "recording_s": recording,
                  "end_session_s": end}))
"""


class NullEndpoint(BaseHTTPRequestHandler):
    """Answers the v2 protocol at once and keeps nothing: only the SDKs are timed."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.endswith("/create_session"):
            body = {"status": "Success", "jwt": "x", "session_url": "http://x", "project_id": None}
        else:
            body = {"status": "success", "token_cost": "0", "accepted": 0, "duplicates": 0}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST


def run_script(python: str, script: str, env: dict, timeout: float = 900) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTOPS_", "VIRTUAL_ENV"))}
    result = subprocess.run(
        [python, "-c", textwrap.dedent(script)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/tmp",  # so the official venv does not see our sdk/ on sys.path
    )
    if result.returncode != 0:
        raise SystemExit(f"{python} failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record_cost(events: int, rounds: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), NullEndpoint)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "KEY": str(uuid.uuid4()),
        "URL": f"http://127.0.0.1:{server.server_address[1]}",
        "N": str(events),
    }
    official = str(official_sdk_python())
    ours_runs, official_runs = [], []
    for _ in range(rounds):
        # Interleaved, so both see the same machine load.
        ours_runs.append(run_script(OURS, RECORD_SCRIPT, env))
        official_runs.append(run_script(official, RECORD_SCRIPT, env))
    server.shutdown()
    ours = {k: median([r[k] for r in ours_runs]) for k in ours_runs[0]}
    theirs = {k: median([r[k] for r in official_runs]) for k in official_runs[0]}
    report(
        "sdk_record_cost",
        events=events,
        rounds=rounds,
        ours=ours,
        official=theirs,
        ratio_median=ours["record_median_us"] / theirs["record_median_us"],
        ratio_mean=ours["record_mean_us"] / theirs["record_mean_us"],
        ratio_module_median=ours["module_record_median_us"] / theirs["module_record_median_us"],
        ratio_module_mean=ours["module_record_mean_us"] / theirs["module_record_mean_us"],
        # The official SDK builds each event with a walk of the call stack (agent id lookup):
        # most of its caller-side cost is there, so the sum is the fairer comparison.
        ratio_build_plus_record=(ours["build_median_us"] + ours["record_median_us"])
        / (theirs["build_median_us"] + theirs["record_median_us"]),
        target_ratio=0.01,
        machine=machine(),
    )


def burst(events: int, official_events: int, rounds: int) -> None:
    url = ensure_database("bench_sdk")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
        "DJANGO_DEBUG": "1",
    }
    created = subprocess.run(
        [OURS, "manage.py", "createproject", f"bench-sdk-{uuid.uuid4().hex[:6]}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    gunicorn = start_gunicorn(env, port, workers=2)
    base = f"http://127.0.0.1:{port}"
    try:
        runs = []
        for _ in range(rounds):
            out = run_script(OURS, BURST_SCRIPT, {"KEY": key, "URL": base, "N": str(events)})
            out["delivered"] = server_count(base, key, out["session_id"])
            runs.append(out)
        official = run_script(
            str(official_sdk_python()),
            BURST_SCRIPT,
            {"KEY": key, "URL": base, "N": str(official_events)},
        )
        official["delivered"] = server_count(base, key, official["session_id"])
    finally:
        stop_gunicorn(gunicorn)
    report(
        "sdk_burst",
        events=events,
        rounds=rounds,
        server="gunicorn -w 2 + Postgres + Redis broker",
        delivered_ratio=[r["delivered"] / events for r in runs],
        end_session_s=[round(r["end_session_s"], 2) for r in runs],
        end_session_s_median=median([r["end_session_s"] for r in runs]),
        recording_s_median=median([r["recording_s"] for r in runs]),
        official={
            "events": official_events,
            "delivered_ratio": official["delivered"] / official_events,
            "end_session_s": round(official["end_session_s"], 2),
            "recording_s": round(official["recording_s"], 2),
        },
        machine=machine(),
    )


def server_count(base: str, key: str, session_id: str) -> int:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", f"/v2/sessions/{session_id}/stats", headers={"X-Agentops-Api-Key": key})
    return json.loads(conn.getresponse().read())["events"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000, help="record() calls timed per run")
    parser.add_argument("--burst", type=int, default=20_000)
    parser.add_argument("--official-burst", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-burst", action="store_true")
    args = parser.parse_args()
    record_cost(args.events, args.rounds)
    if not args.skip_burst:
        burst(args.burst, args.official_burst, args.rounds)


if __name__ == "__main__":
    sys.exit(main())
