"""events/spans.py: the agentops 0.4.21 captures (decoded from the protobuf the SDK sent) and one
hand-made span per GenAI vocabulary of shared/protocols/agentops-otlp.md §8, mapped onto events
and session fields; then the rows stored in the real events table."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from analytics.pricing import price_llm_call
from api.otlp.decode import Span, SpanEvent, decode_export_request
from events.models import Event
from events.spans import (
    OTLP_EVENT_NAMESPACE,
    event_id_of,
    event_type_of,
    map_span,
    map_spans,
    session_id_of,
    span_attributes,
)
from sessions.models import Session
from tests.otlp_captures import to_otlp_json, to_protobuf, trace_requests


def _mapped(name: str, encoding: str = "protobuf"):
    """Every span of a capture, decoded and mapped request by request, keyed by span id."""
    out = {}
    for request in trace_requests(name):
        message = to_protobuf(request)
        if encoding == "protobuf":
            decoded = decode_export_request(
                message.SerializeToString(), content_type="application/x-protobuf"
            )
        else:
            decoded = decode_export_request(
                orjson.dumps(to_otlp_json(message)), content_type="application/json"
            )
        assert decoded.rejected == []
        for mapped in map_spans(decoded.spans):
            assert mapped.rejected == [], mapped.rejected
            out[mapped.span_id] = mapped
    return out


def _row(mapped, event_type):
    (row,) = [r for r in mapped.rows if r.event_type == event_type]
    return row


# --- ids -----------------------------------------------------------------------------------------


def test_session_id_is_the_trace_id_and_event_ids_are_stable():
    trace, span = "f7be9f8ada4f4625889a1e1e4088b980", "663d63073b1304d6"
    assert session_id_of(trace) == uuid.UUID("f7be9f8a-da4f-4625-889a-1e1e4088b980")
    assert event_id_of(trace, span) == uuid.uuid5(OTLP_EVENT_NAMESPACE, f"{trace}:{span}:event")
    assert event_id_of(trace, span) == event_id_of(trace, span)
    assert event_id_of(trace, span) != event_id_of(trace, span, "error")
    assert event_id_of(trace, span) != event_id_of(trace, "663d63073b1304d7")
    assert event_id_of(trace, span).version == 5


def test_protobuf_and_json_encodings_map_to_identical_rows():
    for name in ("03-new-api-decorators-and-errors.json", "04-llm-openai-chat.json"):
        from_pb, from_json = _mapped(name), _mapped(name, "json")
        assert from_pb.keys() == from_json.keys()
        for span_id, mapped in from_pb.items():
            assert [r.payload_json for r in mapped.rows] == [
                r.payload_json for r in from_json[span_id].rows
            ]


def test_a_resent_span_maps_once():
    request = trace_requests("04-llm-openai-chat.json")[0]
    decoded = decode_export_request(
        to_protobuf(request).SerializeToString(), content_type="application/x-protobuf"
    )
    twice = map_spans(decoded.spans + decoded.spans)
    assert len(twice) == 3


# --- 02 legacy sessions --------------------------------------------------------------------------


def test_legacy_sessions_end_states_reasons_tags_and_host_env():
    mapped = _mapped("02-legacy-session-success-and-fail.json")
    first, second = mapped["cb81d868cc242d40"], mapped["eb83f4e9846b345f"]
    # An AgentOps session root is the session, not an event; its span is kept whole.
    assert first.rows == [] and second.rows == []
    assert first.root.end_state == "Success"
    assert first.root.end_state_reason == "acceptance run finished"
    assert first.root.tags == ["legacy", "seed"]
    assert first.root.host_env["host.system"] == "Linux"
    assert first.root.host_env["memory.total"] == 25276059648
    assert first.root.host_env["imported_libraries"] == ["signal", "subprocess", "agentops"]
    assert first.root.span["attributes"]["agentops.session.end_state"] == "Success"
    assert first.root.end_timestamp == datetime(2026, 11, 30, 10, 58, 12, 632130, tzinfo=UTC)
    assert second.root.end_state == "Fail"
    assert second.root.end_state_reason == "on purpose"
    assert second.root.metadata["legacy.extra_field"] == "42"
    assert first.session_id != second.session_id

    tool = _row(mapped["663d63073b1304d6"], "tools")
    assert tool.name == "search"
    assert (tool.cost, tool.cost_source) == (Decimal("0.02"), "sdk")
    assert tool.payload["params"] == {"args": ["weather"], "kwargs": {}}
    assert tool.payload["returns"] == "results for weather"
    assert (tool.span_id, tool.parent_span_id) == ("663d63073b1304d6", "cb81d868cc242d40")
    assert mapped["663d63073b1304d6"].root is None


# --- 03 decorators and errors --------------------------------------------------------------------


def test_decorator_spans_types_names_params_and_agent():
    mapped = _mapped("03-new-api-decorators-and-errors.json")
    agent_event = event_id_of("bf8f48faab5a2e95cc96834a569c20dd", "06b35c2e2199bc5a")
    plan = _row(mapped["7f4064a58f29189a"], "actions")
    assert plan.name == "plan"
    assert plan.payload["params"] == {"args": ["otel"], "kwargs": {}}
    assert plan.payload["returns"] == ["search", "answer"]
    assert plan.agent_id == agent_event  # plan.task < research.task < Researcher.agent
    agent = _row(mapped["06b35c2e2199bc5a"], "actions")
    assert agent.name == "Researcher" and agent.payload["span_kind"] == "agent"
    assert agent.payload["params"] == {"args": ["ada"], "kwargs": {}}
    assert _row(mapped["b79463327f102d8b"], "tools").agent_id == agent_event
    # flaky.tool directly under the session root: no agent above it.
    assert _row(mapped["3669651c74b50313"], "tools").agent_id is None


def test_each_error_span_gives_exactly_one_error_linked_to_its_span():
    mapped = _mapped("03-new-api-decorators-and-errors.json")
    errors = [r for m in mapped.values() for r in m.rows if r.event_type == "errors"]
    # four failing flaky.tool calls, each recorded twice by the SDK: four errors
    assert len(errors) == 4
    assert sorted(e.payload["details"] for e in errors) == [f"boom {n}" for n in (1, 2, 3, 4)]
    failed = mapped["61935a17e8d26347"]
    tool, error = failed.rows
    assert tool.event_type == "tools" and error.event_type == "errors"
    assert error.trigger_event_id == tool.id
    assert error.payload["trigger_event_type"] == "tools"
    assert error.name == "ValueError"
    assert error.payload["exception_events"] == 2
    assert "raise ValueError" in error.payload["logs"]
    assert error.init_timestamp == datetime(2026, 11, 30, 10, 58, 28, 857419, tzinfo=UTC)
    assert error.id == event_id_of("bf8f48faab5a2e95cc96834a569c20dd", "61935a17e8d26347", "error")
    assert tool.payload["otel"]["status"] == {"code": "ERROR", "message": "ValueError: boom 1"}
    assert len(tool.payload["otel"]["events"]) == 2


def test_new_api_roots():
    mapped = _mapped("03-new-api-decorators-and-errors.json")
    research = mapped["b2fa0349ca7bc919"].root
    assert (research.end_state, research.end_state_reason) == ("Success", "")
    assert research.tags == ["meta-tag"]  # update_trace_metadata's JSON-array string
    assert research.metadata["user_id"] == "u-1" and research.metadata["run"] == 7
    # end_trace(t2) with the default enum: end state dropped by OTel, status UNSET
    assert mapped["6ff4d8beb37b342c"].root.end_state == "Indeterminate"
    assert mapped["6ff4d8beb37b342c"].root.raw_end_state is None
    ctx = mapped["34227ccc4ab9ed27"].root
    assert ctx.tags == [] and ctx.metadata["team"] == "a" and ctx.metadata["n"] == 1
    decorated = mapped["d7ef82df61afe885"].root
    assert (decorated.end_state, decorated.tags) == ("Indeterminate", ["deco"])
    assert mapped["6e1416f8ce8c1949"].root.end_state == "Fail"
    # Only the roots set session fields.
    assert sum(m.root is not None for m in mapped.values()) == 5


# --- 04 LLM calls --------------------------------------------------------------------------------


def test_openai_chat_spans_are_llm_events_with_chatml_tokens_and_price():
    mapped = _mapped("04-llm-openai-chat.json")
    plain = _row(mapped["ba0bb0553c64d392"], "llms")
    assert plain.model == "gpt-4o-mini-2024-07-18"
    assert (plain.prompt_tokens, plain.completion_tokens) == (1200, 300)
    assert plain.payload["total_tokens"] == 1500
    assert plain.payload["provider"] == "OpenAI"
    assert plain.payload["request_model"] == "gpt-4o-mini"
    assert plain.payload["prompt"] == {
        "type": "chatml",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Capital of France?"},
        ],
    }
    assert plain.payload["completion"] == {
        "type": "chatml",
        "messages": [
            {"finish_reason": "stop", "role": "assistant", "content": "The capital is Paris."}
        ],
    }
    assert plain.payload["params"]["max_tokens"] == 50
    assert plain.cost == price_llm_call("gpt-4o-mini-2024-07-18", 1200, 300) == Decimal("0.00036")
    assert plain.cost_source == "price_table"
    assert plain.payload["otel"]["scope"] == {
        "name": "openai",
        "version": "3.57.0",
        "attributes": {},
    }
    streamed = _row(mapped["9a695ced5675c159"], "llms")
    assert streamed.payload["prompt"]["messages"] == [
        {"role": "user", "content": "Again, streamed"}
    ]
    assert [e["name"] for e in streamed.payload["otel"]["events"]] == [
        "first_token_received",
        "stream_completed",
    ]
    assert mapped["fbeaa3707b82ce0a"].root.tags == ["llm"]


def test_message_attributes_are_stored_once_and_given_back_whole():
    """The prompt and completion attributes live in the chat fields only; span_attributes()
    returns the span's attributes exactly as decoded, and the public API serves them whole."""
    for request in trace_requests("04-llm-openai-chat.json"):
        decoded = decode_export_request(
            to_protobuf(request).SerializeToString(), content_type="application/x-protobuf"
        )
        for span in decoded.spans:
            for row in map_span(span).rows:
                if row.event_type != "llms":
                    continue
                otel = row.payload["otel"]
                assert not any(k.startswith("gen_ai.prompt.") for k in otel["attributes"])
                assert otel["attributes_in_fields"] == {
                    "gen_ai.prompt.": "prompt",
                    "gen_ai.completion.": "completion",
                }
                assert span_attributes(orjson.loads(row.payload_json)) == span.attributes


def test_message_attributes_with_a_gap_stay_in_the_span_document():
    attributes = {
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "first",
        "gen_ai.prompt.2.role": "user",  # index 1 never sent: the messages close the gap
        "gen_ai.prompt.2.content": "third",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "ok",
    }
    (row,) = map_span(_llm_span(attributes)).rows
    otel = row.payload["otel"]
    assert otel["attributes_in_fields"] == {"gen_ai.completion.": "completion"}
    assert otel["attributes"]["gen_ai.prompt.2.content"] == "third"
    assert span_attributes(row.payload) == attributes


def _llm_span(attributes: dict) -> Span:
    start = datetime(2026, 11, 30, tzinfo=UTC)
    return Span(
        index=0, trace_id="ab" * 16, span_id="cd" * 8, parent_span_id="ef" * 8,
        name="openai.chat", kind="CLIENT", start=start, end=start + timedelta(seconds=1),
        start_time_unix_nano=0, end_time_unix_nano=0, status_code="OK", status_message="",
        attributes=attributes, events=[], links=[], resource={}, scope_name="openai",
        scope_version="",
    )  # fmt: skip


# --- 05 two processes ----------------------------------------------------------------------------


def test_cross_process_nested_session_is_an_action_and_only_the_true_root_sets_fields():
    mapped = _mapped("05-cross-process-traceparent.json")
    assert len({m.session_id for m in mapped.values()}) == 1
    nested = mapped["aa93e5b81e13b04b"]  # child process's start_trace: has a remote parent
    assert nested.root is None
    row = _row(nested, "actions")
    assert row.name == "child-trace" and row.parent_span_id == "e540d3768584aad0"
    root = mapped["6c30c9f9f6587f71"].root
    assert (root.end_state, root.tags) == ("Success", ["parent"])
    assert _row(mapped["0fed15aad419f734"], "tools").payload["otel"]["flags"] == 0x300


def test_agent_ancestors_stored_earlier_are_used():
    # The child process's spans arrive first; a later batch finds their parent chain in storage.
    request = trace_requests("05-cross-process-traceparent.json")[0]
    decoded = decode_export_request(
        to_protobuf(request).SerializeToString(), content_type="application/x-protobuf"
    )
    trace = decoded.spans[0].trace_id
    stored = {(trace, "e540d3768584aad0"): ("6c30c9f9f6587f71", True)}
    (search, *_) = map_spans(decoded.spans, known_ancestors=stored)
    assert search.rows[0].agent_id == event_id_of(trace, "e540d3768584aad0")
    (search, *_) = map_spans(decoded.spans, known_ancestors=lambda t, s: stored.get((t, s)))
    assert search.rows[0].agent_id == event_id_of(trace, "e540d3768584aad0")
    (search, *_) = map_spans(decoded.spans)
    assert search.rows[0].agent_id is None


# --- 06 unended traces ---------------------------------------------------------------------------


def test_unended_traces_give_events_and_no_root_and_shutdown_is_indeterminate():
    mapped = _mapped("06-unended-traces.json")
    for orphan in ("e27221478778fd66", "0f784a3d38ee909a", "7c7fc0c276bf1085"):
        assert mapped[orphan].root is None
    crash = mapped["7c7fc0c276bf1085"]
    assert [r.event_type for r in crash.rows] == ["tools", "errors"]
    auto = mapped["c76450c86f55f67b"].root
    assert (auto.end_state, auto.end_state_reason, auto.raw_end_state) == (
        "Indeterminate",
        "Shutdown",
        "Shutdown",
    )
    assert auto.tags == ["auto"]


# --- hand-made spans, one per vocabulary (§8) ----------------------------------------------------

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TRACE = "0af7651916cd43dd8448eb211c80319c"


def span(attributes, *, name="s", parent="b7ad6b7169203331", status="UNSET", message="", events=()):
    return Span(
        index=0,
        trace_id=TRACE,
        span_id="00f067aa0ba902b7",
        parent_span_id=parent,
        name=name,
        kind="CLIENT",
        start=T0,
        end=T0 + timedelta(seconds=2),
        start_time_unix_nano=0,
        end_time_unix_nano=0,
        status_code=status,
        status_message=message,
        attributes=attributes,
        events=list(events),
        links=[],
        resource={
            "service.name": "svc",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": "1.27.0",
        },
        scope_name="test",
        scope_version="1",
    )


def test_otel_genai_current_names():
    mapped = map_span(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 200,
                "gen_ai.usage.cache_read.input_tokens": 400,
                "gen_ai.system_instructions": '[{"type": "text", "content": "Be brief."}]',
                "gen_ai.input.messages": orjson.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]
                ).decode(),
                "gen_ai.output.messages": orjson.dumps(
                    [
                        {
                            "role": "assistant",
                            "finish_reason": "tool_call",
                            "parts": [
                                {"type": "text", "content": "Let me look."},
                                {
                                    "type": "tool_call",
                                    "id": "c1",
                                    "name": "search",
                                    "arguments": {"q": "x"},
                                },
                            ],
                        }
                    ]
                ).decode(),
            },
            name="chat gpt-4o",
        )
    )
    row = _row(mapped, "llms")
    assert row.model == "gpt-4o-2024-08-06"
    assert (row.prompt_tokens, row.completion_tokens) == (1000, 200)
    assert row.payload["cache_read_tokens"] == 400
    assert row.payload["prompt"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    (answer,) = row.payload["completion"]["messages"]
    assert answer["content"] == "Let me look."
    assert answer["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "search", "arguments": {"q": "x"}}}
    ]
    # The 400 cached prompt tokens at the cache-read price: $0.0040, not the uncached $0.0045.
    assert row.cost == price_llm_call(
        "openai/gpt-4o-2024-08-06", 1000, 200, cache_read_tokens=400
    ) == Decimal("0.0040")
    assert row.cost_source == "price_table"
    assert mapped.sdk_version == "opentelemetry/1.27.0"


def test_otel_genai_older_event_messages_and_tool_span():
    llm = map_span(
        span(
            {
                "gen_ai.system": "anthropic",
                "gen_ai.request.model": "claude-3-5-sonnet-20241022",
                "gen_ai.usage.prompt_tokens": 10,
                "gen_ai.usage.completion_tokens": 5,
            },
            events=[
                SpanEvent("gen_ai.system.message", T0, {"content": "sys"}),
                SpanEvent("gen_ai.user.message", T0, {"content": "hello"}),
                SpanEvent(
                    "gen_ai.choice",
                    T0,
                    {"index": 0, "finish_reason": "stop", "message": '{"content": "hey"}'},
                ),
            ],
        )
    )
    row = _row(llm, "llms")
    assert row.payload["prompt"]["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hello"},
    ]
    assert row.payload["completion"]["messages"] == [
        {"content": "hey", "finish_reason": "stop", "role": "assistant"}
    ]
    assert row.cost_source == "price_table" and row.cost > 0
    tool = _row(
        map_span(
            span(
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "get_weather",
                    "gen_ai.tool.call.arguments": '{"city": "Paris"}',
                    "gen_ai.tool.call.result": "sunny",
                }
            )
        ),
        "tools",
    )
    assert (tool.name, tool.payload["params"], tool.payload["returns"]) == (
        "get_weather",
        {"city": "Paris"},
        "sunny",
    )


def test_openinference_llm_with_its_own_cost_tool_and_chain():
    llm = _row(
        map_span(
            span(
                {
                    "openinference.span.kind": "LLM",
                    "llm.model_name": "gpt-4o-mini",
                    "llm.provider": "openai",
                    "llm.token_count.prompt": 7,
                    "llm.token_count.completion": 3,
                    "llm.token_count.completion_details.reasoning": 2,
                    "llm.cost.total": 0.00123,
                    "llm.input_messages.0.message.role": "user",
                    "llm.input_messages.0.message.content": "2+2?",
                    "llm.output_messages.0.message.role": "assistant",
                    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "calc",
                    "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "{}",
                }
            )
        ),
        "llms",
    )
    assert (llm.model, llm.prompt_tokens, llm.completion_tokens) == ("gpt-4o-mini", 7, 3)
    assert (llm.cost, llm.cost_source) == (Decimal("0.00123"), "sdk")
    assert llm.payload["reasoning_tokens"] == 2
    assert llm.payload["prompt"]["messages"] == [{"role": "user", "content": "2+2?"}]
    assert llm.payload["completion"]["messages"] == [
        {"role": "assistant", "tool_calls": [{"function": {"name": "calc", "arguments": "{}"}}]}
    ]
    tool = _row(
        map_span(
            span(
                {"openinference.span.kind": "TOOL", "tool.name": "calc", "input.value": '{"a": 1}'}
            )
        ),
        "tools",
    )
    assert (tool.name, tool.payload["params"]) == ("calc", {"a": 1})
    chain = _row(
        map_span(span({"openinference.span.kind": "CHAIN", "output.value": "done"}, name="rag")),
        "actions",
    )
    assert (chain.name, chain.payload["returns"]) == ("rag", "done")


def test_openllmetry_workflow_task_tool_and_llm():
    assert event_type_of({"traceloop.span.kind": "workflow"}) == "actions"
    assert event_type_of({"traceloop.span.kind": "tool"}) == "tools"
    task = _row(
        map_span(
            span(
                {
                    "traceloop.span.kind": "task",
                    "traceloop.entity.name": "summarise",
                    "traceloop.entity.input": '{"text": "t"}',
                    "traceloop.entity.output": '"s"',
                }
            )
        ),
        "actions",
    )
    assert (task.name, task.payload["params"], task.payload["returns"]) == (
        "summarise",
        {"text": "t"},
        "s",
    )
    llm = _row(
        map_span(
            span(
                {
                    "llm.request.type": "chat",
                    "gen_ai.system": "OpenAI",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.prompt_tokens": "1200",
                    "gen_ai.usage.completion_tokens": 300.0,
                    "gen_ai.prompt.0.role": "user",
                    "gen_ai.prompt.0.content": "hi",
                    "gen_ai.completion.0.tool_calls.0.name": "f",
                    "gen_ai.completion.0.tool_calls.0.arguments": "{}",
                },
                name="openai.chat",
            )
        ),
        "llms",
    )
    # numeric strings and integral floats are coerced, as v2 input is
    assert (llm.prompt_tokens, llm.completion_tokens) == (1200, 300)
    assert llm.payload["completion"]["messages"] == [
        {"tool_calls": [{"name": "f", "arguments": "{}"}]}
    ]
    assert llm.cost == Decimal("0.00036")


def test_explicit_kind_wins_over_sniffing():
    # An AgentOps @tool(cost=...) span carries gen_ai.usage.total_cost: still a tool.
    assert event_type_of({"agentops.span.kind": "tool", "gen_ai.request.model": "x"}) == "tools"
    assert event_type_of({"agentops.span.kind": "llm"}) == "llms"
    assert (
        event_type_of({"agentops.span.kind": "workflow", "gen_ai.request.model": "x"}) == "actions"
    )
    assert event_type_of({"openinference.span.kind": "EMBEDDING"}) == "llms"
    assert (
        event_type_of({"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "x"})
        == "actions"
    )
    assert event_type_of({"tool.name": "f", "tool.call.id": "1"}) == "tools"  # 0.4's tool_call.<fn>
    assert event_type_of({"http.method": "GET"}) == "actions"


def test_unknown_model_cost_is_unknown_never_zero():
    row = _row(
        map_span(
            span({"gen_ai.request.model": "no-such-model-xyz", "gen_ai.usage.input_tokens": 5})
        ),
        "llms",
    )
    assert (row.cost, row.cost_source) == (None, "unknown")
    no_tokens = _row(map_span(span({"gen_ai.request.model": "gpt-4o"})), "llms")
    assert no_tokens.cost is None


def test_bad_values_are_repaired_and_said_not_refused():
    mapped = map_span(
        span(
            {
                "gen_ai.request.model": "m" * 500,
                "gen_ai.usage.input_tokens": -4,
                "gen_ai.usage.output_tokens": "lots",
                "gen_ai.usage.total_cost": "NaN",
                "gen_ai.prompt.0.content": "x" * 2_000_000,
            }
        )
    )
    assert mapped.rejected == []
    row = _row(mapped, "llms")
    assert len(row.model) == 200 and row.model.endswith("…")
    assert row.prompt_tokens is None and row.completion_tokens is None
    assert (row.cost, row.cost_source) == (None, "unknown")
    assert len(row.payload_json) < 1024 * 1024
    text = " ".join(mapped.repairs)
    for said in (
        "model: cut",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "payload: strings cut",
    ):
        assert said in text


def test_a_generic_root_span_is_an_event_and_sets_the_session_from_its_status():
    root = map_span(
        span(
            {"openinference.span.kind": "AGENT", "tag.tags": ["a", "b", "a"], "session.id": "s-1"},
            parent=None,
            status="ERROR",
            message="Timeout: gave up",
        )
    )
    assert [r.event_type for r in root.rows] == ["actions", "errors"]
    assert (root.root.end_state, root.root.end_state_reason) == ("Fail", "Timeout: gave up")
    assert root.root.tags == ["a", "b"]
    assert root.root.metadata["session.id"] == "s-1"
    assert root.root.span is None  # its event carries it
    assert root.rows[1].name == "Timeout"
    ok_root = map_span(span({"gen_ai.operation.name": "chat"}, parent=None, status="OK"))
    assert ok_root.root.end_state == "Success"


@pytest.mark.parametrize(
    ("sent", "state", "reason"),
    [
        ("Success", "Success", ""),
        ("Fail", "Fail", ""),
        ("Failure", "Fail", "Failure"),
        ("ERROR", "Fail", "ERROR"),
        ("Indeterminate", "Indeterminate", ""),
        ("Reinitialized", "Indeterminate", "Reinitialized"),
        ("whatever", "Indeterminate", "whatever"),
    ],
)
def test_end_state_words(sent, state, reason):
    root = map_span(
        span({"agentops.span.kind": "session", "agentops.session.end_state": sent}, parent=None)
    ).root
    assert (root.end_state, root.end_state_reason) == (state, reason)


# --- the rows fit the real table -----------------------------------------------------------------


@pytest.mark.django_db
def test_mapped_rows_store_in_the_events_table_with_their_span_ids(project):
    mapped = _mapped("03-new-api-decorators-and-errors.json")
    rows = [(m, r) for m in mapped.values() for r in m.rows]
    for session_id in {m.session_id for m, _ in rows}:
        Session.objects.create(id=session_id, project=project, init_timestamp=T0, last_seen_at=T0)
    Event.objects.bulk_create(
        Event(
            id=r.id,
            session_id=m.session_id,
            project=project,
            event_type=r.event_type,
            init_timestamp=r.init_timestamp,
            end_timestamp=r.end_timestamp,
            agent_id=r.agent_id,
            name=r.name,
            model=r.model,
            prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens,
            cost=r.cost,
            cost_source=r.cost_source,
            trigger_event_id=r.trigger_event_id,
            span_id=r.span_id,
            parent_span_id=r.parent_span_id,
            payload=r.payload,
        )
        for m, r in rows
    )
    stored = Event.objects.get(
        id=event_id_of("bf8f48faab5a2e95cc96834a569c20dd", "7f4064a58f29189a")
    )
    assert (stored.span_id, stored.parent_span_id) == ("7f4064a58f29189a", "78e8ce9e650be829")
    assert stored.payload["otel"]["attributes"]["agentops.span.kind"] == "task"
    assert Event.objects.filter(event_type="errors").count() == 4
    assert Event.objects.get(
        name="search", session_id=session_id_of("bf8f48faab5a2e95cc96834a569c20dd")
    ).cost == Decimal("0.02")


# --- anything a client can send maps without an exception -----------------------------------------

_KEYS = [
    "agentops.span.kind",
    "openinference.span.kind",
    "traceloop.span.kind",
    "gen_ai.operation.name",
    "operation.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.system",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.usage.total_cost",
    "llm.cost.total",
    "llm.cost.prompt",
    "llm.cost.completion",
    "gen_ai.prompt.0.role",
    "gen_ai.prompt.0",
    "gen_ai.prompt.1.tool_calls.0.name",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "llm.input_messages.0.message.content",
    "gen_ai.agent.id",
    "gen_ai.tool.name",
    "tool.name",
    "agentops.tags",
    "tag.tags",
    "agentops.session.end_state",
    "agentops.legacy.end_state_reason",
    "agentops.tool.input",
    "input.value",
    "metadata",
    "host.name",
]


def _values():
    from hypothesis import strategies as st

    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=30)
        | st.sampled_from(["tool", "LLM", "chat", "session", "agent", "[1, 2]", '{"a": [', "12"])
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=6,
    )


def test_any_attribute_values_map_without_an_exception():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(
        attributes=st.dictionaries(st.sampled_from(_KEYS), _values(), max_size=10),
        root=st.booleans(),
        status=st.sampled_from(["UNSET", "OK", "ERROR"]),
    )
    def check(attributes, root, status):
        mapped = map_span(
            span(attributes, parent=None if root else "b7ad6b7169203331", status=status)
        )
        assert (mapped.root is not None) == root
        for row in mapped.rows:
            assert row.cost is None or row.cost >= 0
            assert len(row.name) <= 200 and len(row.model) <= 200
            orjson.loads(row.payload_json)

    check()
