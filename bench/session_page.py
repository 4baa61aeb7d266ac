"""The session page at 10,000 events: the page itself and the trace view's JSON requests.

Two sessions of 10,000 events each, made once in their own Postgres database
(agentops_bench_trace) and kept for later runs:
- v2-shaped: four named agents, LLM calls with chat prompts and completions, tool calls,
  actions and 40 errors each under the call that triggered it;
- OTLP-shaped: a span tree 10 agents wide, each agent a chain of 100 nested task spans with
  9 tool/LLM spans under every task (depth 102 at the deepest), like agentops 0.4's spans.

In-process through Django's test client with production settings (DJANGO_DEBUG=0), as
bench/pages.py measures: server time for the whole response, no network, no browser. Each
request is made WARMUP times, then REPEAT times; p50/p95 of those, the SQL share, the query
count and the response size. The tree requests of an ended session reuse the tree this process
built (dashboard/trace.py session_tree); the "cold" rows forget it before every request.

    .venv/bin/python manage.py collectstatic --no-input   # DEBUG=0 serves hashed static names
    .venv/bin/python bench/session_page.py [--repeat 20] [--profile NAME]
"""

import argparse
import cProfile
import pstats
import random
import time
import uuid
from datetime import timedelta
from decimal import Decimal

from common import (
    LOREM,
    MODELS,
    T0,
    TOOLS,
    ensure_database,
    machine,
    median,
    percentile,
    report,
    setup_production_django,
)

EVENTS = 10_000
NS = uuid.UUID("6f2b1d7e-1c55-4d8e-9a57-0c0ffee00017")
V2_SESSION = uuid.uuid5(NS, "v2")
OTLP_SESSION = uuid.uuid5(NS, "otlp")
TARGET_MS = 300  # bench/pages.py's ceiling for a dashboard page


def _id(*parts) -> uuid.UUID:
    return uuid.uuid5(NS, "/".join(map(str, parts)))


def _llm_payload(rng: random.Random, i: int) -> dict:
    return {
        "prompt": [
            {"role": "system", "content": "You are a research agent. " + LOREM},
            {"role": "user", "content": f"Step {i}: " + LOREM * rng.randint(1, 4)},
        ],
        "completion": {"role": "assistant", "content": "```python\nprint(42)\n```\n" + LOREM},
    }


def make_v2(project) -> None:
    from events.models import Event
    from sessions.models import Agent, Session
    from sessions.totals import set_totals_from_events

    rng = random.Random(17)
    session = Session.objects.create(
        id=V2_SESSION, project=project, init_timestamp=T0, end_timestamp=T0 + timedelta(hours=1),
        end_state="Fail", end_state_reason="crashed", last_seen_at=T0,
    )  # fmt: skip
    agents = [Agent.objects.create(id=_id("agent", a), session=session, name=f"agent-{a}")
              for a in range(4)]  # fmt: skip
    rows = []
    for i in range(EVENTS):
        at = T0 + timedelta(milliseconds=350 * i)
        kind = "errors" if i % 250 == 249 else ("llms", "tools", "actions")[i % 3]
        fields = {"agent_id": agents[i * 4 // EVENTS].id,
                  "end_timestamp": None if kind == "errors" else at + timedelta(milliseconds=300)}  # fmt: skip  # noqa: E501
        if kind == "llms":
            fields.update(model=rng.choice(MODELS), prompt_tokens=800, completion_tokens=120,
                          cost=Decimal("0.0031"), cost_source="sdk",
                          payload=_llm_payload(rng, i))  # fmt: skip
        elif kind == "errors":
            fields.update(name="ToolError", trigger_event_id=rows[-1].id,
                          payload={"details": "failed", "logs": "ValueError"})  # fmt: skip
        else:
            fields.update(
                name=rng.choice(TOOLS), payload={"params": {"q": LOREM}, "returns": LOREM}
            )
        rows.append(Event(id=_id("v2", i), session=session, project_id=project.id,
                          event_type=kind, init_timestamp=at, **fields))  # fmt: skip
    Event.objects.bulk_create(rows, batch_size=2000)
    set_totals_from_events(session.pk)


def make_otlp(project) -> None:
    from events.models import Event
    from sessions.models import Session
    from sessions.totals import set_totals_from_events

    rng = random.Random(18)
    root_span = "f" * 16
    session = Session.objects.create(
        id=OTLP_SESSION, project=project, init_timestamp=T0, end_timestamp=T0 + timedelta(hours=1),
        end_state="Success", last_seen_at=T0, protocol="otlp",
        root_span={"span_id": root_span, "name": "bench.session", "attributes": {}},
    )  # fmt: skip
    rows: list = []

    def span(kind, name, parent, at, ms, **fields):
        n = len(rows)
        span_id = f"{n + 1:016x}"
        rows.append(Event(
            id=_id("otlp", n), session=session, project_id=project.id, event_type=kind,
            init_timestamp=at, end_timestamp=at + timedelta(milliseconds=ms), name=name,
            span_id=span_id, parent_span_id=parent,
            payload={"otel": {"name": name, "kind": "INTERNAL"}, **fields.pop("payload", {})},
            **fields,
        ))  # fmt: skip
        return span_id

    at = T0
    for a in range(10):
        agent = span("actions", f"agent-{a}.agent", root_span, at, 300_000)
        parent = agent
        for t in range(100):
            at += timedelta(milliseconds=30)
            parent = span("actions", f"task-{t}.task", parent, at, 200)
            for k in range(9):
                if len(rows) >= EVENTS:
                    break
                if k % 3 == 0:
                    span("llms", "openai.chat", parent, at, 120, model=rng.choice(MODELS),
                         prompt_tokens=500, completion_tokens=80, cost=Decimal("0.002"),
                         cost_source="price_table", payload=_llm_payload(rng, k))  # fmt: skip
                else:
                    span("tools", rng.choice(TOOLS), parent, at, 15)
    Event.objects.bulk_create(rows[:EVENTS], batch_size=2000)
    set_totals_from_events(session.pk)


def prepare() -> dict:
    from django.contrib.auth import get_user_model

    from events.models import Event
    from projects.models import Membership, Project
    from sessions.models import Session

    user, _ = get_user_model().objects.get_or_create(username="bench-trace")
    project, _ = Project.objects.get_or_create(slug="bench-trace", defaults={"name": "bench"})
    Membership.objects.get_or_create(project=project, user=user, defaults={"role": "owner"})
    for sid, make in ((V2_SESSION, make_v2), (OTLP_SESSION, make_otlp)):
        if Event.objects.filter(session_id=sid).count() != EVENTS:
            Session.objects.filter(pk=sid).delete()
            make(project)
    deepest = (
        Event.objects.filter(session_id=OTLP_SESSION, name="task-99.task")
        .order_by("-init_timestamp")
        .first()
    )
    last_error = (
        Event.objects.filter(session_id=V2_SESSION, event_type="errors")
        .order_by("-init_timestamp")
        .first()
    )
    return {"user": user, "slug": project.slug, "deepest": deepest, "last_error": last_error}


def requests(ctx: dict) -> list[tuple[str, str]]:
    v2 = f"/p/{ctx['slug']}/sessions/{V2_SESSION}/"
    otlp = f"/p/{ctx['slug']}/sessions/{OTLP_SESSION}/"
    agent = f"agent:{_id('agent', 3)}"
    return [
        ("v2 page", v2),
        ("v2 page focus", f"{v2}?focus={ctx['last_error'].id}"),
        ("v2 tree top, cold", f"{v2}tree.json"),
        ("v2 tree top", f"{v2}tree.json"),
        ("v2 tree agent children", f"{v2}tree.json?parent={agent}"),
        ("v2 tree agent children page 12", f"{v2}tree.json?parent={agent}&offset=2400"),
        ("v2 tree focus last error", f"{v2}tree.json?focus={ctx['last_error'].id}"),
        ("v2 event detail", f"{v2}events/{_id('v2', 9997)}/"),
        ("v2 waterfall json", f"{v2}timeline.json"),
        ("v2 status", f"{v2}status.json"),
        ("otlp page", otlp),
        ("otlp tree top, cold", f"{otlp}tree.json"),
        ("otlp tree top", f"{otlp}tree.json"),
        ("otlp tree focus depth 102", f"{otlp}tree.json?focus={ctx['deepest'].id}"),
        ("otlp event detail", f"{otlp}events/{ctx['deepest'].id}/"),
        ("otlp waterfall json", f"{otlp}timeline.json"),
    ]


def measure(client, url: str, repeat: int, warmup: int, *, cold: bool = False) -> dict:
    """Timings of `url`; `cold` forgets the process's built trees before each request (the
    first request for a session, or one after new events arrived)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from dashboard import trace

    for _ in range(warmup):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    times, sql_times, counts = [], [], set()
    for _ in range(repeat):
        if cold:
            trace._KEPT.clear()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            body = response.content
            elapsed = time.perf_counter() - started
        assert response.status_code == 200, (url, response.status_code)
        times.append(elapsed * 1000)
        sql_times.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
        counts.add(len(queries.captured_queries))
    p95 = percentile(times, 0.95)
    return {
        "p50_ms": round(percentile(times, 0.50), 1),
        "p95_ms": round(p95, 1),
        "sql_ms_median": round(median(sql_times), 1),
        "queries": sorted(counts),
        "bytes": len(body),
        "met": p95 < TARGET_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile", default=None, help="name of a request to profile")
    parser.add_argument("--only", default="", help="only the requests whose name has this")
    args = parser.parse_args()
    setup_production_django(ensure_database("agentops_bench_trace"))
    from django.test import Client

    ctx = prepare()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(ctx["user"])
    results = []
    for name, url in requests(ctx):
        if args.only not in name:
            continue
        if args.profile:
            if args.profile == name:
                client.get(url)
                profiler = cProfile.Profile()
                profiler.enable()
                client.get(url)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            continue
        figures = measure(client, url, args.repeat, args.warmup, cold=name.endswith("cold"))
        report("session_page", request=name, **figures)
        results.append(figures)
    if results:
        report(
            "session_page_summary",
            events_per_session=EVENTS,
            worst_p95_ms=max(r["p95_ms"] for r in results),
            all_met=all(r["met"] for r in results),
            target_ms=TARGET_MS,
            machine=machine(),
        )


if __name__ == "__main__":
    main()
