"""Streamed export of the generated 100k-event session: events/s and peak memory.

Each run is a fresh process (so its peak RSS is the export's), serving
GET /v2/sessions/{id}/export through Django's test client with production settings and reading
the streamed body chunk by chunk, as a client would, without keeping it. Peers measured in the
same run:

- raw fetch: a plain fetch of the same rows into Python (psycopg, server-side cursor, same
  order), what reading them as Python objects costs at all (the export's way before it had
  Postgres write the JSON);
- payload COPY: Postgres serialising only the rows' payloads to JSON text, streamed by a binary
  COPY in time order and dropped by the client: the ceiling for any export that sends each
  payload's JSON (the export writes that and ~10 more fields per row, by the same COPY).

    .venv/bin/python bench/export.py [--rounds 3]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from common import median, report, setup_production_django
from generate import DATASET_FILE

TARGET_EVENTS_PER_S = 50_000
TARGET_PEAK_MB = 150


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str) -> None:
    dataset = json.loads(DATASET_FILE.read_text())
    setup_production_django(dataset["database_url"])
    from django.db import connection
    from django.test import Client

    session_id = dataset["export_session"]
    client = Client(HTTP_HOST="127.0.0.1")
    # Warm the imports and the connection, not the rows.
    client.get("/healthz")
    baseline = rss_mb()
    events = 0
    size = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    if kind == "export":
        response = client.get(
            f"/v2/sessions/{session_id}/export", HTTP_X_AGENTOPS_API_KEY=dataset["api_key"]
        )
        assert response.status_code == 200, response.status_code
        assert response.streaming
        for chunk in response.streaming_content:
            size += len(chunk)
            # Chunks hold whole rows (see events/export.py), so this counts events exactly.
            events += chunk.count(b'"event_type":')
    elif kind == "copy":
        copy_sql = (
            "COPY (SELECT payload::text FROM events_event WHERE session_id = %s "
            "ORDER BY init_timestamp, id) TO STDOUT (FORMAT binary)"
        )
        with connection.connection.cursor() as cursor, cursor.copy(copy_sql, [session_id]) as copy:
            for data in copy:
                events += 1
                size += len(data)
        events -= 1  # the COPY's trailer
    else:
        with (
            connection.connection.transaction(),
            connection.connection.cursor(name="raw") as cursor,
        ):
            cursor.itersize = 2000
            cursor.execute(
                "SELECT * FROM events_event WHERE session_id = %s ORDER BY init_timestamp, id",
                [session_id],
            )
            for row in cursor:
                events += 1
                size += len(row)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "events": events,
                "seconds": elapsed,
                "python_cpu_seconds": cpu,
                "bytes": size,
                "peak_rss_mb": rss_mb(),
                "baseline_rss_mb": baseline,
            }
        )
    )


def run_child(kind: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    run_child("raw")  # warm the cache for both sides of the ratio
    runs = []
    for n in range(args.rounds):
        raw = run_child("raw")
        copy = run_child("copy")
        export = run_child("export")
        figures = {
            "round": n,
            "events": export["events"],
            "export_events_per_s": round(export["events"] / export["seconds"]),
            "raw_fetch_rows_per_s": round(raw["events"] / raw["seconds"]),
            "ratio_to_raw_fetch": round(
                (export["events"] / export["seconds"]) / (raw["events"] / raw["seconds"]), 3
            ),
            "payload_copy_rows_per_s": round(copy["events"] / copy["seconds"]),
            "ratio_to_payload_copy": round(
                (export["events"] / export["seconds"]) / (copy["events"] / copy["seconds"]), 3
            ),
            "export_seconds": round(export["seconds"], 3),
            # This process's CPU over the export's wall time: well under 1 when it waits on
            # Postgres writing the rows (its backend works on the other core meanwhile).
            "export_python_cpu_share": round(export["python_cpu_seconds"] / export["seconds"], 2),
            "export_mb": round(export["bytes"] / 2**20, 1),
            "peak_rss_mb": round(export["peak_rss_mb"], 1),
            "baseline_rss_mb": round(export["baseline_rss_mb"], 1),
        }
        report("export-round", **figures)
        runs.append(figures)
    rate = median([r["export_events_per_s"] for r in runs])
    peak = max(r["peak_rss_mb"] for r in runs)
    report(
        "export",
        events=runs[0]["events"],
        export_events_per_s=rate,
        raw_fetch_rows_per_s=median([r["raw_fetch_rows_per_s"] for r in runs]),
        ratio_to_raw_fetch=median([r["ratio_to_raw_fetch"] for r in runs]),
        payload_copy_rows_per_s=median([r["payload_copy_rows_per_s"] for r in runs]),
        ratio_to_payload_copy=median([r["ratio_to_payload_copy"] for r in runs]),
        ratio_to_target_rate=round(rate / TARGET_EVENTS_PER_S, 2),
        export_python_cpu_share=median([r["export_python_cpu_share"] for r in runs]),
        peak_rss_mb=peak,
        met=rate >= TARGET_EVENTS_PER_S and peak < TARGET_PEAK_MB,
    )


if __name__ == "__main__":
    main()
