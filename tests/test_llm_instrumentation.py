"""LLM calls recorded by themselves: the real OpenAI, Anthropic and LiteLLM clients talk to a
fake provider on 127.0.0.1 (tests/fake_llm_servers.py); our SDK, after agentops.init(), sends
the calls to our real server (live_server), and the tests read what the server stored."""

import asyncio
import gc
import json
import os
import subprocess
import sys
import textwrap
import uuid
import weakref
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM: no price-map download

import agentops
import anthropic
import openai
import pydantic
from agentops import llms
from anthropic.resources.messages import messages as anthropic_messages
from openai.resources.chat.completions import completions as openai_chat
from openai.resources.responses import responses as openai_responses

from analytics.pricing import price_llm_call
from events.models import Event
from sessions.models import Session
from tests.fake_llm_servers import TOOL_ARGS, FakeLLMServer

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent

# The library functions as they were before anything patched them.
ORIGINALS = {
    (cls, name): cls.__dict__[name]
    for cls, name in [
        (openai_chat.Completions, "create"),
        (openai_chat.AsyncCompletions, "create"),
        (openai_responses.Responses, "create"),
        (openai_responses.AsyncResponses, "create"),
        (anthropic_messages.Messages, "create"),
        (anthropic_messages.AsyncMessages, "create"),
        (anthropic_messages.Messages, "stream"),
        (anthropic_messages.AsyncMessages, "stream"),
        (openai_chat.Completions, "parse"),
        (openai_responses.Responses, "parse"),
        (anthropic_messages.Messages, "parse"),
    ]
}
WEATHER_CALL_ARGS = json.dumps(TOOL_ARGS)


@pytest.fixture
def fake():
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def start_session(live_server, api_key, monkeypatch):
    """agentops.init() on a fresh default client, against our live server; everything
    uninstrumented and ended afterwards."""
    monkeypatch.setattr(agentops, "_client", None)
    llms.uninstrument()  # whatever an earlier test's init() left patched in this process
    started = []

    def start(**settings):
        session = agentops.init(
            api_key=api_key,
            endpoint=live_server.url,
            max_wait_time=50,
            max_flush_time=10_000,
            **settings,
        )
        started.append(session)
        return session

    yield start
    client = agentops.get_client()
    for session in client.sessions:
        session.end_session("Indeterminate")
    llms.uninstrument()
    # Stop this client's sender thread, so that its keep-alive connection to the live server
    # closes (the SDK has no public shutdown yet): a live-server thread serving it would keep
    # a database connection open, and Postgres refuses to drop the test database past one.
    sender = client._sender
    sender._stopped = True
    sender._wake.set()
    if sender._thread is not None:
        sender._thread.join(5)


def stored(session) -> list[Event]:
    """The session's events as our server stored them, in the order they began."""
    # end_session() gives the cost, which is None when unknown: the confirmation is separate.
    session.end_session("Success")
    assert session.delivery.end_confirmed, "the server did not confirm the end"
    return list(Event.objects.filter(session_id=session.session_id).order_by("init_timestamp"))


def assert_llm(event, *, model, prompt, completion, served, priced_model=None):
    """One LLM event as the server keeps it: what the provider said, priced by the server."""
    assert event.event_type == "llms"
    assert event.model == model
    assert event.payload["prompt"] == prompt
    assert event.payload["completion"] == completion
    assert (event.prompt_tokens, event.completion_tokens) == (
        served.prompt_tokens,
        served.completion_tokens,
    )
    expected = price_llm_call(priced_model or model, served.prompt_tokens, served.completion_tokens)
    assert expected is not None and expected > 0
    assert event.cost == expected and event.cost_source == "price_table"
    assert event.end_timestamp > event.init_timestamp


def user(text):
    return [{"role": "user", "content": text}]


def echo(text):
    return {"role": "assistant", "content": f"Echo: {text}"}


def weather_call(call_id):
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": "get_weather", "arguments": WEATHER_CALL_ARGS},
            }
        ],
    }


# --- OpenAI ---------------------------------------------------------------------------------


def test_openai_chat_calls_sync_async_and_streamed_are_recorded_and_priced_by_the_server(
    fake, start_session
):
    session = start_session()
    client = openai.OpenAI(base_url=fake.openai_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=user("hello there"))
    client.chat.completions.create(model="gpt-4o-mini", messages=user("weather? [tool]"))
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=user("stream this please"),
        stream=True,
        stream_options={"include_usage": True},
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == "Echo: stream this please"
    tool_stream = client.chat.completions.create(
        model="gpt-4o",
        messages=user("streamed weather [tool]"),
        stream=True,
        stream_options={"include_usage": True},
    )
    list(tool_stream)

    async def async_calls():
        aclient = openai.AsyncOpenAI(base_url=fake.openai_url, api_key="sk-test", max_retries=0)
        await aclient.chat.completions.create(model="gpt-4o-mini", messages=user("async hi"))
        astream = await aclient.chat.completions.create(
            model="gpt-4o-mini",
            messages=user("async stream"),
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _ in astream:
            pass

    asyncio.run(async_calls())

    events = stored(session)
    served = fake.served
    assert len(events) == len(served) == 6
    assert_llm(
        events[0],
        model="gpt-4o-mini",
        prompt=user("hello there"),
        completion=echo("hello there"),
        served=served[0],
    )
    assert_llm(
        events[1],
        model="gpt-4o-mini",
        prompt=user("weather? [tool]"),
        completion=weather_call("call_2"),
        served=served[1],
    )
    assert_llm(
        events[2],
        model="gpt-4o",
        prompt=user("stream this please"),
        completion=echo("stream this please"),
        served=served[2],
    )
    assert events[2].payload["params"]["stream"] is True
    assert events[1].payload["returns"] == {"id": "chatcmpl-2", "finish_reason": "tool_calls"}
    assert events[3].payload["returns"] == {"id": "chatcmpl-4", "finish_reason": "tool_calls"}
    assert_llm(
        events[3],
        model="gpt-4o",
        prompt=user("streamed weather [tool]"),
        completion=weather_call("call_4"),
        served=served[3],
    )
    assert_llm(
        events[4],
        model="gpt-4o-mini",
        prompt=user("async hi"),
        completion=echo("async hi"),
        served=served[4],
    )
    assert_llm(
        events[5],
        model="gpt-4o-mini",
        prompt=user("async stream"),
        completion=echo("async stream"),
        served=served[5],
    )
    assert "api_key" not in json.dumps(events[0].payload)
    assert Session.objects.get(pk=session.session_id).cost == sum(e.cost for e in events)


def test_openai_responses_api_maps_input_and_output_to_chat_messages(fake, start_session):
    session = start_session()
    client = openai.OpenAI(base_url=fake.openai_url, api_key="sk-test", max_retries=0)
    response = client.responses.create(
        model="gpt-4.1-mini", instructions="Answer briefly.", input="what is up"
    )
    assert response.output_text == "Echo: what is up"
    client.responses.create(
        model="gpt-4.1-mini",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "weather [tool]"}]}],
    )
    with client.responses.stream(model="gpt-4.1-mini", input="stream the response") as stream:
        for _ in stream:
            pass

    events = stored(session)
    assert len(events) == 3
    assert_llm(
        events[0],
        model="gpt-4.1-mini",
        prompt=[{"role": "system", "content": "Answer briefly."}, *user("what is up")],
        completion=echo("what is up"),
        served=fake.served[0],
    )
    assert_llm(
        events[1],
        model="gpt-4.1-mini",
        prompt=user("weather [tool]"),
        completion=weather_call("call_2"),
        served=fake.served[1],
    )
    assert_llm(
        events[2],
        model="gpt-4.1-mini",
        prompt=user("stream the response"),
        completion=echo("stream the response"),
        served=fake.served[2],
    )


# --- Anthropic ------------------------------------------------------------------------------


def test_anthropic_messages_sync_async_streamed_and_stream_helper_are_recorded(fake, start_session):
    session = start_session()
    client = anthropic.Anthropic(base_url=fake.anthropic_url, api_key="sk-ant", max_retries=0)
    message = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=200,
        system="You are terse.",
        messages=user("hello claude"),
    )
    assert message.content[0].text == "Echo: hello claude"
    for _ in client.messages.create(
        model="claude-haiku-4-5", max_tokens=200, messages=user("weather [tool]"), stream=True
    ):
        pass
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=200, messages=user("helper stream")
    ) as stream:
        assert stream.get_final_text() == "Echo: helper stream"

    async def async_calls():
        aclient = anthropic.AsyncAnthropic(
            base_url=fake.anthropic_url, api_key="sk-ant", max_retries=0
        )
        await aclient.messages.create(
            model="claude-sonnet-4-6", max_tokens=200, messages=user("async claude")
        )
        async with aclient.messages.stream(
            model="claude-sonnet-4-6", max_tokens=200, messages=user("async helper")
        ) as astream:
            async for _ in astream:
                pass

    asyncio.run(async_calls())

    events = stored(session)
    served = fake.served
    assert len(events) == 5
    assert_llm(
        events[0],
        model="claude-haiku-4-5",
        prompt=[{"role": "system", "content": "You are terse."}, *user("hello claude")],
        completion=echo("hello claude"),
        served=served[0],
    )
    assert_llm(
        events[1],
        model="claude-haiku-4-5",
        prompt=user("weather [tool]"),
        completion=weather_call("toolu_2"),
        served=served[1],
    )
    assert_llm(
        events[2],
        model="claude-haiku-4-5",
        prompt=user("helper stream"),
        completion=echo("helper stream"),
        served=served[2],
    )
    assert_llm(
        events[3],
        model="claude-sonnet-4-6",
        prompt=user("async claude"),
        completion=echo("async claude"),
        served=served[3],
    )
    assert_llm(
        events[4],
        model="claude-sonnet-4-6",
        prompt=user("async helper"),
        completion=echo("async helper"),
        served=served[4],
    )


# --- structured outputs: parse() posts by itself, not through create() -----------------------


class Weather(pydantic.BaseModel):
    city: str
    unit: str


def test_structured_output_parse_calls_are_recorded(fake, start_session):
    session = start_session()
    oclient = openai.OpenAI(base_url=fake.openai_url, api_key="sk-test", max_retries=0)
    aclient = anthropic.Anthropic(base_url=fake.anthropic_url, api_key="sk-ant", max_retries=0)
    parsed = oclient.chat.completions.parse(
        model="gpt-4o-mini", messages=user("[json] chat"), response_format=Weather
    )
    assert parsed.choices[0].message.parsed == Weather(**TOOL_ARGS)
    response = oclient.responses.parse(
        model="gpt-4o-mini", input="[json] responses", text_format=Weather
    )
    assert response.output_parsed == Weather(**TOOL_ARGS)
    message = aclient.messages.parse(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=user("[json] claude"),
        output_format=Weather,
    )
    assert message.parsed_output == Weather(**TOOL_ARGS)

    events = stored(session)
    answer = {"role": "assistant", "content": WEATHER_CALL_ARGS}
    assert len(events) == 3
    for event, model, prompt, served in zip(
        events,
        ["gpt-4o-mini", "gpt-4o-mini", "claude-haiku-4-5"],
        [user("[json] chat"), user("[json] responses"), user("[json] claude")],
        fake.served,
        strict=True,
    ):
        assert_llm(event, model=model, prompt=prompt, completion=answer, served=served)


def test_a_dropped_stream_is_freed_at_once_and_recorded_with_what_came(fake, start_session):
    """Anthropic's client frees (and so closes) a stream nobody holds any more, by reference
    counting alone; the instrumentation must not tie it into a cycle that waits for the GC."""
    session = start_session()
    client = anthropic.Anthropic(base_url=fake.anthropic_url, api_key="sk-ant", max_retries=0)
    stream = client.messages.create(
        model="claude-haiku-4-5", max_tokens=200, messages=user("left unread"), stream=True
    )
    assert next(stream).type == "message_start"
    gc.disable()
    try:
        dropped = weakref.ref(stream)
        del stream
        assert dropped() is None
    finally:
        gc.enable()
    (event,) = stored(session)
    assert event.payload["completion"] == {"role": "assistant", "content": None}
    assert (event.prompt_tokens, event.completion_tokens) == (fake.served[0].prompt_tokens, 1)


def test_closing_a_stream_early_closes_it_as_the_library_does_and_records_what_came(
    fake, start_session
):
    session = start_session()

    async def read_one_then_close():
        client = openai.AsyncOpenAI(base_url=fake.openai_url, api_key="sk-test", max_retries=0)
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=user("close me early"), stream=True
        )
        await stream.__anext__()  # the role chunk
        first = await stream.__anext__()
        await stream.close()
        return first.choices[0].delta.content, stream.response.is_closed

    content, closed = asyncio.run(read_one_then_close())
    assert (content, closed) == ("Echo:", True)
    with openai.OpenAI(base_url=fake.openai_url, api_key="sk-test", max_retries=0) as client:
        with client.chat.completions.create(
            model="gpt-4o-mini", messages=user("sync close"), stream=True
        ) as stream:
            next(stream)
        assert stream.response.is_closed

    events = stored(session)
    assert [e.payload["completion"] for e in events] == [
        {"role": "assistant", "content": "Echo:"},
        {"role": "assistant", "content": None},
    ]
    assert all(e.prompt_tokens is None for e in events)  # no usage without include_usage


# --- LiteLLM --------------------------------------------------------------------------------


def test_litellm_completion_is_recorded_once_not_again_through_the_openai_client(
    fake, start_session
):
    import litellm

    session = start_session()
    response = litellm.completion(
        model="openai/gpt-4o-mini",
        messages=user("hello litellm"),
        api_base=fake.openai_url,
        api_key="sk-test",
    )
    assert response.choices[0].message.content == "Echo: hello litellm"
    stream = litellm.completion(
        model="openai/gpt-4o-mini",
        messages=user("litellm stream"),
        api_base=fake.openai_url,
        api_key="sk-test",
        stream=True,
        stream_options={"include_usage": True},
    )
    assert isinstance(stream, litellm.CustomStreamWrapper)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Echo: litellm stream"

    async def async_call():
        return await litellm.acompletion(
            model="openai/gpt-4o-mini",
            messages=user("async litellm [tool]"),
            api_base=fake.openai_url,
            api_key="sk-test",
        )

    asyncio.run(async_call())

    async def async_stream():
        stream = await litellm.acompletion(
            model="openai/gpt-4o-mini",
            messages=user("async litellm stream"),
            api_base=fake.openai_url,
            api_key="sk-test",
            stream=True,
            stream_options={"include_usage": True},
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(async_stream()) == "Echo: async litellm stream"
    with pytest.raises(litellm.BadRequestError):
        litellm.completion(
            model="openai/gpt-4o-mini",
            messages=user("[error]"),
            api_base=fake.openai_url,
            api_key="sk-test",
            num_retries=0,
        )

    events = stored(session)
    assert len(fake.served) == 5
    # One event per LiteLLM call, not one more per OpenAI call inside it.
    assert [e.event_type for e in events] == ["llms"] * 5 + ["errors"]
    assert events[5].trigger_event_id == events[4].id and events[5].name == "BadRequestError"
    assert events[4].payload["prompt"] == user("[error]")
    assert_llm(
        events[3],
        model="gpt-4o-mini",
        prompt=user("async litellm stream"),
        completion=echo("async litellm stream"),
        served=fake.served[3],
    )
    assert_llm(
        events[0],
        model="gpt-4o-mini",
        prompt=user("hello litellm"),
        completion=echo("hello litellm"),
        served=fake.served[0],
    )
    assert_llm(
        events[1],
        model="gpt-4o-mini",
        prompt=user("litellm stream"),
        completion=echo("litellm stream"),
        served=fake.served[1],
    )
    assert_llm(
        events[2],
        model="gpt-4o-mini",
        prompt=user("async litellm [tool]"),
        completion=weather_call("call_3"),
        served=fake.served[2],
    )
    assert "api_key" not in events[0].payload["params"]
    assert events[0].payload["params"]["api_base"] == fake.openai_url


# --- failures -------------------------------------------------------------------------------


def test_a_failing_call_records_an_error_linked_to_its_llm_event_and_reraises_untouched(
    fake, start_session
):
    session = start_session()
    oclient = openai.OpenAI(base_url=fake.openai_url, api_key="sk-test", max_retries=0)
    aclient = anthropic.Anthropic(base_url=fake.anthropic_url, api_key="sk-ant", max_retries=0)
    with pytest.raises(openai.BadRequestError) as openai_error:
        oclient.chat.completions.create(model="gpt-4o", messages=user("please [error]"))
    assert openai_error.value.status_code == 400
    assert openai_error.value.body["code"] == "fake_error"
    # The traceback ends inside the library, as it would without us.
    assert "openai" in openai_error.traceback[-1].path.parts
    with pytest.raises(anthropic.BadRequestError):
        aclient.messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=user("please [error]")
        )
    stream = oclient.chat.completions.create(
        model="gpt-4o", messages=user("go [stream-error]"), stream=True
    )
    with pytest.raises(openai.APIError, match="The stream broke"):
        for _ in stream:
            pass

    events = stored(session)
    llm_events = [e for e in events if e.event_type == "llms"]
    errors = [e for e in events if e.event_type == "errors"]
    assert len(llm_events) == len(errors) == 3
    by_id = {e.id: e for e in llm_events}
    for error in errors:
        assert error.trigger_event_id in by_id
    triggered = {by_id[e.trigger_event_id].model: e for e in errors}
    assert triggered["claude-haiku-4-5"].name == "BadRequestError"
    assert triggered["claude-haiku-4-5"].payload["code"] == "400"
    openai_errors = sorted(
        (e for e in errors if by_id[e.trigger_event_id].model == "gpt-4o"),
        key=lambda e: e.init_timestamp,
    )
    assert [e.name for e in openai_errors] == ["BadRequestError", "APIError"]
    assert "The stream broke" in openai_errors[1].payload["details"]
    broken = by_id[openai_errors[1].trigger_event_id]
    assert broken.payload["completion"] == {"role": "assistant", "content": "Echo:"}
    assert broken.payload["prompt"] == user("go [stream-error]")


# --- the library's behaviour is its own -----------------------------------------------------


def _chunks(stream):
    out = []
    for chunk in stream:
        data = chunk.model_dump()
        data.pop("id"), data.pop("created")
        out.append(data)
    return out


def test_return_values_and_streams_are_the_librarys_own(fake, start_session):
    client = openai.OpenAI(base_url=fake.openai_url, api_key="sk-test", max_retries=0)
    ask = {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True}}
    before = _chunks(client.chat.completions.create(messages=user("same stream"), **ask))

    session = start_session()
    stream = client.chat.completions.create(messages=user("same stream"), **ask)
    assert type(stream) is openai.Stream
    after = _chunks(stream)
    result = client.chat.completions.create(model="gpt-4o", messages=user("plain"))
    assert type(result) is openai.types.chat.ChatCompletion
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=user("raw"))
    assert raw.parse().choices[0].message.content == "Echo: raw"

    assert after == before and len(after) > 3
    events = stored(session)
    assert [e.payload["prompt"] for e in events] == [
        user("same stream"),
        user("plain"),
        user("raw"),
    ]


def test_a_failure_of_the_instrumentation_is_logged_and_the_call_goes_on(
    fake, start_session, caplog
):
    start_session()
    from agentops.llms import _record

    def broken_sink(event):
        raise RuntimeError("the recorder broke")

    _record.set_sink(broken_sink)
    try:
        client = openai.OpenAI(base_url=fake.openai_url, api_key="sk-test", max_retries=0)
        result = client.chat.completions.create(model="gpt-4o", messages=user("still works"))
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="gpt-4o", messages=user("[error]"))
    finally:
        _record.set_sink(None)
    assert result.choices[0].message.content == "Echo: still works"
    assert "the recorder broke" in caplog.text


def test_instrument_llm_calls_false_patches_nothing(fake, start_session):
    session = start_session(instrument_llm_calls=False)
    assert session is not None
    for (cls, name), original in ORIGINALS.items():
        assert cls.__dict__[name] is original, f"{cls.__name__}.{name} was patched"
    assert not any(type(f).__name__ == "PostImportFinder" for f in sys.meta_path)
    client = openai.OpenAI(base_url=fake.openai_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=user("not recorded"))
    assert stored(session) == []


def test_uninstrument_puts_every_original_back(start_session):
    start_session()
    assert (
        openai_chat.Completions.__dict__["create"]
        is not ORIGINALS[(openai_chat.Completions, "create")]
    )
    llms.uninstrument()
    for (cls, name), original in ORIGINALS.items():
        assert cls.__dict__[name] is original


IMPORT_AFTER_INIT = """
import json, sys
import agentops

session = agentops.init(max_wait_time=50)
imported_by_init = sorted(m for m in ("openai", "anthropic", "litellm") if m in sys.modules)

import openai  # after init(): patched as it is imported
import anthropic

openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="k", max_retries=0).chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "late import"}])
anthropic.Anthropic(base_url=sys.argv[1], api_key="k", max_retries=0).messages.create(
    model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "late too"}])
session.end_session("Success")
print(json.dumps({"session_id": str(session.session_id), "imported_by_init": imported_by_init}))
"""


def test_init_before_the_library_is_imported_patches_it_on_import_and_imports_nothing(
    fake, live_server, api_key
):
    env = {
        **os.environ,
        "AGENTOPS_API_KEY": api_key,
        "AGENTOPS_API_ENDPOINT": live_server.url,
        "AGENTOPS_LOGGING_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(IMPORT_AFTER_INIT), fake.url],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["imported_by_init"] == []
    events = list(
        Event.objects.filter(session_id=uuid.UUID(out["session_id"])).order_by("init_timestamp")
    )
    assert [(e.model, e.payload["prompt"]) for e in events] == [
        ("gpt-4o-mini", user("late import")),
        ("claude-haiku-4-5", user("late too")),
    ]
    assert all(e.cost_source == "price_table" and e.cost > 0 for e in events)
    assert Session.objects.get(pk=out["session_id"]).cost == sum(e.cost for e in events)


def test_prompt_cache_and_reasoning_counts_travel_and_are_priced_at_cache_prices(
    fake, start_session
):
    """Each provider's own usage convention, read right: OpenAI's prompt_tokens (chat) and
    input_tokens (responses) include the cached tokens; Anthropic's input_tokens leave out the
    cache reads and writes, which our SDK adds back (analytics/pricing.py cites both)."""
    import litellm

    session = start_session()
    oa = openai.OpenAI(base_url=fake.openai_url, api_key="sk-test", max_retries=0)
    oa.chat.completions.create(model="gpt-4o", messages=user("long shared context [cached]"))
    list(
        oa.chat.completions.create(
            model="gpt-4o",
            messages=user("streamed [cached]"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    oa.responses.create(model="gpt-4o", input="responses api [cached]")
    an = anthropic.Anthropic(base_url=fake.anthropic_url, api_key="sk-ant", max_retries=0)
    claude = "claude-3-5-sonnet-20241022"
    an.messages.create(model=claude, max_tokens=9, messages=user("a cached system [cached]"))
    for _ in an.messages.create(
        model=claude, max_tokens=9, messages=user("streamed claude [cached]"), stream=True
    ):
        pass
    litellm.completion(
        model="openai/gpt-4o",
        messages=user("through litellm [cached]"),
        api_base=fake.openai_url,
        api_key="sk-test",
    )
    events = stored(session)
    served = fake.served
    assert len(events) == len(served) == 6
    for event, s in zip(events, served, strict=True):
        assert s.cache_read_tokens > 0
        assert (event.prompt_tokens, event.completion_tokens) == (
            s.prompt_tokens,
            s.completion_tokens,
        ), s
        parts = {k: event.payload.get(k) or 0 for k in ("cache_read_tokens", "cache_write_tokens")}
        assert parts == {
            "cache_read_tokens": s.cache_read_tokens,
            "cache_write_tokens": s.cache_write_tokens,
        }, s
        assert (event.payload.get("reasoning_tokens") or 0) == s.reasoning_tokens
        model = "gpt-4o" if s.api != "messages" else claude
        expected = price_llm_call(
            model,
            s.prompt_tokens,
            s.completion_tokens,
            cache_read_tokens=s.cache_read_tokens,
            cache_write_tokens=s.cache_write_tokens,
        )
        assert event.cost == expected and event.cost_source == "price_table"
        if s.api != "messages":  # OpenAI's cache reads cost half the input price
            assert expected < price_llm_call(model, s.prompt_tokens, s.completion_tokens)
    assert any(s.cache_write_tokens for s in served) and any(s.reasoning_tokens for s in served)
