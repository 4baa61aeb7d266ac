"""Issue 15, "nothing lost": odd but real input never costs a session, an event or its price,
and costs are exact. One test per fault, with the right value (prices from the genai-prices
table: gpt-4o $2.50/$10 per million input/output tokens, $1.25 cached; gpt-4.1 $2/$8;
claude-3-5-sonnet $3/$15, cache reads $0.30; claude-3-haiku $0.25/$1.25). The official SDK
0.3.26 goes through the same faults in tests/test_official_sdk.py."""

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest

from events.models import Event
from sessions.models import Agent, Session
from tests.v2 import T0, event, iso, llm, post, send, start


@pytest.fixture
def live(client, api_key):
    return start(client, api_key)


def update(client, jwt, **fields):
    response = post(client, "/v2/update_session", {"session": fields}, jwt=jwt)
    assert response.status_code == 200, response.content
    return response.json()


# --- 1. NUL characters, every text field of every v2 endpoint ----------------------------------


def test_a_nul_in_the_end_reason_ends_the_session_with_it_replaced(client, live):
    sid, jwt = live
    answer = update(
        client, jwt, end_timestamp=iso(T0), end_state="Fail", end_state_reason="tool\x00crashed"
    )
    session = Session.objects.get(id=sid)
    assert (session.end_state, session.end_state_reason) == ("Fail", "tool\ufffdcrashed")
    assert "session.end_state_reason" in answer["warnings"]


def test_nuls_in_session_tags_host_env_agents_and_sdk_errors_are_replaced(client, api_key):
    sid = str(uuid.uuid4())
    body = {
        "session": {
            "session_id": sid,
            "tags": ["a\x00b"],
            "host_env": {"OS\x00": {"name": "Linux\x00"}},
        }
    }
    response = post(client, "/v2/create_session", body, key=api_key)
    assert response.status_code == 200, response.content
    session = Session.objects.get(id=sid)
    assert list(session.tags.values_list("name", flat=True)) == ["a\ufffdb"]
    assert session.host_env == {"OS\ufffd": {"name": "Linux\ufffd"}}
    assert set(response.json()["warnings"]) == {
        "session.tags[0]",
        "session.host_env.OS\ufffd",
        "session.host_env.OS\ufffd.name",
    }
    jwt = response.json()["jwt"]
    agent_id = str(uuid.uuid4())
    answer = post(client, "/v2/create_agent", {"id": agent_id, "name": "plan\x00ner"}, jwt=jwt)
    assert answer.status_code == 200 and "name" in answer.json()["warnings"]
    assert Agent.objects.get(id=agent_id).name == "plan\ufffdner"
    body = {"type": "Key\x00Error", "message": "m\x00", "stack_trace": "\x00"}
    assert post(client, "/v2/developer_errors", body, key=api_key).status_code == 204
    answer = update(client, jwt, tags=["x\x00"])
    assert list(session.tags.values_list("name", flat=True)) == ["x\ufffd"]
    assert answer["warnings"]


# --- 2. Over-long and too many session fields ----------------------------------------------------


def test_101_tags_and_a_201_character_tag_still_create_the_session(client, api_key):
    sid = str(uuid.uuid4())
    tags = [f"t{i:03}" for i in range(101)]
    response = post(
        client, "/v2/create_session", {"session": {"session_id": sid, "tags": tags}}, key=api_key
    )
    assert response.status_code == 200
    assert response.json()["warnings"]["session.tags"] == [
        "At most 100 tags per session: 1 more left out."
    ]
    assert sorted(Session.objects.get(id=sid).tags.values_list("name", flat=True)) == tags[:100]

    sid = str(uuid.uuid4())
    long_tag = "x" * 201
    response = post(
        client,
        "/v2/create_session",
        {"session": {"session_id": sid, "tags": [long_tag, "ok"]}},
        key=api_key,
    )
    assert response.status_code == 200
    assert "session.tags[0]" in response.json()["warnings"]
    names = sorted(Session.objects.get(id=sid).tags.values_list("name", flat=True))
    assert names == ["ok", "x" * 199 + "…"]


def test_bounded_session_fields_on_update_are_cut_or_left_out_never_the_end(client, live):
    sid, jwt = live
    answer = update(
        client,
        jwt,
        end_timestamp=iso(T0 + timedelta(minutes=1)),
        end_state="Success",
        end_state_reason="r" * 10_001,
        tags=[f"t{i}" for i in range(150)] + [{"not": "a tag"}],
        video="not a url",
    )
    session = Session.objects.get(id=sid)
    assert session.end_state == "Success"
    assert len(session.end_state_reason) == 10_000 and session.end_state_reason.endswith("…")
    assert session.tags.count() == 100
    assert session.video == ""
    assert set(answer["warnings"]) == {
        "session.end_state_reason",
        "session.tags",
        "session.video",
    }
    assert len(answer["warnings"]["session.tags"]) == 2  # the dict, and 50 past the hundredth


def test_host_env_over_its_bound_keeps_the_first_keys_and_a_non_object_is_left_out(client, api_key):
    sid = str(uuid.uuid4())
    host_env = {f"k{i}": i for i in range(2_001)}
    response = post(
        client,
        "/v2/create_session",
        {"session": {"session_id": sid, "host_env": host_env}},
        key=api_key,
    )
    assert response.status_code == 200 and "session.host_env" in response.json()["warnings"]
    stored = Session.objects.get(id=sid).host_env
    assert len(stored) == 2_000 and "k1999" in stored and "k2000" not in stored
    sid = str(uuid.uuid4())
    response = post(
        client, "/v2/create_session", {"session": {"session_id": sid, "host_env": [1]}}, key=api_key
    )
    assert response.status_code == 200 and Session.objects.get(id=sid).host_env is None


# --- 3. NaN and Infinity -------------------------------------------------------------------------


def test_a_nan_in_one_event_costs_no_event_of_the_batch(client, live):
    _sid, jwt = live
    odd = event("tools", name="search", params={"score": float("nan"), "top": float("inf")})
    batch = [llm(), odd, llm(cost=float("-inf"))]
    body = json.dumps({"events": batch}).encode()  # what the official SDK's json.dumps sends
    assert b"NaN" in body and b"-Infinity" in body
    response = post(client, "/v2/create_events", None, jwt=jwt, raw=body)
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["accepted"] == 3 and result["rejected"] == []
    stored = Event.objects.get(id=odd["id"])
    assert stored.payload["params"] == {"score": None, "top": None}
    assert set(stored.payload["repaired"]) == {"params.score", "params.top"}
    priced = Event.objects.get(id=batch[2]["id"])
    assert priced.cost == Decimal("0.00075") and priced.cost_source == "price_table"
    assert {w["index"] for w in result["warnings"]} == {1, 2}


def test_a_nan_in_a_session_update_is_nulled(client, live):
    _sid, jwt = live
    body = json.dumps({"session": {"tags": ["a"], "host_env": {"load": float("nan")}}}).encode()
    response = post(client, "/v2/update_session", None, jwt=jwt, raw=body)
    assert response.status_code == 200
    assert "session.host_env.load" in response.json()["warnings"]


# --- 4. Oversized events -------------------------------------------------------------------------


def test_an_oversized_llm_call_is_stored_with_its_tokens_and_price(client, live):
    sid, jwt = live
    small = llm(model="gpt-4o", prompt_tokens=10_000, completion_tokens=1_000)  # $0.035
    huge = llm(
        model="gpt-4.1",
        prompt=[{"role": "user", "content": "p" * 1_500_000}],
        prompt_tokens=375_000,
        completion_tokens=1_000,
    )
    result = send(client, jwt, [small, huge])
    assert result["accepted"] == 2 and result["rejected"] == []
    stored = Event.objects.get(id=huge["id"])
    assert stored.cost == Decimal("0.758") and stored.prompt_tokens == 375_000
    content = stored.payload["prompt"][0]["content"]
    assert content.startswith("ppp") and content.endswith("characters]")
    assert "…[truncated " in content and len(content) < 1_048_576
    assert "prompt[0].content" in stored.payload["repaired"]
    assert Session.objects.get(id=sid).cost == Decimal("0.793")


# --- 5. Clock skew -------------------------------------------------------------------------------


def test_an_llm_call_ending_before_it_starts_is_kept_clamped_and_counted(client, live):
    sid, jwt = live
    skewed = llm(
        prompt_tokens=10_000,
        completion_tokens=1_000,
        init_timestamp=iso(T0 + timedelta(seconds=2)),
        end_timestamp=iso(T0),
    )
    result = send(client, jwt, [skewed])
    assert result["accepted"] == 1
    assert "clock skew" in result["warnings"][0]["repairs"]["end_timestamp"][0]
    stored = Event.objects.get(id=skewed["id"])
    assert stored.end_timestamp == stored.init_timestamp == T0 + timedelta(seconds=2)
    assert stored.cost == Decimal("0.035") and "end_timestamp" in stored.payload["repaired"]
    assert Session.objects.get(id=sid).cost == Decimal("0.035")


def test_a_missing_or_unreadable_time_is_taken_from_the_other(client, live):
    _sid, jwt = live
    no_start = llm(init_timestamp=None)
    far_end = llm(end_timestamp="3000-01-01T00:00:00Z")
    result = send(client, jwt, [no_start, far_end])
    assert result["accepted"] == 2
    assert Event.objects.get(id=no_start["id"]).init_timestamp == T0 + timedelta(seconds=1)
    assert Event.objects.get(id=far_end["id"]).end_timestamp is None


# --- 6. Token counts -----------------------------------------------------------------------------


def test_a_numeric_string_token_count_is_taken_as_its_number(client, live):
    _, jwt = live
    sent = llm(prompt_tokens="1000", completion_tokens=" 500 ")
    result = send(client, jwt, [sent])
    assert result["accepted"] == 1
    stored = Event.objects.get(id=sent["id"])
    assert (stored.prompt_tokens, stored.completion_tokens) == (1000, 500)
    assert stored.cost == Decimal("0.0075") and stored.payload["prompt_tokens"] == 1000
    assert set(stored.payload["repaired"]) == {"prompt_tokens", "completion_tokens"}


def test_a_call_missing_its_completion_count_is_unknown_not_cheap(client, live):
    sid, jwt = live
    partial = llm(prompt_tokens=1000, completion_tokens=None)  # it has a completion
    embedding = llm(prompt_tokens=1000, completion_tokens=None, completion=None)
    result = send(client, jwt, [partial, embedding])
    stored = Event.objects.get(id=partial["id"])
    assert stored.cost is None and stored.cost_source == "unknown"
    assert "completion_tokens is missing" in stored.payload["repaired"]["cost"][0]
    assert result["warnings"][0]["repairs"]["cost"]
    complete = Event.objects.get(id=embedding["id"])
    assert complete.cost == Decimal("0.0025") and complete.cost_source == "price_table"
    session = Session.objects.get(id=sid)
    assert session.cost == Decimal("0.0025") and session.cost_unknown_events == 1


def test_nonsense_counts_keep_the_call_with_the_count_unknown(client, live):
    sid, jwt = live
    batch = [llm(prompt_tokens=-3), llm(completion_tokens="lots"), llm(prompt_tokens=[1])]
    result = send(client, jwt, batch)
    assert result["accepted"] == 3
    assert [sorted(w["repairs"]) for w in result["warnings"]] == [
        ["cost", "prompt_tokens"],
        ["completion_tokens", "cost"],
        ["cost", "prompt_tokens"],
    ]
    assert Session.objects.get(id=sid).cost_unknown_events == 3


# --- 7. Prompt caching ---------------------------------------------------------------------------


def test_openai_cached_tokens_are_priced_at_the_cache_price(client, live):
    _, jwt = live
    sent = llm(
        model="gpt-4o",
        prompt_tokens=10_000,
        completion_tokens=1_000,
        cache_read_tokens=9_000,
        reasoning_tokens=0,
    )
    send(client, jwt, [sent])
    stored = Event.objects.get(id=sent["id"])
    assert stored.cost == Decimal("0.02375")
    assert stored.payload["cache_read_tokens"] == 9_000


def test_anthropic_cache_reads_are_priced_at_the_cache_price(client, live):
    _, jwt = live
    # On the wire prompt_tokens includes the cache (OpenAI's and genai-prices' convention).
    sent = llm(
        model="claude-3-5-sonnet-20241022",
        prompt_tokens=10_000,
        completion_tokens=1_000,
        cache_read_tokens=9_000,
    )
    send(client, jwt, [sent])
    assert Event.objects.get(id=sent["id"]).cost == Decimal("0.0207")


def test_cache_counts_are_read_from_the_official_sdks_returns(client, live):
    """The official SDK 0.3.26 sends Anthropic's input_tokens (cache left out) as prompt_tokens
    and the response whole as returns; its OpenAI provider sends model_dump_json() text."""
    sid, jwt = live
    anthropic = llm(
        model="claude-3-5-sonnet-20241022",
        prompt_tokens=1_000,
        completion_tokens=1_000,
        returns={
            "type": "message",
            "model": "claude-3-5-sonnet-20241022",
            "usage": {
                "input_tokens": 1_000,
                "cache_read_input_tokens": 9_000,
                "cache_creation_input_tokens": 0,
                "output_tokens": 1_000,
            },
        },
    )
    openai = llm(
        model="gpt-4o",
        prompt_tokens=10_000,
        completion_tokens=1_000,
        returns=orjson.dumps(
            {
                "object": "chat.completion",
                "model": "gpt-4o-2024-08-06",
                "usage": {
                    "prompt_tokens": 10_000,
                    "completion_tokens": 1_000,
                    "prompt_tokens_details": {"cached_tokens": 9_000},
                    "completion_tokens_details": {"reasoning_tokens": 0},
                },
            }
        ).decode(),
    )
    send(client, jwt, [anthropic, openai])
    stored = Event.objects.get(id=anthropic["id"])
    assert (stored.prompt_tokens, stored.payload["cache_read_tokens"]) == (10_000, 9_000)
    assert stored.cost == Decimal("0.0207")
    assert "prompt_tokens" in stored.payload["repaired"]
    assert Event.objects.get(id=openai["id"]).cost == Decimal("0.02375")
    assert Session.objects.get(id=sid).cost == Decimal("0.04445")


def test_the_session_page_shows_cache_and_reasoning_tokens(client, live, alice, project):
    sid, jwt = live
    send(
        client,
        jwt,
        [
            llm(
                model="o1",
                prompt_tokens=10_000,
                completion_tokens=2_000,
                cache_read_tokens=9_000,
                cache_write_tokens=500,
                reasoning_tokens=1_500,
            ),
            llm(prompt_tokens=-1),
        ],
    )
    client.force_login(alice)
    page = client.get(f"/p/{project.slug}/sessions/{sid}/").content.decode()
    assert "9,000 cache read" in page and "500 cache write" in page
    assert "1,500 reasoning" in page
    assert "Repaired" in page and "prompt_tokens" in page


# --- 8. Cloud model ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "cost"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "0.00375"),  # Bedrock
        ("us.anthropic.claude-3-haiku-20240307-v1:0", "0.00375"),  # cross-region profile
        ("eu.anthropic.claude-3-haiku-20240307-v1:0", "0.00375"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
            "us.anthropic.claude-3-haiku-20240307-v1:0",
            "0.00375",
        ),
        ("bedrock/anthropic.claude-3-haiku-20240307-v1:0", "0.00375"),
        ("claude-3-5-sonnet-v2@20241022", "0.045"),  # Vertex AI
        ("projects/p/locations/us-east5/publishers/anthropic/models/claude-3-5-sonnet@20240620",
         "0.045"),
        ("gpt-35-turbo", "0.0065"),  # Azure OpenAI's name for gpt-3.5-turbo
        ("azure/gpt-4o", "0.035"),
    ],
)  # fmt: skip
def test_cloud_model_ids_are_priced_by_their_provider(client, live, model, cost):
    _, jwt = live
    sent = llm(model=model, prompt_tokens=10_000, completion_tokens=1_000)
    send(client, jwt, [sent])
    stored = Event.objects.get(id=sent["id"])
    assert (stored.cost, stored.cost_source) == (Decimal(cost), "price_table")
