"""Shared pieces of the benchmarks: SDK-shaped events, Django setup, timing and reporting.

The benchmarks are scripts, not tests: each prints its figures as JSON lines (one per run and
one summary) so that BENCHMARKS.md can quote them and `make bench` can collect them.
"""

import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_BASE = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
T0 = datetime(2026, 10, 22, 0, 0, tzinfo=UTC)

MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022", "o3-mini", "my-finetune-v2"]
TOOLS = ["search_web", "read_file", "run_sql", "send_email", "calculator"]
ACTIONS = ["plan", "reflect", "route", "summarise"]
LOREM = (
    "The agent looked at the request, split it into steps, called the tools it needed and wrote "
    "an answer citing what it found. "
)


def pg_url(database: str) -> str:
    return f"{PG_BASE}/{database}"


def setup_django(database_url: str | None = None, **env: str) -> None:
    """Configure Django in this process against `database_url` (before any model import)."""
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    for name, value in env.items():
        os.environ[name] = value
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentops_site.settings")
    import django

    django.setup()


def setup_production_django(database_url: str) -> None:
    """setup_django with production settings (DEBUG off, static files from collectstatic),
    for timing pages and responses as a deployment serves them through the test client."""
    setup_django(
        database_url,
        DJANGO_DEBUG="0",
        SECRET_KEY="bench-secret-key-" + "x" * 48,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
    )


def ensure_database(name: str) -> str:
    """Create the Postgres database `name` if missing and migrate it; returns its URL."""
    import psycopg

    with psycopg.connect(pg_url("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_url(name)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        check=True,
    )
    return url


def iso(moment: datetime) -> str:
    return moment.isoformat()


def sdk_event(rng: random.Random, at: datetime, *, agent_id: str | None = None) -> dict:
    """One event as the official 0.3.x SDK sends it, ~1.4 KB of JSON on average.

    Mix: 50% LLM calls (chatml prompt, completion, tokens, no cost: the server prices them),
    25% tools, 15% actions, 5% errors, 5% API calls.
    """
    kind = rng.random()
    event = {
        "id": str(uuid.uuid4()),
        "init_timestamp": iso(at),
        "end_timestamp": iso(at + timedelta(milliseconds=rng.randint(50, 3000))),
        "agent_id": agent_id,
        "params": {"temperature": 0.2, "max_tokens": 512},
        "returns": None,
    }
    if kind < 0.5:
        pt, ct = rng.randint(200, 4000), rng.randint(20, 800)
        question = LOREM[: rng.randint(60, 120)]
        event.update(
            event_type="llms",
            thread_id=str(uuid.uuid4()),
            model=rng.choice(MODELS),
            prompt=[
                {"role": "system", "content": "You are a careful research assistant. " * 5},
                {"role": "user", "content": question * 3},
            ],
            completion={"role": "assistant", "content": LOREM * 5},
            prompt_tokens=pt,
            completion_tokens=ct,
        )
    elif kind < 0.75:
        event.update(
            event_type="tools",
            name=rng.choice(TOOLS),
            params={"query": LOREM[:80], "limit": 10},
            returns={"results": [LOREM[:100]] * 9},
            logs=None,
        )
    elif kind < 0.9:
        event.update(
            event_type="actions",
            action_type=rng.choice(ACTIONS),
            logs=LOREM * 4,
            screenshot=None,
            params={"plan": [LOREM[:90]] * 4},
            returns={"next": LOREM[:200]},
        )
    elif kind < 0.95:
        event.update(
            event_type="errors",
            error_type=rng.choice(["TimeoutError", "ValueError", "RateLimitError"]),
            code="E42",
            details="Traceback (most recent call last):\n" + "  File 'agent.py', line 7\n" * 25,
            logs=LOREM * 3,
            trigger_event=None,
        )
    else:
        event.update(
            event_type="apis",
            name="GET https://api.example.com/v1/items",
            method="GET",
            params={"headers": {"accept": "application/json"}, "query": {"page": 2}},
            returns={"status": 200, "body": LOREM * 4},
        )
    return event


def sdk_batch(rng: random.Random, at: datetime, n: int = 100) -> list[dict]:
    return [sdk_event(rng, at + timedelta(milliseconds=10 * i)) for i in range(n)]


def machine() -> dict:
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * fraction
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(name: str, **figures) -> None:
    """One JSON line on stdout: what BENCHMARKS.md quotes."""
    print(json.dumps({"bench": name, **figures}, default=str), flush=True)


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
