"""Whether two versions of the OTLP decode and mapping give the same results: run `dump` in each
checkout, then `compare` the two files. For changes meant to be pure speed-ups (BENCHMARKS.md §5).

The corpus: every agentops 0.4.21 capture request (tests/fixtures/otlp/, protobuf and OTLP/JSON),
three 512-span bench batches (bench/otlp_spans.py), and 400 random protobuf requests mixing the
vocabularies' keys with odd values (NULs, non-finite numbers, long and deep values, gaps and
non-canonical indexes in message attributes, error spans with exception events); each decoded
with the default limits and with small ones (so truncation repairs happen). What is compared:
every decoded Span and RejectedSpan, and every MappedSpan (rows with their payload JSON, root
fields, refusals, repairs), field by field.

    PYTHONPATH=$PWD .venv/bin/python bench/otlp_mapping_diff.py dump /tmp/n.pkl
    cd ../old && PYTHONPATH=$PWD .venv/bin/python bench/otlp_mapping_diff.py dump /tmp/o.pkl
    PYTHONPATH=$PWD .venv/bin/python bench/otlp_mapping_diff.py compare /tmp/o.pkl /tmp/n.pkl
"""

import dataclasses
import pickle
import random
import sys
from datetime import timedelta
from pathlib import Path

import orjson
from common import T0, setup_django
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_spans import export_request

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))  # the captures' encoder

KEYS = [
    "agentops.span.kind",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.system",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.total_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.prompt.0.content",
    "gen_ai.prompt.0.role",
    "gen_ai.prompt.1.content",
    "gen_ai.prompt.1.role",
    "gen_ai.prompt.3.content",
    "gen_ai.prompt.01.role",
    "gen_ai.prompt.0.tool_calls.0.name",
    "gen_ai.prompt.x",
    "gen_ai.prompt.0",
    "gen_ai.prompt.2.5",
    "gen_ai.completion.0.content",
    "gen_ai.completion.0.role",
    "gen_ai.completion.0.finish_reason",
    "gen_ai.completion.1.content",
    "gen_ai.completion.0.tool_calls.0.arguments",
    "gen_ai.request.temperature",
    "gen_ai.request.max_tokens",
    "llm.invocation_parameters",
    "agentops.session.end_state",
    "agentops.legacy.end_state_reason",
    "agentops.tags",
    "tag.tags",
    "openinference.span.kind",
    "llm.token_count.prompt",
    "llm.token_count.completion",
    "llm.model_name",
    "llm.input_messages.0.message.role",
    "llm.input_messages.0.message.content",
    "llm.output_messages.0.message.content",
    "input.value",
    "output.value",
    "tool.name",
    "gen_ai.tool.name",
    "gen_ai.usage.total_cost",
    "llm.cost.total",
    "llm.cost.prompt",
    "llm.cost.completion",
    "operation.name",
    "gen_ai.operation.name",
    "traceloop.span.kind",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "traceloop.entity.name",
    "agentops.tool.input",
    "agentops.tool.output",
    "agentops.task.input",
    "agentops.entity.input",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.agent.id",
    "gen_ai.agent.name",
    "gen_ai.provider.name",
    "trace.metadata.user",
    "host.name",
    "session.id",
    "metadata",
    "error.type",
    "x",
    "k\x00ey",
]
KINDS = [
    "llm",
    "tool",
    "task",
    "agent",
    "session",
    "workflow",
    "LLM",
    "TOOL",
    "AGENT",
    "chat",
    "execute_tool",
    "invoke_agent",
    "Success",
    "Fail",
    "Shutdown",
]
WORDS = [
    "a",
    "b c",
    "gpt-4o",
    "gpt-4o-mini",
    "openai",
    "",
    " ",
    "1200",
    "12.0",
    "-3",
    "x\x00y",
    '{"a": 1}',
    '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
    '["t1", "t2"]',
    "[" * 40 + "]" * 40,
    "[" * 20 + "]" * 20,
    '{"a": ' * 33 + "1" + "}" * 33,
    '["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]',
    "claude-3-5-sonnet-20241022",
    "0.02",
    "NaN",
    "user",
    "assistant",
    "y" * 300,
]


def value(rng, key):
    r = rng.random()
    if key.endswith((".kind", ".name", "end_state")) and r < 0.6:
        return rng.choice(KINDS)
    if r < 0.45:
        return rng.choice(WORDS)
    if r < 0.6:
        return rng.choice([0, 1, 1200, -5, 2**40, 300])
    if r < 0.7:
        return rng.choice([0.5, 12.0, float("nan"), float("inf"), 1e300])
    if r < 0.78:
        return rng.choice([True, False])
    if r < 0.9:
        return [rng.choice(WORDS) for _ in range(rng.randint(0, 3))]
    return {"k": rng.choice(WORDS), "n": [1, 2]}


def set_value(v, x):
    if isinstance(x, bool):
        v.bool_value = x
    elif isinstance(x, int):
        v.int_value = x
    elif isinstance(x, float):
        v.double_value = x
    elif isinstance(x, list):
        for item in x:
            set_value(v.array_value.values.add(), item)
    elif isinstance(x, dict):
        for k, item in x.items():
            kv = v.kvlist_value.values.add()
            kv.key = k
            set_value(kv.value, item)
    else:
        v.string_value = x


def random_request(rng):
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for k, x in (
        ("service.name", "svc"),
        ("telemetry.sdk.name", "opentelemetry"),
        ("telemetry.sdk.version", rng.choice(["1.27.0", 3])),
        ("host.name", "h"),
    ):
        kv = rs.resource.attributes.add()
        kv.key = k
        set_value(kv.value, x)
    trace = rng.randbytes(16)
    ids = [rng.randbytes(8) for _ in range(12)]
    for _ in range(rng.randint(1, 3)):
        ss = rs.scope_spans.add()
        ss.scope.name = rng.choice(["agentops", "openai", "x\x00"])
        ss.scope.version = "1"
        for n in range(rng.randint(1, 12)):
            sp = ss.spans.add()
            sp.trace_id = trace
            sp.span_id = rng.choice(ids)
            if rng.random() < 0.8:
                sp.parent_span_id = rng.choice(ids)
            sp.name = rng.choice(["s.tool", "chat", "x.session", "a" * 1100, "n\x00"])
            sp.kind = rng.randint(0, 5)
            base = int(T0.timestamp() * 1e9) + n * 1000
            sp.start_time_unix_nano = base
            sp.end_time_unix_nano = rng.choice([base + 5000, 0, base - 10])
            sp.status.code = rng.choice([0, 1, 2, 2])
            sp.status.message = rng.choice(["", "ValueError: bad", "boom"])
            sp.flags = rng.choice([0, 0x100, 0x300])
            for key in rng.sample(KEYS, rng.randint(0, 25)):
                kv = sp.attributes.add()
                kv.key = key
                set_value(kv.value, value(rng, key))
            for _ in range(rng.randint(0, 3)):
                ev = sp.events.add()
                ev.name = rng.choice(
                    [
                        "exception",
                        "gen_ai.choice",
                        "gen_ai.user.message",
                        "gen_ai.content.prompt",
                        "other",
                    ]
                )
                ev.time_unix_nano = base + 100
                for key in rng.sample(
                    [
                        "exception.type",
                        "exception.message",
                        "exception.stacktrace",
                        "content",
                        "message",
                        "finish_reason",
                        "gen_ai.prompt",
                        "tool_calls",
                        "id",
                    ],
                    rng.randint(0, 4),
                ):
                    kv = ev.attributes.add()
                    kv.key = key
                    set_value(kv.value, value(rng, key))
    return req


def corpus():
    from otlp_captures import SPAN_CAPTURES, to_otlp_json, to_protobuf, trace_requests

    for name in SPAN_CAPTURES:
        for request in trace_requests(name):
            msg = to_protobuf(request)
            yield msg.SerializeToString(), "application/x-protobuf"
            yield orjson.dumps(to_otlp_json(msg)), "application/json"
    rng = random.Random(7)
    for b in range(3):
        yield (
            export_request(rng, T0 + timedelta(minutes=b))[0].SerializeToString(),
            "application/x-protobuf",
        )
    rng = random.Random(11)
    for _ in range(400):
        yield random_request(rng).SerializeToString(), "application/x-protobuf"


def dump(path):
    from api.otlp.decode import Limits, decode_export_request
    from events.spans import map_spans

    out = []
    small = Limits(max_string_chars=200, max_name_chars=64)
    for body, ctype in corpus():
        for limits in (Limits(), small):
            d = decode_export_request(body, content_type=ctype, limits=limits)
            mapped = map_spans(d.spans)
            out.append(
                (
                    [dataclasses.asdict(s) for s in d.spans],
                    [dataclasses.asdict(r) for r in d.rejected],
                    [dataclasses.asdict(m) for m in mapped],
                )
            )
    with open(path, "wb") as f:
        pickle.dump(out, f)
    print(len(out), "requests,", sum(len(o[2]) for o in out), "mapped spans")


def compare(old_path, new_path):
    with open(old_path, "rb") as f:
        a = pickle.load(f)
    with open(new_path, "rb") as f:
        b = pickle.load(f)
    assert len(a) == len(b), "different corpora"
    bad = 0
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        for part, px, py in zip(("spans", "rejected", "mapped"), x, y, strict=True):
            if px != py:
                bad += 1
                if bad <= 3:
                    print("request", i, part, "differs")
                    for j, (u, v) in enumerate(zip(px, py, strict=False)):
                        if u != v:
                            for k in u:
                                if u[k] != v[k]:
                                    print(
                                        "  item",
                                        j,
                                        k,
                                        "\n   old",
                                        repr(u[k])[:600],
                                        "\n   new",
                                        repr(v[k])[:600],
                                    )
                            break
    print("identical" if not bad else f"{bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    setup_django()
    if sys.argv[1] == "dump":
        dump(sys.argv[2])
    else:
        sys.exit(compare(sys.argv[2], sys.argv[3]))
