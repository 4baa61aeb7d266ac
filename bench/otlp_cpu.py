"""Python CPU of one 512-span OTLP request in-process, no server and no database: what the web
process spends before Postgres sees the request, split by stage.

Each request is bench/otlp_spans.py's agentops 0.4-shaped batch (bench/otlp_ingest.py's), timed
with `time.process_time`: protobuf decode into spans (api/otlp/decode.py), the mapping onto rows
(events/spans.py `map_spans`: vocabularies, span document, validation and payload JSON,
pricing), grouping by trace and the write's traces parameter (events/storage/postgres.py; the
rows' binary COPY needs a connection: bench/otlp_queue_cpu.py times the whole write). Prints
the median per stage over `--requests` (after 3 warm-up requests), and with `--split` each part
of the mapping timed on its own (min of 7 runs over one request). The process is loaded and
frozen as agentops_site/wsgi.py leaves a worker. On this shared 2-core machine a run's figures
move by up to 1.5x with the load: compare two versions in alternating runs, never across hours.

    .venv/bin/python bench/otlp_cpu.py [--requests 30] [--split]
"""

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta

from common import T0, report, setup_django
from otlp_spans import export_request

SPANS_PER_REQUEST = 512


def request_stages(body: bytes) -> dict[str, float]:
    """CPU seconds of each stage of one request, as events/otlp_ingest.py runs them."""
    from api.otlp.decode import decode_export_request
    from events.otlp_ingest import group_by_trace
    from events.spans import map_spans
    from events.storage.postgres import trace_document

    t0 = time.process_time()
    decoded = decode_export_request(body, content_type="application/x-protobuf")
    t1 = time.process_time()
    mapped = map_spans(decoded.spans)
    t2 = time.process_time()
    traces, _ = group_by_trace(mapped, [s.index for s in decoded.spans])
    trace_document(traces)
    t3 = time.process_time()
    return {"decode": t1 - t0, "map": t2 - t1, "group_and_trace_document": t3 - t2}


def best_of(fn, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return min(times)


def mapping_split(body: bytes) -> dict[str, float]:
    """Each part of map_spans on its own, over one request's spans (ms, min of 7)."""
    from api.otlp.decode import decode_export_request
    from events import spans as s
    from events.validation import validate_event

    spans = decode_export_request(body, content_type="application/x-protobuf").spans
    kinds = [s.event_type_of(span.attributes) for span in spans]
    events = [
        (span, kind)
        for span, kind in zip(spans, kinds, strict=True)
        if not (span.is_root and s.is_agentops_session_span(span.attributes))
    ]

    def fields(span, kind):
        messages = s._message_attributes(span.attributes) if kind == "llms" else None
        raw = s._event_fields(span, kind, [], messages)
        otel = s.span_document(span)
        if messages is not None:
            s._move_message_attributes(otel, raw, messages)
        raw.update(
            id=s.event_id_of(span.trace_id, span.span_id), event_type=kind,
            init_timestamp=span.start, end_timestamp=span.end, agent_id=None, otel=otel,
        )  # fmt: skip
        return raw

    raws = [(span, fields(span, kind)) for span, kind in events]
    rows = [(span, validate_event(raw, session_id=s.session_id_of(span.trace_id))[0])
            for span, raw in raws]  # fmt: skip
    parts = {
        "event type and agent kind": lambda: [
            (s.event_type_of(span.attributes), s.is_agent_span(span.attributes)) for span in spans
        ],
        "span document": lambda: [s.span_document(span) for span in spans],
        "event ids": lambda: [s.event_id_of(span.trace_id, span.span_id) for span in spans],
        "event fields, span document, moved messages": lambda: [fields(*e) for e in events],
        "validation and payload JSON": lambda: [
            validate_event(raw, session_id=s.session_id_of(span.trace_id)) for span, raw in raws
        ],
        "pricing": lambda: [s._cost(row, span.attributes, []) for span, row in rows],
        "root span fields": lambda: [s.root_fields(span) for span in spans if span.is_root],
        "map_spans whole": lambda: s.map_spans(spans),
    }
    return {name: round(best_of(fn) * 1000, 2) for name, fn in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--split", action="store_true", help="time each part of the mapping")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    setup_django()
    # Load every view and freeze the loaded heap, as a gunicorn worker does: without it the
    # collector's full passes over Django's ~120k objects land inside the timed requests.
    import agentops_site.wsgi  # noqa: F401

    rng = random.Random(args.seed)
    bodies = [
        export_request(rng, T0 + timedelta(minutes=n))[0].SerializeToString()
        for n in range(args.requests + 3)
    ]
    for body in bodies[:3]:
        request_stages(body)
    runs = [request_stages(body) for body in bodies[3:]]
    stages = {k: round(statistics.median(r[k] for r in runs) * 1000, 2) for k in runs[0]}
    figures = {
        "spans_per_request": SPANS_PER_REQUEST,
        "requests": len(runs),
        "python_ms_per_request": round(statistics.median(sum(r.values()) for r in runs) * 1000, 2),
        "median_ms": stages,
    }
    if args.split:
        figures["mapping_split_ms"] = mapping_split(bodies[0])
    report("otlp-cpu", **figures)


if __name__ == "__main__":
    sys.exit(main())
