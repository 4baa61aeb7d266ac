"""Dashboard page latency on the generated dataset (bench/generate.py, 10k sessions, 1M events).

In-process, through Django's test client with production settings (DJANGO_DEBUG=0): the time
measured is the server's time to produce the whole response (middleware, view, queries,
template), without network or browser. Each page is requested WARMUP times, then REPEAT times;
the figure is the p95 of those, next to the time its SQL took (the database's share, from the
same requests) and its query count, which must not depend on the data size.

    .venv/bin/python manage.py collectstatic --no-input   # DEBUG=0 serves hashed static names
    .venv/bin/python bench/pages.py [--repeat 20] [--profile PAGE]

--profile PAGE prints a cProfile of that page (by name, e.g. drill-down) to show what limits it.
"""

import argparse
import cProfile
import json
import pstats
import time

from common import machine, median, percentile, report, setup_production_django
from generate import DATASET_FILE

TARGET_MS = 300


def pages(dataset: dict) -> list[tuple[str, str]]:
    slug = dataset["project_slug"]
    drill = dataset["drill_session"]
    base = f"/p/{slug}"
    return [
        ("overview 7d", f"{base}/"),
        ("overview 30d", f"{base}/?range=30d"),
        ("session list", f"{base}/sessions/"),
        ("session list filtered", f"{base}/sessions/?tag=prod&end_state=Fail&has_errors=yes"),
        ("session list by model", f"{base}/sessions/?model=gpt-4o&sort=cost"),
        ("session list text search", f"{base}/sessions/?q=tag-1"),
        # Content search (events' search_text, pg_trgm): a phrase in most events, a tool name,
        # a model, a phrase in no event (the index must say "none" without a scan).
        ("search common phrase", f"{base}/sessions/?q=split+it+into+steps"),
        ("search tool name", f"{base}/sessions/?q=run_sql"),
        ("search model", f"{base}/sessions/?q=claude"),
        ("search no match", f"{base}/sessions/?q=zebra+crossing"),
        ("search + filters", f"{base}/sessions/?q=timeouterror&end_state=Fail"),
        ("session list by duration", f"{base}/sessions/?sort=duration"),
        ("drill-down 10k events", f"{base}/sessions/{drill}/"),
        ("drill-down page 150", f"{base}/sessions/{drill}/?page=150"),
        ("drill-down errors only", f"{base}/sessions/{drill}/?type=errors"),
        ("drill-down waterfall json", f"{base}/sessions/{drill}/timeline.json"),
    ]


def measure(client, url: str, repeat: int, warmup: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    times, sql_times, counts = [], [], set()
    size = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            body = b"".join(response) if response.streaming else response.content
            elapsed = time.perf_counter() - started
        assert response.status_code == 200, (url, response.status_code)
        size = len(body)
        times.append(elapsed * 1000)
        sql_times.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
        counts.add(len(queries.captured_queries))
    p95 = percentile(times, 0.95)
    return {
        "p50_ms": round(percentile(times, 0.50), 1),
        "p95_ms": round(p95, 1),
        "sql_ms_median": round(median(sql_times), 1),
        "queries": sorted(counts),
        "bytes": size,
        "ratio_to_target": round(p95 / TARGET_MS, 3),
        "met": p95 < TARGET_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile", default=None, help="name of a page to profile")
    parser.add_argument("--only", default=None, help="measure the pages whose name has this")
    args = parser.parse_args()
    dataset = json.loads(DATASET_FILE.read_text())
    setup_production_django(dataset["database_url"])
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=dataset["username"]))
    results = []
    for name, url in pages(dataset):
        if args.profile and args.profile != name:
            continue
        if args.only and args.only not in name:
            continue
        if args.profile:
            from django.db import connection
            from django.test.utils import CaptureQueriesContext

            client.get(url)
            profiler = cProfile.Profile()
            with CaptureQueriesContext(connection) as queries:
                profiler.enable()
                client.get(url)
                profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
            slowest = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:3]
            for q in slowest:
                print(f"--- {float(q['time']) * 1000:.1f} ms: {q['sql'][:1500]}")
            continue
        figures = measure(client, url, args.repeat, args.warmup)
        report("page", page=name, url=url, **figures)
        results.append(figures)
    if results:
        report(
            "pages",
            sessions=dataset["sessions"],
            events=dataset["events"],
            worst_p95_ms=max(r["p95_ms"] for r in results),
            all_met=all(r["met"] for r in results),
            target_ms=TARGET_MS,
            machine=machine(),
        )


if __name__ == "__main__":
    main()
