"""The export's rows built by Postgres equal event_row()'s, parsed as JSON, on every shape.

event_row() (the Python path, still the export on SQLite) is the reference; each row the SQL
path writes must parse to the same values, key order and whitespace aside.
"""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from django.db import connection
from psycopg.types.json import set_json_loads

from events.export import stream_export
from events.models import Event
from events.rows import EXPORT_SECTIONS, comma_joined, event_row
from events.storage import is_postgres, postgres
from sessions.models import Session

pytestmark = pytest.mark.skipif(not is_postgres(), reason="the SQL export path is Postgres only")

sql_section_chunks = postgres.export_chunks
_COLUMNS = (
    "id, event_type, init_timestamp, end_timestamp, agent_id, name, model, prompt_tokens, "
    "completion_tokens, cost, cost_source, trigger_event_id, payload"
)


def python_section_chunks(session_id):
    """The reference: event_row() over each stored row, its payload read by orjson as the
    export's own reader (Postgres normalises 1e20 to 100000000000000000000 inside jsonb; Django's
    json.loads would then see an int where the SDK sent, and orjson reads, a float)."""
    connection.ensure_connection()
    for index, section in enumerate(EXPORT_SECTIONS):
        with connection.connection.cursor() as cursor:
            set_json_loads(orjson.loads, cursor)
            cursor.execute(
                f"SELECT {_COLUMNS} FROM events_event WHERE session_id = %s AND event_type = %s "
                "ORDER BY init_timestamp, id",
                [session_id, section],
            )
            names = [c.strip() for c in _COLUMNS.split(",")]
            rows = [Event(**dict(zip(names, row, strict=True))) for row in cursor]
        for chunk in comma_joined(orjson.dumps(event_row(e)) for e in rows):
            yield index, chunk

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)

MESSAGE_SHAPES = [
    "plain text",
    "",
    'quotes " and \\ backslash, newline\n, tab\t, \x01 control, \u2028, é, 😀',
    [{"role": "user", "content": "Hi"}],
    [],
    {"messages": [{"role": "user", "content": "in a dict"}], "extra": 1},
    {"messages": None},
    {"type": "chatml", "messages": [{"role": "system", "content": "wrapped"}]},
    {"type": "string", "string": "already a string"},
    {"type": "other", "content": "a dict of another type"},
    {"role": "assistant", "content": "a bare message"},
    {},
    None,
    0,
    -7,
    2**70,
    1.5,
    100000.0,
    1e20,
    1e-7,
    123456789012345.6,
    2e15 + 0.5,
    True,
    False,
]
MONEY_SHAPES = [
    None,
    Decimal("0"),
    Decimal("0E-10"),
    Decimal("0.0013083000"),
    Decimal("100.0000000000"),
    Decimal("1E-10"),
    Decimal("12345.1000000000"),
]
TIMES = [
    T0,
    T0 + timedelta(microseconds=123456),
    T0 + timedelta(microseconds=120000),
    T0 + timedelta(microseconds=1),
]


@pytest.fixture
def session(project):
    return Session.objects.create(
        id=uuid.uuid4(), project=project, init_timestamp=T0, last_seen_at=T0
    )


def add(session, event_type, n, **fields):
    fields.setdefault("init_timestamp", TIMES[n % len(TIMES)] + timedelta(seconds=n))
    return Event.objects.create(
        id=uuid.uuid4(), session=session, project=session.project, event_type=event_type, **fields
    )


def add_every_shape(session):
    n = 0
    for n, shape in enumerate(MESSAGE_SHAPES):
        add(
            session,
            "llms",
            n,
            model="gpt-4o" if n % 2 else "",
            prompt_tokens=n if n % 3 else None,
            completion_tokens=2 * n,
            cost=MONEY_SHAPES[n % len(MONEY_SHAPES)],
            cost_source="price_table",
            agent_id=uuid.uuid4() if n % 2 else None,
            end_timestamp=TIMES[n % len(TIMES)] + timedelta(seconds=n + 1) if n % 3 else None,
            payload={"prompt": shape, "completion": MESSAGE_SHAPES[-n - 1], "params": {"t": 1.0}},
        )
    # Payload keys that the promoted columns replace, and no prompt or completion at all.
    add(
        session,
        "llms",
        n + 1,
        model="x",
        cost=Decimal("0.5"),
        payload={"id": "fake", "event_type": "x", "model": "y", "cost": 1, "agent_id": 3},
    )
    add(session, "llms", n + 2, payload={})
    shared = T0 + timedelta(hours=1)
    for m, cost in enumerate(MONEY_SHAPES):
        # Same time on purpose: ties are ordered by id.
        add(session, "tools", m, name="search" if m % 2 else "", cost=cost, init_timestamp=shared)
        add(
            session,
            "actions",
            m,
            name="plan" if m % 2 else "",
            cost=cost,
            payload={"cost": "from the payload", "returns": [1, 2.50, None, {"a": "b"}]},
        )
        add(session, "apis", m, cost=cost, payload={"name": 'GET "/x"', "url": "http://a/?q=\\"})
    trigger = add(session, "actions", 99, name="trigger")
    add(
        session,
        "errors",
        0,
        name="ValueError",
        trigger_event_id=trigger.id,
        payload={
            "code": "E42",
            "details": "Traceback\n  line 1",
            "logs": ["a", "b"],
            "trigger_event_type": "actions",
            "timestamp": "from the payload",
            "error_type": "from the payload",
        },
    )
    add(session, "errors", 1, name="", cost=Decimal("0.25"), payload={"code": 500})
    add(session, "errors", 2, name="E", payload={})


def parsed_sections(chunks) -> dict[str, list[dict]]:
    sections: dict[str, list[dict]] = {name: [] for name in EXPORT_SECTIONS}
    for index, rows in chunks:
        sections[EXPORT_SECTIONS[index]] += orjson.loads(b"[" + rows + b"]")
    return sections


def test_sql_rows_equal_event_row_on_every_shape(session):
    add_every_shape(session)
    expected = parsed_sections(python_section_chunks(session.id))
    got = parsed_sections(sql_section_chunks(session.id))
    assert sum(map(len, expected.values())) == Event.objects.filter(session=session).count()
    for section in EXPORT_SECTIONS:
        assert [r["id"] for r in got[section]] == [r["id"] for r in expected[section]], section
        for sql_row, python_row in zip(got[section], expected[section], strict=True):
            assert sql_row == python_row, (section, python_row["id"])


def test_sql_rows_show_the_tricky_values_as_python_does(session):
    """A few of the values above spelled out, so a change to both paths is seen too."""
    add(session, "llms", 0, cost=Decimal("0E-10"), payload={"prompt": 1e20, "completion": True})
    add(session, "tools", 1, cost=Decimal("1.2500000000"), payload={})
    rows = parsed_sections(sql_section_chunks(session.id))
    llm, tool = rows["llms"][0], rows["tools"][0]
    assert llm["prompt"] == {"type": "string", "string": "1e+20"}
    assert llm["completion"] == {"type": "string", "string": "True"}
    assert llm["cost"] == "0" and llm["init_timestamp"] == "2026-11-21T10:00:00+00:00"
    assert tool["cost"] == "1.25" and tool["init_timestamp"] == "2026-11-21T10:00:01.123456+00:00"
    assert tool["end_timestamp"] is None and tool["agent_id"] is None and tool["name"] is None


def test_export_document_is_the_same_on_both_paths(session):
    add_every_shape(session)
    sql_doc = orjson.loads(b"".join(stream_export(session, ["t"])))
    assert list(sql_doc) == ["session", "stats", *EXPORT_SECTIONS]
    python_rows = parsed_sections(python_section_chunks(session.id))
    assert {name: sql_doc[name] for name in EXPORT_SECTIONS} == python_rows


def test_an_abandoned_export_leaves_the_connection_usable(session):
    for n in range(1200):
        add(session, "tools", n, name="t", payload={"n": n})
    workers = "SHOW max_parallel_workers_per_gather"
    with connection.cursor() as cursor:
        cursor.execute(workers)
        before = cursor.fetchone()[0]
    chunks = sql_section_chunks(session.id)
    next(chunks)
    chunks.close()  # a client that went away mid-stream
    assert Event.objects.filter(session=session).count() == 1200
    with connection.cursor() as cursor:
        cursor.execute(workers)
        assert cursor.fetchone()[0] == before, "the export's settings ended with it"
