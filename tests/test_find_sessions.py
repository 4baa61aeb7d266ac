"""Finding sessions (issue 17): a crash counts as an error, text search reaches the events'
content, the list sorts by duration and sums the filtered set, the tags page's figures, and
invalid filters said the same way by the API (400) and the dashboard (a message).

Everything goes through the real endpoints (v2 ingest, update_session), so search_text and the
totals are what ingestion writes."""

import uuid
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from events.crashes import crash_event_id
from events.models import Event
from events.search import SETTLE, index_new_events
from sessions.models import Session
from tests.v2 import T0, event, get, iso, llm, post, send, start

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "agent.py", line 12, in <module>\n'
    "    run()\n"
    '  File "agent.py", line 9, in run\n'
    '    raise ValueError("the planner returned no steps")\n'
    "ValueError: the planner returned no steps\n"
)


def end(client, jwt, state="Success", reason="", at=None):
    body = {
        "session": {
            "end_timestamp": iso(at or T0 + timedelta(minutes=1)),
            "end_state": state,
            "end_state_reason": reason,
        }
    }
    response = post(client, "/v2/update_session", body, jwt=jwt)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def sessions_url(project, **params):
    from urllib.parse import urlencode

    return reverse("dashboard:sessions", args=[project.slug]) + "?" + urlencode(params, doseq=True)


# --- A crash is an error ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "reason",
    [
        # our SDK (sdk/agentops/exits.py): "<Type>: <message>\n\n<traceback>"
        "ValueError: the planner returned no steps\n\n" + TRACEBACK,
        # the official 0.3.x client: "<message>: <traceback>"
        "the planner returned no steps: " + TRACEBACK,
    ],
)
def test_a_crash_counts_once_as_an_error_event(client, api_key, project, reason):
    sid, jwt = start(client, api_key)
    send(client, jwt, [llm()])
    end(client, jwt, "Fail", reason)
    end(client, jwt, "Fail", reason)  # the SDK re-sends its end: still one error

    session = Session.objects.get(pk=sid)
    assert session.error_count == 1
    crash = Event.objects.get(session_id=sid, event_type="errors")
    assert crash.id == crash_event_id(uuid.UUID(sid))
    assert crash.name == "ValueError"
    assert crash.payload["details"] == "the planner returned no steps"
    assert "agent.py" in crash.payload["logs"]
    assert crash.init_timestamp == T0 + timedelta(minutes=1)

    listed = get(client, "/v2/sessions?has_errors=true", key=api_key).json()["sessions"]
    assert [s["session_id"] for s in listed] == [sid]
    stats = get(client, f"/v2/sessions/{sid}/stats", key=api_key).json()
    assert stats["errors"] == 1
    export = get(client, f"/v2/sessions/{sid}/export", key=api_key)
    body = b"".join(export.streaming_content).decode()
    assert "the planner returned no steps" in body


def test_a_fail_without_a_traceback_and_a_running_update_are_not_crashes(client, api_key):
    sid, jwt = start(client, api_key)
    response = post(
        client, "/v2/update_session", {"session": {"end_state": "Fail", "tags": ["x"]}}, jwt=jwt
    )
    assert response.status_code == 200
    end(client, jwt, "Fail", "the user cancelled")
    assert Session.objects.get(pk=sid).error_count == 0
    sid2, jwt2 = start(client, api_key)
    end(client, jwt2, "Success", TRACEBACK)  # a Success quoting a traceback is no crash
    assert Session.objects.get(pk=sid2).error_count == 0


def test_the_crash_is_under_with_errors_on_the_dashboard(alice_client, client, api_key, project):
    sid, jwt = start(client, api_key)
    end(client, jwt, "Fail", TRACEBACK)
    _ok, jwt_ok = start(client, api_key)
    end(client, jwt_ok)
    page = alice_client.get(sessions_url(project, has_errors="yes"))
    assert [str(s.id) for s in page.context["page"].sessions] == [sid]
    # The list and the session page sum the crash up by its exception, not the header line.
    listed = page.content.decode()
    assert ">ValueError: the planner returned no steps</div>" in listed
    assert ">Traceback (most recent call last)" not in listed
    detail = alice_client.get(reverse("dashboard:session", args=[project.slug, sid]))
    assert (
        '<summary class="reason-text">ValueError: the planner returned no steps</summary>'
        in detail.content.decode()
    )


# --- Search -----------------------------------------------------------------------------------


@pytest.fixture
def searchable(client, api_key):
    """Four sessions, each findable by one kind of content."""
    ids = {}
    ids["prompt"], jwt = start(client, api_key, at=T0)
    send(
        client,
        jwt,
        [
            llm(
                prompt=[
                    {"role": "system", "content": "You are a careful travel agent."},
                    {"role": "user", "content": "Book a flight to Reykjavik in March"},
                ]
            )
        ],
    )
    ids["completion"], jwt = start(client, api_key, at=T0 + timedelta(minutes=1))
    send(
        client,
        jwt,
        [llm(completion={"role": "assistant", "content": "The Quarterly Revenue grew 12%"})],
    )
    ids["tool"], jwt = start(client, api_key, at=T0 + timedelta(minutes=2))
    send(client, jwt, [event("tools", name="lookup_weather_forecast", params={"city": "Oslo"})])
    ids["error"], jwt = start(client, api_key, at=T0 + timedelta(minutes=3))
    send(
        client,
        jwt,
        [
            event("errors", error_type="RateLimitError", details="quota exhausted for org-7"),
            llm(model="claude-3-5-sonnet-20241022"),
        ],
    )
    index_now()
    return ids


def index_now():
    """What the worker does seconds after each batch (Postgres; SQLite searches the events)."""
    index_new_events(now=timezone.now() + SETTLE + timedelta(seconds=1))


@pytest.mark.parametrize(
    "query,found",
    [
        ("reykjavik", "prompt"),
        ("travel agent", "prompt"),
        ("quarterly revenue", "completion"),
        ("LOOKUP_WEATHER", "tool"),
        ("oslo", "tool"),
        ("quota exhausted", "error"),
        ("RateLimitError", "error"),
        ("claude-3-5-sonnet", "error"),
    ],
)
def test_search_reaches_prompts_completions_tools_errors_and_models(
    client, api_key, searchable, query, found
):
    listed = get(client, f"/v2/sessions?q={query}", key=api_key).json()["sessions"]
    assert [s["session_id"] for s in listed] == [searchable[found]]


def test_search_matches_nothing_else_and_keeps_id_and_reason_search(client, api_key, searchable):
    assert get(client, "/v2/sessions?q=nowhere-to-be-found", key=api_key).json()["sessions"] == []
    sid = searchable["tool"]
    listed = get(client, f"/v2/sessions?q={sid}", key=api_key).json()["sessions"]
    assert [s["session_id"] for s in listed] == [sid]


@pytest.mark.parametrize("shown", [lambda sid: sid[:8], lambda sid: sid[:13].upper()])
def test_search_finds_a_session_by_the_id_prefix_the_list_shows(
    client, api_key, searchable, shown
):
    sid = searchable["completion"]
    listed = get(client, f"/v2/sessions?q={shown(sid)}", key=api_key).json()["sessions"]
    assert [s["session_id"] for s in listed] == [sid]
    # Seven characters are too few to mean an id (and match nothing else here).
    assert get(client, f"/v2/sessions?q={sid[:7]}", key=api_key).json()["sessions"] == []


@pytest.mark.parametrize("query", ["café", "zürich", "zürich 🦄", '"quoted words"', "d'accord"])
def test_search_finds_non_ascii_text_and_quotes(client, api_key, query):
    sid, jwt = start(client, api_key)
    prompt = 'Plan a café tour of Zürich 🦄, say "quoted words" and d\'accord'
    send(client, jwt, [llm(prompt=[{"role": "user", "content": prompt}])])
    _other, jwt2 = start(client, api_key, at=T0 + timedelta(minutes=5))
    send(client, jwt2, [llm(prompt=[{"role": "user", "content": "nothing special"}])])
    index_now()
    listed = get(client, "/v2/sessions?" + urlencode({"q": query}), key=api_key).json()
    assert [s["session_id"] for s in listed["sessions"]] == [sid]


def test_search_does_not_reach_another_projects_events(client, other_api_key, searchable):
    assert get(client, "/v2/sessions?q=reykjavik", key=other_api_key).json()["sessions"] == []


def test_dashboard_search_finds_the_prompt(alice_client, project, searchable):
    page = alice_client.get(sessions_url(project, q="Reykjavik"))
    assert [str(s.id) for s in page.context["page"].sessions] == [searchable["prompt"]]


# --- Sort by duration, totals of the filtered set ---------------------------------------------


def test_sort_by_duration_pages_through_every_session_in_order(client, api_key):
    made = []
    for minutes in (5, 1, 30, 12, 3):
        sid, jwt = start(client, api_key, at=T0)
        end(client, jwt, at=T0 + timedelta(minutes=minutes))
        made.append((minutes, sid))
    seen, cursor = [], None
    while True:
        path = "/v2/sessions?sort=duration&limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = get(client, path, key=api_key).json()
        seen += [s["session_id"] for s in body["sessions"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [sid for _, sid in sorted(made, reverse=True)]
    shortest = get(client, "/v2/sessions?sort=shortest", key=api_key).json()["sessions"]
    assert [s["session_id"] for s in shortest] == [sid for _, sid in sorted(made)]


def test_list_totals_sum_the_filtered_set_and_keep_unknown_cost_unknown(
    alice_client, client, api_key, project
):
    _a, jwt = start(client, api_key, tags=["paid"])
    send(client, jwt, [llm(cost="0.25", prompt_tokens=100, completion_tokens=10)])
    _b, jwt = start(client, api_key, tags=["paid"])
    send(client, jwt, [llm(cost="0.50", prompt_tokens=200, completion_tokens=20)])
    end(client, jwt, "Fail", TRACEBACK)
    _c, jwt = start(client, api_key, tags=["free"])
    send(client, jwt, [llm(model="a-model-with-no-price", prompt_tokens=7, completion_tokens=3)])

    totals = alice_client.get(sessions_url(project, tag="paid")).context["page"].totals
    assert (totals.sessions, totals.cost, totals.tokens, totals.errors) == (
        2,
        Decimal("0.75"),
        330,
        1,
    )
    unknown = alice_client.get(sessions_url(project, tag="free"))
    assert unknown.context["page"].totals.cost is None
    assert "unknown" in unknown.content.decode().split("data-total-cost>")[1][:40]


# --- Tags page --------------------------------------------------------------------------------


def test_tags_page_gives_sessions_cost_failure_rate_and_last_use(alice_client, client, api_key):
    from projects.models import Project

    project = Project.objects.get(name="Alpha")
    for n, state in enumerate(("Success", "Fail", "Success")):
        _, jwt = start(client, api_key, tags=["prod"], at=T0 + timedelta(hours=n))
        send(client, jwt, [llm(cost="0.10", at=T0 + timedelta(hours=n))])
        end(client, jwt, state, at=T0 + timedelta(hours=n, minutes=1))
    start(client, api_key, tags=["prod"], at=T0 - timedelta(days=1))  # still running
    response = alice_client.get(reverse("dashboard:tags", args=[project.slug]))
    (prod,) = response.context["tags"]
    assert prod.sessions == 4
    assert prod.cost == Decimal("0.30")
    assert prod.failure_rate == pytest.approx(1 / 3)
    assert prod.last_used == T0 + timedelta(hours=2)
    body = response.content.decode()
    assert "33.3%" in body and "$0.30" in body


# --- Invalid filters: one rule, said by the API and by the dashboard ----------------------------


def test_invalid_filters_are_a_400_from_the_api_and_a_message_on_the_dashboard(
    alice_client, client, api_key, project
):
    response = get(client, "/v2/sessions?end_state=Crashed&has_errors=maybe", key=api_key)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"end_state", "has_errors"}

    ok, _jwt = start(client, api_key)
    page = alice_client.get(sessions_url(project, end_state="Crashed", since="yesterday"))
    assert page.status_code == 200
    messages = page.context["filter_errors"]
    assert any(m.startswith("end_state:") for m in messages)
    assert any(m.startswith("since:") for m in messages)
    assert "Ignored an invalid filter: end_state" in page.content.decode()
    # the valid rest still applies: nothing filtered out here
    assert [str(s.id) for s in page.context["page"].sessions] == [ok]


@pytest.mark.parametrize("param", ["q", "tag", "model"])
@pytest.mark.parametrize("value", ["ab\x00cd", "\x00", "  \x00  "])
def test_a_nul_in_a_text_filter_is_refused_alone_never_a_500(
    alice_client, client, api_key, project, param, value
):
    # Postgres refuses NUL in text (a DataError, once a 500); no stored text has one anyway.
    ok, _jwt = start(client, api_key)
    response = get(client, f"/v2/sessions?{param}={value.replace(chr(0), '%00')}", key=api_key)
    assert response.status_code == 400
    assert response.json()["errors"] == {param: ["Cannot contain a NUL character."]}

    page = alice_client.get(sessions_url(project, **{param: value, "end_state": "running"}))
    assert page.status_code == 200
    assert page.context["filter_errors"] == [f"{param}: Cannot contain a NUL character."]
    assert [str(s.id) for s in page.context["page"].sessions] == [ok]  # the rest applied
    download = alice_client.get(
        reverse("dashboard:sessions_export", args=[project.slug, "csv"]) + "?" + f"{param}=%00"
    )
    assert download.status_code == 200 and ok in b"".join(download.streaming_content).decode()


def test_switching_to_a_project_slug_with_a_nul_is_a_404(alice_client):
    assert alice_client.get(reverse("dashboard:switch") + "?project=a%00b").status_code == 404


def test_the_repair_migration_counts_earlier_crashes_once(project):
    import importlib

    from django.apps import apps

    from tests.factories import make_session

    repair = importlib.import_module("events.migrations.0008_crash_error_events")
    crashed = make_session(project, start=T0, end_state="Fail", reason=TRACEBACK)
    failed = make_session(project, start=T0, end_state="Fail", reason="cancelled")
    repair.add_crash_events(apps, None)
    repair.add_crash_events(apps, None)  # migrating twice (or re-sent ends) adds nothing
    crashed.refresh_from_db()
    failed.refresh_from_db()
    assert (crashed.error_count, failed.error_count) == (1, 0)
    crash = Event.objects.get(session=crashed)
    assert (
        crash.name == "ValueError" and crash.payload["details"] == "the planner returned no steps"
    )


def test_search_follows_events_sent_after_the_first_indexing(
    client, api_key, searchable, is_postgres
):
    from events.models import SearchChunk

    sid = searchable["tool"]
    _, jwt = start(client, api_key, session_id=sid)  # another process joins the session
    send(client, jwt, [event("actions", action_type="escalate_to_human") for _ in range(3)])
    index_now()
    listed = get(client, "/v2/sessions?q=escalate_to", key=api_key).json()["sessions"]
    assert [s["session_id"] for s in listed] == [sid]
    if is_postgres:
        # Insert-only chunks, the three identical actions kept once.
        texts = list(SearchChunk.objects.filter(session_id=sid).values_list("text", flat=True))
        assert len(texts) == 2 and texts[1] == "escalate_to_human"
        assert index_now_count() == 0  # caught up: nothing read twice


def index_now_count():
    return index_new_events(now=timezone.now() + SETTLE + timedelta(seconds=1))
