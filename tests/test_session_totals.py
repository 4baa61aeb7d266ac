"""The session-totals rule and the cost of a session, held to one function on every surface.

sessions.totals.known_cost decides what a session's cost is: null (unknown) when its priced calls
are all of unknown cost, the known sum beside the unknown count when partly known. The API (list,
stats, update answer), the export's stats, the dashboard page, and the session list's CSV and
JSON Lines downloads must all say the same thing.
"""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
from django.core.management import call_command

from events.models import Event
from sessions.models import Session
from sessions.totals import known_cost, money, recompute_totals, session_cost_fields, totals_of
from tests.v2 import T0, event, get, iso, llm, post, send, start


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def end(client, jwt) -> dict:
    response = post(
        client,
        "/v2/update_session",
        {"session": {"end_timestamp": iso(T0 + timedelta(seconds=5)), "end_state": "Success"}},
        jwt=jwt,
    )
    assert response.status_code == 200, response.content
    return response.json()


def every_surface(client, alice_client, project, api_key, sid, update_answer) -> dict:
    """{surface: (cost, unknown count)} as each surface shows the session's cost."""
    listed = get(client, "/v2/sessions", key=api_key).json()["sessions"]
    row = next(s for s in listed if s["session_id"] == sid)
    stats = get(client, f"/v2/sessions/{sid}/stats", key=api_key).json()
    export = orjson.loads(
        b"".join(get(client, f"/v2/sessions/{sid}/export", key=api_key).streaming_content)
    )["stats"]
    base = f"/p/{project.slug}/sessions/"
    jsonl = [
        orjson.loads(line)
        for line in b"".join(alice_client.get(base + "export.jsonl").streaming_content).splitlines()
    ]
    jsonl_row = next(r for r in jsonl if r["session_id"] == sid)
    csv_text = b"".join(alice_client.get(base + "export.csv").streaming_content).decode()
    csv_row = next(r for r in csv.DictReader(io.StringIO(csv_text)) if r["session_id"] == sid)
    return {
        "update_session": (update_answer["token_cost"], update_answer["cost_unknown_events"]),
        "GET /v2/sessions": (row["cost"], row["cost_unknown_events"]),
        "stats": (stats["cost"], stats["cost_unknown_events"]),
        "export stats": (export["cost"], export["cost_unknown_events"]),
        "sessions.jsonl": (jsonl_row["cost"], jsonl_row["cost_unknown_events"]),
        # CSV: an unknown cost is an empty cell, never 0.
        "sessions.csv": (csv_row["cost"] or None, int(csv_row["cost_unknown_events"])),
    }


def test_a_session_of_unpriced_calls_costs_null_everywhere(
    client, alice_client, project, api_key
):
    sid, jwt = start(client, api_key)
    send(client, jwt, [llm(model="no-such-model-x"), llm(model="no-such-model-y")])
    answer = end(client, jwt)
    session = Session.objects.get(id=sid)
    rule = session_cost_fields(session)
    assert rule == {"cost": None, "cost_unknown_events": 2}
    surfaces = every_surface(client, alice_client, project, api_key, sid, answer)
    assert surfaces == dict.fromkeys(surfaces, (None, 2))
    page = alice_client.get(f"/p/{project.slug}/sessions/{sid}/").content.decode()
    assert 'data-stat="cost">unknown<' in page
    assert "$0.00" not in page


def test_a_partly_known_cost_is_the_known_sum_beside_the_unknown_count(
    client, alice_client, project, api_key
):
    sid, jwt = start(client, api_key)
    send(client, jwt, [llm(prompt_tokens=1000, completion_tokens=500), llm(model="no-such")])
    answer = end(client, jwt)
    surfaces = every_surface(client, alice_client, project, api_key, sid, answer)
    assert surfaces == dict.fromkeys(surfaces, ("0.0075", 1))
    page = alice_client.get(f"/p/{project.slug}/sessions/{sid}/").content.decode()
    assert "$0.0075 + unknown" in page


def test_a_session_without_llm_calls_costs_zero_not_unknown(client, alice_client, project, api_key):
    sid, jwt = start(client, api_key)
    send(client, jwt, [event("tools", name="search")])
    answer = end(client, jwt)
    surfaces = every_surface(client, alice_client, project, api_key, sid, answer)
    assert surfaces == dict.fromkeys(surfaces, ("0", 0))


@pytest.mark.parametrize(
    ("cost", "unknown", "shown"),
    [
        (Decimal("0"), 0, Decimal("0")),
        (Decimal("0"), 3, None),
        (Decimal("1.5"), 3, Decimal("1.5")),
        (None, 0, None),
    ],
)
def test_known_cost_decides_once(cost, unknown, shown):
    assert known_cost(cost, unknown) == shown


def test_money_is_a_trimmed_decimal_string():
    assert money(Decimal("0.0013083000")) == "0.0013083"
    assert money(Decimal("0E-10")) == "0"
    assert money(Decimal("12.50")) == "12.5"
    assert money(Decimal("1E+2")) == "100"
    assert money(None) is None


def test_ingest_keeps_the_totals_that_recompute_proves(client, project, api_key):
    sid, jwt = start(client, api_key)
    batch = [llm(), llm(model="no-such"), event("tools"), event("errors"), event("actions")]
    send(client, jwt, batch)
    send(client, jwt, batch)  # a resent batch changes nothing
    checked, mismatches = recompute_totals(project_id=project.id, fix=False)
    assert (checked, mismatches) == (1, [])
    stored = totals_of(Event.objects.filter(session_id=sid))
    session = Session.objects.get(id=sid)
    assert {k: getattr(session, k) for k in stored} == stored
    assert stored["llm_count"] == 2 and stored["cost_unknown_events"] == 1


def test_recompute_totals_finds_and_repairs_a_drifted_session(client, project, api_key, capsys):
    sid, jwt = start(client, api_key)
    send(client, jwt, [llm(prompt_tokens=10, completion_tokens=5), event("tools")])
    right = {f: getattr(Session.objects.get(id=sid), f) for f in ("llm_count", "prompt_tokens")}
    Session.objects.filter(id=sid).update(llm_count=7, prompt_tokens=0, cost=Decimal("9"))

    with pytest.raises(SystemExit) as exit_info:
        call_command("recompute_totals", "--check", "--project", project.slug)
    assert exit_info.value.code == 1
    assert "1 differed" in capsys.readouterr().out
    assert Session.objects.get(id=sid).llm_count == 7  # --check repairs nothing

    call_command("recompute_totals")
    assert "1 repaired" in capsys.readouterr().out
    session = Session.objects.get(id=sid)
    assert {f: getattr(session, f) for f in right} == right
    assert session.cost == Decimal("0.000075")  # 10 x 2.5/M + 5 x 10/M for gpt-4o
    assert recompute_totals(fix=False)[1] == []
