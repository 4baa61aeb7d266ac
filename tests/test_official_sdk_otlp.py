"""The official agentops 0.4.21 SDK, unchanged (an OpenTelemetry SDK), and a plain OpenTelemetry
SDK exporter, against a live server: only their endpoints differ.

Both run in the cached venv of tests/official_sdk.py (opentelemetry 1.44.0, openai 3.57.0). No
test lets an SDK phone home: every endpoint variable points at the live server on loopback, and
HTTP(S)_PROXY is a closed loopback port with NO_PROXY for 127.0.0.1, so the one thing 0.4.21 cannot
be told (its metrics exporter, hard-wired to otlp.agentops.ai) fails at once offline; it records
no data points in these scripts, so nothing waits on it.
"""

import contextlib
import json
import textwrap
import time
from decimal import Decimal

import pytest
import requests

from events.models import Event, OtlpBatch
from sessions.models import Session, TraceLog
from tests.celery_worker import celery_broker, eventually, start_worker
from tests.fake_llm_servers import FakeLLMServer
from tests.official_sdk import OTLP_VERSION, run_official

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["celery_broker"]

NO_PHONE_HOME = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


# A real agent runs for longer than the SDK takes to fetch its token in a background thread; a
# test script that ended its first trace within milliseconds would export everything without
# credentials, 401 (the SDK's own race, shared/protocols/agentops-otlp.md §3). Scripts wait for
# the token by reading the SDK's state, never changing it.
PRELUDE = """import json, os, sys, time
import agentops

def wait_for_token():
    deadline = time.monotonic() + 20
    while agentops.get_client().get_current_jwt() is None and time.monotonic() < deadline:
        time.sleep(0.02)
"""


def agent(script: str, live_server, api_key, *, check=True, **env):
    """Run `script` under agentops 0.4.21 pointed at the live server; (last JSON line printed,
    the finished process)."""
    # The first request of a live server imports every URL module (protobuf, the mapping...):
    # seconds on a busy machine, longer than the SDK waits for its token before exporting.
    requests.get(f"{live_server.url}/healthz", timeout=30)
    result = run_official(
        PRELUDE + textwrap.dedent(script),
        env={
            "AGENTOPS_API_KEY": api_key,
            "AGENTOPS_API_ENDPOINT": live_server.url,
            "AGENTOPS_EXPORTER_ENDPOINT": f"{live_server.url}/v1/traces",
            "AGENTOPS_APP_URL": live_server.url,
            "AGENTOPS_LOGGING_TO_FILE": "false",
            "AGENTOPS_LOG_LEVEL": "WARNING",
            **NO_PHONE_HOME,
            **env,
        },
        version=OTLP_VERSION,
        check=check,
        timeout=180,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return (json.loads(lines[-1]) if lines else None), result


def trace_hex(expr: str) -> str:
    return f'format({expr}.span.get_span_context().trace_id, "032x")'


def api(live_server, api_key, path):
    response = requests.get(
        f"{live_server.url}{path}", headers={"X-Agentops-Api-Key": api_key}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("write", ["inline", "queued"])
def test_legacy_and_new_api_with_an_llm_call_and_the_log_upload(
    live_server, api_key, project, write, request, settings, tmp_path
):
    with contextlib.ExitStack() as stack:
        if write == "queued":
            # The product's default: answered once durable, written by a real Celery worker.
            settings.OTLP_WRITE = "queued"
            stack.enter_context(start_worker(request.getfixturevalue("celery_broker"), tmp_path))
        llm = stack.enter_context(FakeLLMServer())
        out, result = agent(
            f"""
            import openai
            agentops.init(auto_start_session=False)
            wait_for_token()
            print("hello from the agent")

            @agentops.tool(cost=0.02)
            def search(q):
                return f"results for {{q}}"

            @agentops.tool
            def flaky(n):
                raise ValueError(f"boom {{n}}")

            @agentops.operation
            def plan(goal):
                return ["search", "answer"]

            @agentops.agent
            class Researcher:
                def run(self, topic):
                    plan(topic)
                    return search(topic)

            legacy = agentops.start_session(tags=["legacy", "ci"])
            search("weather")
            agentops.end_session("Fail", end_state_reason="on purpose")

            trace = agentops.start_trace("research-run", tags=["new-api"])
            Researcher().run("otel")
            try:
                flaky(1)
            except ValueError:
                pass
            client = openai.OpenAI(base_url="{llm.url}/v1", api_key="k", max_retries=0)
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{{"role": "system", "content": "terse"}},
                          {{"role": "user", "content": "Capital of France?"}}],
            )
            agentops.end_trace(trace, "Success")
            print(json.dumps({{"legacy": {trace_hex("legacy")}, "trace": {trace_hex("trace")}}}))
            """,
            live_server,
            api_key,
        )
        eventually(lambda: not OtlpBatch.objects.exists(), what="every accepted batch written")
    assert "Error uploading logfile" not in result.stdout + result.stderr
    assert "Unexpected error during span export" not in result.stdout + result.stderr
    legacy = Session.objects.get(pk=out["legacy"])
    assert (legacy.end_state, legacy.end_state_reason) == ("Fail", "on purpose")
    assert sorted(legacy.tags.values_list("name", flat=True)) == ["ci", "legacy"]
    assert legacy.project == project and legacy.host_env["host.system"]
    assert legacy.tool_count == 1 and legacy.cost == Decimal("0.02")

    run = Session.objects.get(pk=out["trace"])
    assert run.end_state == "Success" and list(run.tags.values_list("name", flat=True)) == [
        "new-api"
    ]
    stats = api(live_server, api_key, f"/v2/sessions/{out['trace']}/stats")
    assert (stats["llms"], stats["errors"]) == (1, 1)
    assert stats["tools"] >= 2 and stats["actions"] >= 2  # search, flaky; Researcher, plan
    assert stats["prompt_tokens"] > 0 and stats["cost"] is not None
    export = api(live_server, api_key, f"/v2/sessions/{out['trace']}/export")
    (llm_row,) = export["llms"]
    assert llm_row["prompt"]["messages"][1]["content"] == "Capital of France?"
    assert llm_row["completion"]["messages"][0]["content"].startswith("Echo")
    (error,) = export["errors"]
    assert error["error_type"] == "ValueError" and error["details"] == "boom 1"
    # the agent's children carry its id; the tree is kept by span ids
    agent_event = Event.objects.get(session=run, name="Researcher")
    assert Event.objects.filter(session=run, agent_id=agent_event.id).count() >= 2
    # print() output, uploaded while the first root ended, before its span: joined by trace
    (log,) = TraceLog.objects.filter(project=project)
    assert "hello from the agent" in log.body and log.trace_id.hex == out["legacy"]


def test_a_second_process_joins_by_traceparent_and_a_crash_leaves_it_running(live_server, api_key):
    parent, _ = agent(
        f"""
        from opentelemetry import propagate
        agentops.init(auto_start_session=False)
        wait_for_token()
        trace = agentops.start_trace("distributed", tags=["parent"])
        carrier = {{}}
        propagate.inject(carrier)
        print(json.dumps({{"carrier": carrier, "trace": {trace_hex("trace")}}}))
        agentops.end_trace(trace, "Success")
        """,
        live_server,
        api_key,
    )
    agent(
        f"""
        from opentelemetry import context, propagate
        agentops.init(auto_start_session=False)
        wait_for_token()
        context.attach(propagate.extract({json.dumps(parent["carrier"])}))

        @agentops.tool
        def search(q):
            return "from the child"

        search("x")
        print(json.dumps({{}}))
        """,
        live_server,
        api_key,
    )
    session = Session.objects.get(pk=parent["trace"])
    assert session.end_state == "Success"
    assert Event.objects.filter(session=session, name="search").exists()

    crashed, result = agent(
        f"""
        agentops.init(auto_start_session=False)
        wait_for_token()
        trace = agentops.start_trace("doomed")

        @agentops.tool
        def step():
            return 1

        step()
        print(json.dumps({{"trace": {trace_hex("trace")}}}), flush=True)
        time.sleep(2.5)  # the batch processor exports the child (1 s schedule)
        os._exit(3)      # killed: no end_trace, no atexit flush
        """,
        live_server,
        api_key,
        check=False,
    )
    assert result.returncode == 3
    doomed = Session.objects.get(pk=crashed["trace"])
    assert doomed.end_state is None and doomed.root_span is None and doomed.tool_count == 1


OTEL_PRELUDE = """
import json, os, sys
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

provider = TracerProvider(resource=Resource.create({"service.name": "plain-otel"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
tracer = provider.get_tracer("vocabularies")
"""

VOCABULARIES = """
with tracer.start_as_current_span("agent-run") as root:
    root.set_attribute("tag.tags", ["plain"])
    with tracer.start_as_current_span("chat gpt-4o") as s:      # OTel GenAI
        s.set_attribute("gen_ai.operation.name", "chat")
        s.set_attribute("gen_ai.request.model", "gpt-4o")
        s.set_attribute("gen_ai.usage.input_tokens", 1000)
        s.set_attribute("gen_ai.usage.output_tokens", 500)
        s.set_attribute("gen_ai.input.messages", json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]))
    with tracer.start_as_current_span("ChatOpenAI") as s:        # OpenInference
        s.set_attribute("openinference.span.kind", "LLM")
        s.set_attribute("llm.model_name", "gpt-4o-mini")
        s.set_attribute("llm.token_count.prompt", 100)
        s.set_attribute("llm.token_count.completion", 10)
        s.set_attribute("llm.input_messages.0.message.role", "user")
        s.set_attribute("llm.input_messages.0.message.content", "hello")
    with tracer.start_as_current_span("search.tool") as s:       # OpenLLMetry
        s.set_attribute("traceloop.span.kind", "tool")
        s.set_attribute("traceloop.entity.name", "search")
        s.set_attribute("traceloop.entity.input", json.dumps({"q": "x"}))
    with tracer.start_as_current_span("GET /") as s:             # anything else
        s.set_attribute("http.method", "GET")
    trace_id = format(root.get_span_context().trace_id, "032x")
provider.shutdown()
print(json.dumps({"trace": trace_id}))
"""


@pytest.mark.parametrize("header", ["x-agentops-api-key", "authorization"])
def test_a_plain_otel_exporter_with_the_project_key_sends_each_vocabulary(
    live_server, api_key, header
):
    value = api_key if header == "x-agentops-api-key" else f"Bearer%20{api_key}"
    out, _ = agent(
        OTEL_PRELUDE + VOCABULARIES,
        live_server,
        api_key,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{live_server.url}/v1/traces",
        OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"{header}={value}",
    )
    session = Session.objects.get(pk=out["trace"])
    assert session.end_state == "Indeterminate"  # a root with UNSET status
    assert list(session.tags.values_list("name", flat=True)) == ["plain"]
    models = dict(
        Event.objects.filter(session=session, event_type="llms").values_list(
            "model", "prompt_tokens"
        )
    )
    assert models == {"gpt-4o": 1000, "gpt-4o-mini": 100}
    assert Event.objects.get(session=session, event_type="tools").name == "search"
    assert session.cost is not None and session.cost > 0
    assert session.action_count == 2  # the root (a plain span is an event) and GET /


def test_a_plain_exporter_is_refused_with_a_bad_key_and_nothing_is_stored(live_server, api_key):
    start = time.monotonic()
    agent(
        OTEL_PRELUDE + VOCABULARIES,
        live_server,
        api_key,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{live_server.url}/v1/traces",
        OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-agentops-api-key=00000000-0000-4000-8000-000000000000",
    )
    assert time.monotonic() - start < 30  # a 401 is not retried: no 10 s backoff
    assert Session.objects.count() == 0
