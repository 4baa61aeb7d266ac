"""ExportTraceServiceRequests shaped like agentops 0.4.21's (shared/protocols/agentops-otlp.md
§4, §7): one resource of three attributes, an `agentops` scope for session/task/tool spans and
an `openai` scope for LLM spans with prompts and completions, a root `*.session` span per trace
carrying end state, tags and the 13 host attributes."""

import json
import random
from datetime import datetime

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

WORDS = [
    "agent",
    "plan",
    "search",
    "answer",
    "weather",
    "paris",
    "tool",
    "model",
    "token",
    "cost",
    "trace",
    "span",
    "user",
    "system",
    "result",
    "error",
    "retry",
    "context",
    "memory",
    "vector",
    "embed",
    "summarize",
    "draft",
    "review",
]
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022")
HOST = {
    "host.machine": "x86_64",
    "host.name": "bench",
    "host.node": "bench",
    "host.processor": "x86_64",
    "host.system": "Linux",
    "host.version": "#1 SMP",
    "host.os_release": "6.1.0",
    "cpu.count": 8,
    "cpu.percent": 12.5,
    "memory.total": 16_000_000_000,
    "memory.available": 9_000_000_000,
    "memory.used": 7_000_000_000,
    "memory.percent": 43.7,
}


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _set(attributes, key: str, value) -> None:
    kv = attributes.add()
    kv.key = key
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    elif isinstance(value, list):
        for item in value:
            kv.value.array_value.values.add().string_value = item
    else:
        kv.value.string_value = value


def export_request(
    rng: random.Random, at: datetime, *, traces: int = 4, spans_per_trace: int = 128
) -> tuple[ExportTraceServiceRequest, list[bytes]]:
    """(the request, its traces' 16-byte ids). Per trace: a root session span, then children:
    40 % LLM calls (system + user prompt, completion, tokens), 30 % tools (JSON input/output,
    some with a cost), 30 % tasks; children hang under the root or under a task."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in (
        ("service.name", "agentops"),
        ("agentops.project.id", "temporary"),
        ("imported_libraries", ["agentops", "openai", "json"]),
    ):
        _set(rs.resource.attributes, key, value)
    sdk = rs.scope_spans.add()
    sdk.scope.name = "agentops"
    llm_scope = rs.scope_spans.add()
    llm_scope.scope.name, llm_scope.scope.version = "openai", "3.57.0"
    base = int(at.timestamp() * 1e9)
    trace_ids = []
    for _ in range(traces):
        trace_id = rng.randbytes(16)
        trace_ids.append(trace_id)
        root_id = rng.randbytes(8)
        parents = [root_id]
        for n in range(spans_per_trace - 1):
            roll = rng.random()
            scope = llm_scope if roll < 0.4 else sdk
            span = scope.spans.add()
            span.trace_id, span.span_id = trace_id, rng.randbytes(8)
            span.parent_span_id = rng.choice(parents)
            span.flags = 0x100
            span.start_time_unix_nano = base + n * 1_000_000
            span.end_time_unix_nano = span.start_time_unix_nano + rng.randint(100_000, 900_000)
            a = span.attributes
            if roll < 0.4:
                model = rng.choice(MODELS)
                span.name, span.kind = "openai.chat.completion", Span.SPAN_KIND_CLIENT
                span.status.code = Status.STATUS_CODE_OK
                for key, value in (
                    ("gen_ai.request.type", "chat"), ("gen_ai.system", "OpenAI"),
                    ("gen_ai.request.model", model), ("gen_ai.request.max_tokens", 500),
                    ("gen_ai.request.temperature", 0.2), ("gen_ai.request.streaming", False),
                    ("gen_ai.prompt.0.role", "system"),
                    ("gen_ai.prompt.0.content", _text(rng, 60)),
                    ("gen_ai.prompt.1.role", "user"), ("gen_ai.prompt.1.content", _text(rng, 40)),
                    ("gen_ai.response.id", f"chatcmpl-{rng.getrandbits(48):x}"),
                    ("gen_ai.response.model", model), ("gen_ai.usage.total_tokens", 1500),
                    ("gen_ai.usage.prompt_tokens", 1200), ("gen_ai.usage.completion_tokens", 300),
                    ("gen_ai.completion.0.finish_reason", "stop"),
                    ("gen_ai.completion.0.role", "assistant"),
                    ("gen_ai.completion.0.content", _text(rng, 50)),
                ):  # fmt: skip
                    _set(a, key, value)
            elif roll < 0.7:
                name = rng.choice(("search", "fetch", "calc"))
                span.name = f"{name}.tool"
                span.kind = Span.SPAN_KIND_INTERNAL
                _set(a, "agentops.span.kind", "tool")
                _set(a, "operation.name", name)
                _set(a, "agentops.tool.input", json.dumps({"args": [_text(rng, 5)], "kwargs": {}}))
                _set(a, "agentops.tool.output", _text(rng, 20))
                if rng.random() < 0.5:
                    _set(a, "gen_ai.usage.total_cost", 0.02)
            else:
                name = rng.choice(("plan", "research", "review"))
                span.name = f"{name}.task"
                span.kind = Span.SPAN_KIND_INTERNAL
                _set(a, "agentops.span.kind", "task")
                _set(a, "operation.name", name)
                _set(a, "agentops.task.input", json.dumps({"args": [_text(rng, 5)], "kwargs": {}}))
                _set(a, "agentops.task.output", json.dumps([_text(rng, 3), _text(rng, 3)]))
                parents.append(span.span_id)
        root = sdk.spans.add()
        root.trace_id, root.span_id, root.flags = trace_id, root_id, 0x100
        root.name, root.kind = "session.session", Span.SPAN_KIND_INTERNAL
        root.start_time_unix_nano = base - 1_000_000
        root.end_time_unix_nano = base + spans_per_trace * 1_000_000 + 1_000_000
        for key, value in (
            ("agentops.span.kind", "session"), ("operation.name", "session"),
            ("agentops.tags", ["bench", rng.choice(WORDS)]),
            ("agentops.session.end_state", rng.choice(("Success", "Success", "Fail"))),
            ("agentops.legacy.end_state_reason", "bench run"), *HOST.items(),
        ):  # fmt: skip
            _set(root.attributes, key, value)
    return request, trace_ids
