"""Dashboard pages through Django's test client: what each page shows, XSS safety, downloads."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from django.urls import reverse
from django.utils import timezone

from sessions.models import Session
from tests.factories import add_event, llm, make_session, refresh_totals

NOW = timezone.now()
TRACEBACK = 'Traceback (most recent call last):\n  File "agent.py", line 3\nValueError: bad'


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def rich_session(project):
    start = NOW - timedelta(hours=2)
    s = make_session(
        project,
        start=start,
        end_state="Fail",
        reason="tool crashed",
        tags=("prod", "checkout"),
        host_env={"OS": {"OS": "Linux"}, "SDK": {"Python Version": "3.11"}},
        video="https://videos.example/run.mp4",
    )
    llm(
        s,
        at=start + timedelta(seconds=1),
        model="gpt-4o",
        prompt=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        completion={"role": "assistant", "content": "It is 4."},
        cost="0.0125",
    )
    llm(
        s,
        at=start + timedelta(seconds=2),
        model="mystery-model",
        prompt={"type": "string", "string": "plain prompt text"},
        completion="plain completion text",
        cost=None,
    )
    tool = add_event(
        s,
        "tools",
        at=start + timedelta(seconds=3),
        name="search_web",
        payload={"params": {"query": "weather"}, "returns": {"temp_c": 21}},
    )
    add_event(
        s,
        "errors",
        at=start + timedelta(seconds=4),
        name="ValueError",
        trigger_event_id=tool.id,
        payload={
            "code": "E42",
            "details": "bad input",
            "logs": TRACEBACK,
            "trigger_event_type": "tools",
        },
    )
    add_event(
        s,
        "actions",
        at=start + timedelta(seconds=5),
        name="click",
        payload={"params": {"x": 1}, "returns": "ok"},
    )
    return refresh_totals(s)


def url(name, *args):
    return reverse(f"dashboard:{name}", args=args)


def test_sign_in_is_required_for_every_page(client, project):
    response = client.get(url("overview", project.slug))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_signs_in_and_home_redirects_to_the_first_project(client, alice, project):
    response = client.post(
        reverse("login"), {"username": "alice", "password": "alice-password-1"}, follow=True
    )
    assert response.redirect_chain[-1][0] == url("overview", project.slug)
    assert b"Alpha" in response.content


def test_home_without_projects_offers_to_create_one(client, charlie):
    client.force_login(charlie)
    response = client.get(url("home"))
    assert response.status_code == 200
    assert b"Create your first project" in response.content


def test_empty_project_overview_shows_the_sdk_snippet_with_our_endpoint(alice_client, project):
    response = alice_client.get(url("overview", project.slug))
    assert response.status_code == 200
    body = response.content.decode()
    assert "No sessions yet" in body
    assert "agentops.init(" in body
    assert 'endpoint="http://127.0.0.1:8000"' in body or "endpoint=" in body
    assert "pip install agentops" in body


def test_overview_cards_sum_sessions_cost_tokens_and_errors(alice_client, project, rich_session):
    ok = make_session(project, start=NOW - timedelta(days=3), end_state="Success")
    llm(ok, at=ok.init_timestamp, model="gpt-4o-mini", pt=10, ct=5, cost="0.5")
    refresh_totals(ok)
    response = alice_client.get(url("overview", project.slug) + "?range=7d")
    assert response.status_code == 200
    totals = response.context["totals"]
    assert totals.sessions == 2
    assert totals.success == 1 and totals.fail == 1
    assert totals.cost == Decimal("0.5125")
    assert totals.cost_unknown == 1
    assert totals.tokens == 100 + 50 + 100 + 50 + 15
    assert totals.errors == 1
    body = response.content.decode()
    assert "$0.5125 + unknown" in body
    # Four charts, rendered from JSON the page carries, with plotly.js from our own static files.
    figures = json.loads(response.context["charts"] and _json_script(body, "figures"))
    assert set(figures) == {"chart-sessions", "chart-cost", "chart-models", "chart-errors"}
    assert "/static/vendor/plotly.min.js" in body
    assert "cdn" not in body.lower()


def _json_script(body: str, element_id: str) -> str:
    start = body.index(f'<script id="{element_id}" type="application/json">')
    start = body.index(">", start) + 1
    return body[start : body.index("</script>", start)]


def test_overview_ranges_24h_30d_and_custom(alice_client, project, rich_session):
    old = make_session(project, start=NOW - timedelta(days=20), end_state="Indeterminate")
    for key, expected in (("24h", 1), ("7d", 1), ("30d", 2)):
        response = alice_client.get(url("overview", project.slug) + f"?range={key}")
        assert response.context["totals"].sessions == expected, key
    day = old.init_timestamp.date().isoformat()
    response = alice_client.get(
        url("overview", project.slug) + f"?range=custom&start={day}&end={day}"
    )
    assert response.context["totals"].sessions == 1
    assert response.context["totals"].indeterminate == 1


def test_session_list_shows_counts_tags_and_unknown_cost(alice_client, project, rich_session):
    response = alice_client.get(url("sessions", project.slug))
    assert response.status_code == 200
    body = response.content.decode()
    assert str(rich_session.id) in body
    assert url("sessions", project.slug) + "?tag=prod" in body
    assert "$0.0125 + unknown" in body
    assert 'class="badge fail"' in body


def test_session_list_filters_live_in_the_url(alice_client, project):
    a = make_session(project, start=NOW - timedelta(hours=1), tags=("prod", "eu"))
    b = make_session(project, start=NOW - timedelta(hours=2), tags=("prod",), end_state="Fail")
    c = make_session(project, start=NOW - timedelta(hours=3), tags=("dev",), end_state=None)

    def ids(query):
        response = alice_client.get(url("sessions", project.slug) + query)
        assert response.status_code == 200
        return {s.id for s in response.context["page"].sessions}

    assert ids("") == {a.id, b.id, c.id}
    assert ids("?tag=prod") == {a.id, b.id}
    assert ids("?tag=prod&tag=eu") == {a.id}
    assert ids("?tag=eu&tag=dev&tag_mode=any") == {a.id, c.id}
    assert ids("?end_state=Fail") == {b.id}
    assert ids("?end_state=running") == {c.id}
    assert ids(f"?q={b.id}") == {b.id}
    assert ids("?sort=oldest") == {a.id, b.id, c.id}
    # A nonsense filter value is ignored, not a 500.
    assert ids("?since=not-a-date&end_state=bogus") == {a.id, b.id, c.id}


def test_session_list_pages_with_cursors_both_ways(alice_client, project):
    made = [make_session(project, start=NOW - timedelta(minutes=i)) for i in range(120)]
    seen = []
    response = alice_client.get(url("sessions", project.slug))
    page = response.context["page"]
    seen += [s.id for s in page.sessions]
    assert page.prev_cursor is None and page.count == 120
    while page.next_cursor:
        response = alice_client.get(url("sessions", project.slug) + f"?after={page.next_cursor}")
        page = response.context["page"]
        seen += [s.id for s in page.sessions]
    assert seen == [s.id for s in made]
    back = alice_client.get(url("sessions", project.slug) + f"?before={page.prev_cursor}")
    assert [s.id for s in back.context["page"].sessions] == [s.id for s in made[50:100]]
    # A forged cursor is ignored: the first page.
    forged = alice_client.get(url("sessions", project.slug) + "?after=!!nonsense")
    assert forged.status_code == 200
    assert forged.context["page"].sessions[0].id == made[0].id


def test_session_list_sorts_by_cost_across_pages(alice_client, project):
    for i in range(60):
        s = make_session(project, start=NOW - timedelta(minutes=i))
        Session.objects.filter(pk=s.pk).update(cost=Decimal(i % 7) / 10)
    response = alice_client.get(url("sessions", project.slug) + "?sort=cost")
    first = response.context["page"]
    second = alice_client.get(
        url("sessions", project.slug) + f"?sort=cost&after={first.next_cursor}"
    ).context["page"]
    costs = [s.cost for s in first.sessions + second.sessions]
    assert len(costs) == 60
    assert costs == sorted(costs, reverse=True)


def test_session_drill_down_shows_chat_tools_errors_and_env(alice_client, project, rich_session):
    response = alice_client.get(url("session", project.slug, rich_session.id))
    assert response.status_code == 200
    body = response.content.decode()
    for text in (
        "You are helpful.",
        "What is 2+2?",
        "It is 4.",
        "plain prompt text",
        "plain completion text",
        "search_web",
        "&quot;temp_c&quot;: 21",
        "Traceback (most recent call last)",
        "tool crashed",
        "Host environment",
        "Linux",
        '<video controls preload="metadata" src="https://videos.example/run.mp4"',
        "$0.0125",
        "unknown",
    ):
        assert text in body, text
    tool_id = next(
        e["event"].id for e in response.context["events"] if e["event"].name == "search_web"
    )
    assert f"?focus={tool_id}#trace" in body  # the error links to its trigger
    assert url("session_timeline", project.slug, rich_session.id) in body
    assert url("session_export", project.slug, rich_session.id) in body


def test_event_type_filter_and_focus_jump(alice_client, project):
    s = make_session(project, start=NOW - timedelta(hours=1))
    events = [llm(s, at=s.init_timestamp + timedelta(seconds=i)) for i in range(120)]
    refresh_totals(s)
    page = alice_client.get(url("session", project.slug, s.id) + "?type=errors")
    assert page.context["events"] == []
    target = events[105]
    focused = alice_client.get(url("session", project.slug, s.id) + f"?focus={target.id}")
    assert focused.context["page_no"] == 3
    assert target.id in {e["event"].id for e in focused.context["events"]}
    assert f'id="event-{target.id}"' in focused.content.decode()


def test_waterfall_is_one_trace_per_type_even_for_large_sessions(alice_client, project):
    s = make_session(project, start=NOW - timedelta(hours=1))
    from events.models import Event

    Event.objects.bulk_create(
        [
            Event(
                id=__import__("uuid").uuid4(),
                session=s,
                project=project,
                event_type=("llms", "tools", "errors")[i % 3],
                init_timestamp=s.init_timestamp + timedelta(milliseconds=10 * i),
                end_timestamp=s.init_timestamp + timedelta(milliseconds=10 * i + 5),
            )
            for i in range(3000)
        ]
    )
    refresh_totals(s)
    response = alice_client.get(url("session_timeline", project.slug, s.id))
    figure = response.json()
    assert len(figure["data"]) == 3
    assert figure["large"] is True
    assert {t["type"] for t in figure["data"]} == {"scattergl"}
    assert figure["events"] == 3000


def test_payload_html_is_shown_as_text_never_markup(alice_client, project):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    s = make_session(project, start=NOW - timedelta(hours=1), tags=(evil,), reason=evil)
    llm(
        s,
        at=s.init_timestamp,
        model=evil,
        prompt=[{"role": "user", "content": evil}],
        completion={"role": evil, "content": evil},
    )
    add_event(
        s,
        "tools",
        at=s.init_timestamp,
        name=evil,
        payload={"params": evil, "returns": {evil: evil}},
    )
    refresh_totals(s)
    for page in (
        url("sessions", project.slug),
        url("session", project.slug, s.id),
        url("tags", project.slug),
        url("overview", project.slug),
    ):
        body = alice_client.get(page).content.decode()
        assert "<script>alert" not in body, page
        assert "<img src=x" not in body, page
    timeline = alice_client.get(url("session_timeline", project.slug, s.id)).content.decode()
    label = orjson.loads(timeline)["data"][0]["customdata"][0][1]
    assert "<script>" not in label and "&lt;script&gt;" in label


def test_javascript_video_url_is_never_a_link(alice_client, project):
    s = make_session(project, start=NOW - timedelta(hours=1))
    Session.objects.filter(pk=s.pk).update(video="javascript:alert(1)")
    body = alice_client.get(url("session", project.slug, s.id)).content.decode()
    assert 'href="javascript:' not in body and 'src="javascript:' not in body


def test_tags_page_counts_sessions_and_links_to_the_filtered_list(alice_client, project):
    make_session(project, start=NOW - timedelta(hours=1), tags=("prod", "eu"))
    make_session(project, start=NOW - timedelta(hours=2), tags=("prod",))
    response = alice_client.get(url("tags", project.slug))
    counts = {t.name: t.sessions for t in response.context["tags"]}
    assert counts == {"prod": 2, "eu": 1}
    assert url("sessions", project.slug) + "?tag=prod" in response.content.decode()


def test_session_json_download_is_the_export_shape(alice_client, project, rich_session):
    response = alice_client.get(url("session_export", project.slug, rich_session.id))
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    doc = orjson.loads(b"".join(response.streaming_content))
    assert doc["session"]["session_id"] == str(rich_session.id)
    assert sorted(doc["session"]["tags"]) == ["checkout", "prod"]
    assert len(doc["llms"]) == 2 and len(doc["tools"]) == 1 and len(doc["errors"]) == 1
    assert doc["llms"][0]["prompt"]["type"] == "chatml"


def test_events_csv_download(alice_client, project, rich_session):
    response = alice_client.get(url("session_events_csv", project.slug, rich_session.id))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["event_type"] for r in rows] == ["llms", "llms", "tools", "errors", "actions"]
    assert rows[0]["cost"] == "0.0125"
    # Unknown is an empty cell (never 0), with the cost source saying why.
    assert (rows[1]["cost"], rows[1]["cost_source"]) == ("", "unknown")


def test_session_list_downloads_follow_the_filters(alice_client, project):
    a = make_session(project, start=NOW - timedelta(hours=1), tags=("prod",))
    make_session(project, start=NOW - timedelta(hours=2), tags=("dev",))
    response = alice_client.get(url("sessions_export", project.slug, "jsonl") + "?tag=prod")
    lines = b"".join(response.streaming_content).splitlines()
    assert [orjson.loads(line)["session_id"] for line in lines] == [str(a.id)]
    response = alice_client.get(url("sessions_export", project.slug, "csv") + "?tag=dev")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1 and rows[0]["tags"] == '["dev"]'
    assert alice_client.get(url("sessions_export", project.slug, "xml")).status_code == 404


def test_csv_tags_are_always_a_json_array(alice_client, project):
    make_session(project, start=NOW - timedelta(hours=1), tags=("prod", "eu west"))
    make_session(project, start=NOW - timedelta(hours=2))
    response = alice_client.get(url("sessions_export", project.slug, "csv"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [json.loads(r["tags"]) for r in rows] == [["eu west", "prod"], []]


def test_csv_cells_that_look_like_formulas_are_neutralised(alice_client, project):
    make_session(project, start=NOW - timedelta(hours=1), reason='=HYPERLINK("http://x")')
    response = alice_client.get(url("sessions_export", project.slug, "csv"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["end_state_reason"].startswith("'=")


def test_past_days_come_from_rollups_and_missing_days_fall_back_to_live(alice_client, project):
    from analytics.models import DailyRollup

    today = datetime.now(UTC).date()
    rolled_day = today - timedelta(days=2)
    DailyRollup.objects.create(
        project=project, day=rolled_day, sessions_total=7, sessions_success=7, cost=Decimal("3")
    )
    live_day = today - timedelta(days=3)
    make_session(project, start=datetime.combine(live_day, datetime.min.time(), tzinfo=UTC))
    make_session(project, start=NOW - timedelta(minutes=1))
    response = alice_client.get(url("overview", project.slug) + "?range=7d")
    ov = response.context["ov"]
    per_day = dict(ov.buckets)
    assert per_day[rolled_day].sessions == 7  # read from the rollup row
    assert per_day[live_day].sessions == 1  # no rollup row: live
    assert per_day[today].sessions == 1  # today: always live
    assert ov.totals.cost == Decimal("3")


def test_waterfall_draws_durations_as_they_are_in_lanes_from_the_session_start(
    alice_client, project
):
    # Same numbers whether the database (Postgres: epoch seconds) or Python computes the times.
    start = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
    s = make_session(project, start=start, duration=timedelta(seconds=10))
    add_event(s, "tools", at=start + timedelta(seconds=2), end_timestamp=start + timedelta(
        seconds=3, microseconds=500000), name="search")  # fmt: skip
    add_event(s, "errors", at=start + timedelta(seconds=4), end_timestamp=None, name="Boom")
    llm(s, at=start - timedelta(seconds=2), model="gpt-4o")  # before the session's own start
    refresh_totals(s)
    response = alice_client.get(url("session_timeline", project.slug, s.id))
    figure = orjson.loads(response.content)
    by_name = {t["name"]: t for t in figure["data"]}
    # A 12-second axis reads in seconds; x = 0 is the session's start, so the early call is
    # drawn before it (negative) and flagged, not moved to 0.
    assert figure["unit"] == "s" and figure["skewed"] == 1
    assert by_name["LLM call"]["base"] == [-2.0]
    assert "clock-skewed" in by_name["LLM call"]["customdata"][0][2]
    assert by_name["Tool"]["base"] == [2.0] and by_name["Tool"]["x"] == [1.5]
    assert by_name["Tool"]["customdata"][0][2] == "1.5 s"
    # The error is a marker (no inflated bar), drawn last so it is on top.
    assert figure["data"][-1]["name"] == "Error" and figure["data"][-1]["mode"] == "markers"
    assert by_name["Error"]["x"] == [4.0] and "base" not in by_name["Error"]
    assert by_name["Error"]["customdata"][0][2] == "instant"
    # Lanes by kind, labelled; 1-based numbers in time order, as the event list shows them.
    assert [t["y"] for t in figure["data"]] == [["Tool"], ["LLM call"], ["Error"]]
    assert figure["layout"]["yaxis"]["categoryarray"] == ["LLM call", "Tool", "Error"]
    assert [by_name[n]["customdata"][0][0] for n in ("LLM call", "Tool", "Error")] == [1, 2, 3]
    assert figure["layout"]["xaxis"]["title"]["text"] == "s since the session started"
