"""Events partitioned by month on Postgres (events/storage/partitions.py): exactly-once through
every way an event id arrives, partitions made ahead (moving rows out of the default), the
migration moving an existing table's rows, export across partitions. SQLite stays one table."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from analytics.models import DailyRollup
from analytics.retention import purge_old_data
from events import storage
from events.models import Event
from events.storage import partitions
from events.validation import validate_event
from sessions.models import Session
from sessions.totals import recompute_totals
from tests import v2
from tests.analytics_data import make_event, make_session


@pytest.fixture
def pg(is_postgres):
    if not is_postgres:
        pytest.skip("Postgres only: SQLite keeps one events table")


def _where(event_id) -> list[str]:
    """The tables (partitions) holding this id."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM events_event WHERE id = %s", [str(event_id)]
        )
        return [name for (name,) in cursor.fetchall()]


def _this_month() -> datetime:
    now = timezone.now()
    return datetime(now.year, now.month, 2, 9, tzinfo=UTC)


def test_the_table_is_partitioned_with_months_ahead(pg, db):
    now = timezone.now()
    with connection.cursor() as cursor:
        assert partitions.is_partitioned(cursor)
        months = partitions.monthly_partitions(cursor)
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'events_event'::regclass AND contype = 'p'"
        )
        assert cursor.fetchone()[0] == "PRIMARY KEY (id, init_timestamp)"
    due = partitions.due_months(now)
    assert len(due) == partitions.MONTHS_AHEAD + 2 and partitions.month_start(now) in due[1:2]
    assert set(due) <= set(months)


def test_v2_resends_are_duplicates_in_every_partition(pg, client, api_key):
    this_month = _this_month()
    times = [this_month, this_month + timedelta(days=40), datetime(2019, 5, 1, tzinfo=UTC)]
    session_id, jwt = v2.start(client, api_key, at=this_month)
    events = [v2.llm(at=t) for t in times]
    # One more without init_timestamp: repaired to its end_timestamp, from the body itself.
    no_start = v2.event("tools", at=this_month + timedelta(days=1))
    del no_start["init_timestamp"]
    events.append(no_start)
    for _ in range(3):
        v2.send(client, jwt, events)
    assert Event.objects.filter(session_id=session_id).count() == 4
    assert _where(events[0]["id"]) == [partitions.partition_name(this_month.date())]
    assert _where(events[2]["id"]) == [partitions.DEFAULT_PARTITION]
    session = Session.objects.get(id=session_id)
    assert session.llm_count == 3 and session.tool_count == 1
    assert recompute_totals(fix=False)[1] == []  # the cached totals equal the rows


def test_an_id_resent_with_another_time_is_still_a_duplicate(pg, client, api_key):
    this_month = _this_month()
    session_id, jwt = v2.start(client, api_key, at=this_month)
    first = v2.llm(at=this_month)
    v2.send(client, jwt, [first])
    # Last month: another partition, within the month either way that the probe looks at.
    moved = {**first, "init_timestamp": v2.iso(this_month - timedelta(days=10)),
             "end_timestamp": v2.iso(this_month - timedelta(days=10, seconds=-1))}  # fmt: skip
    v2.send(client, jwt, [moved])
    assert list(Event.objects.filter(session_id=session_id).values_list("init_timestamp")) == [
        (this_month,)
    ]
    assert Session.objects.get(id=session_id).llm_count == 1


def _spans(trace_id: bytes, starts: list[datetime]) -> bytes:
    message = ExportTraceServiceRequest()
    spans = message.resource_spans.add().scope_spans.add().spans
    for n, start in enumerate(starts):
        span = spans.add()
        span.trace_id, span.span_id, span.name = trace_id, (n + 1).to_bytes(8, "big"), f"t{n}.tool"
        span.start_time_unix_nano = int(start.timestamp()) * 1_000_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + 500_000
        span.attributes.add(key="agentops.span.kind").value.string_value = "tool"
    return message.SerializeToString()


def test_otlp_resent_spans_are_duplicates(pg, api_key):
    this_month = _this_month()
    trace_id = uuid.uuid4()
    body = _spans(trace_id.bytes, [this_month, this_month + timedelta(days=33)])
    client = Client()
    for _ in range(3):
        response = client.post(
            "/v1/traces", body, content_type="application/x-protobuf",
            HTTP_X_AGENTOPS_API_KEY=api_key,
        )  # fmt: skip
        assert response.status_code == 200, response.content
    stored = Event.objects.filter(session_id=trace_id)
    assert stored.count() == 2
    assert {t for e in stored for t in _where(e.id)} == {
        partitions.partition_name(this_month.date()),
        partitions.partition_name((this_month + timedelta(days=33)).date()),
    }
    assert recompute_totals(fix=False)[1] == []


@pytest.mark.django_db(transaction=True)
def test_two_processes_sending_one_event_at_once_store_it_once(is_postgres, project, api_key):
    """The first writer holds its transaction open; the second's INSERT waits on the unique
    index entry and, once the first commits, inserts nothing."""
    if not is_postgres:
        pytest.skip("Postgres only")
    this_month = _this_month()
    session_id, _ = v2.start(Client(), api_key, at=this_month)
    key_id = project.api_keys.get().pk
    raw = v2.llm(at=this_month)
    rows = [validate_event(raw, session_id=uuid.UUID(session_id))[0]]
    first_inserted, second_done = threading.Event(), []

    def write():
        return storage.backend().write_events(
            rows, session_id=session_id, project_id=project.pk, key_id=key_id, now=timezone.now()
        )

    def second():
        first_inserted.wait()
        second_done.append(write())
        connection.close()

    thread = threading.Thread(target=second)
    thread.start()
    with transaction.atomic():
        assert write() == 1
        first_inserted.set()
        thread.join(timeout=1)
        assert thread.is_alive()  # waiting on the first's uncommitted row
    thread.join(timeout=10)
    assert second_done == [0]
    assert Event.objects.filter(id=raw["id"]).count() == 1
    assert recompute_totals(fix=False)[1] == []


def test_making_a_month_moves_its_rows_out_of_the_default(pg, client, api_key):
    far = timezone.now() + timedelta(days=31 * (partitions.MONTHS_AHEAD + 2))
    far = datetime(far.year, far.month, 3, tzinfo=UTC)
    session_id, jwt = v2.start(client, api_key, at=far)
    event = v2.llm(at=far)
    v2.send(client, jwt, [event])
    assert _where(event["id"]) == [partitions.DEFAULT_PARTITION]
    created = storage.backend().ensure_event_partitions(far)
    assert partitions.partition_name(far.date()) in created
    assert _where(event["id"]) == [partitions.partition_name(far.date())]
    assert storage.backend().ensure_event_partitions(far) == []  # made once
    v2.send(client, jwt, [event])  # and still a duplicate there
    assert Event.objects.filter(session_id=session_id).count() == 1


def test_export_of_a_session_across_partitions(pg, client, api_key):
    """A ctid is unique only within a partition: the export must fetch each row from its own."""
    this_month = _this_month()
    session_id, jwt = v2.start(client, api_key, at=this_month)
    events = [v2.llm(at=this_month), v2.llm(at=this_month + timedelta(days=32))]
    v2.send(client, jwt, events)
    response = v2.get(client, f"/v2/sessions/{session_id}/export", key=api_key)
    assert response.status_code == 200
    llms = orjson.loads(b"".join(response.streaming_content))["llms"]
    assert sorted(row["id"] for row in llms) == sorted(e["id"] for e in events)


def test_sqlite_has_no_partitions(is_postgres, db):
    if is_postgres:
        pytest.skip("SQLite only")
    assert storage.backend().ensure_event_partitions() == []
    assert storage.backend().drop_event_partitions_before(timezone.now()) == ([], 0)


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_every_existing_row(is_postgres, project, api_key):
    """Back to the plain table, rows written into it, forward again: every row is there, with
    the same values, in its month's partition (or the default)."""
    if not is_postgres:
        pytest.skip("Postgres only")
    this_month = _this_month()
    call_command("migrate", "events", "0005_event_span_ids", verbosity=0)
    try:
        with connection.cursor() as cursor:
            assert not partitions.is_partitioned(cursor)
        client = Client()
        session_id, jwt = v2.start(client, api_key, at=this_month)
        times = [this_month - timedelta(days=400), this_month - timedelta(days=31), this_month,
                 datetime(2003, 1, 1, tzinfo=UTC)]  # fmt: skip
        # Written by the ingest path of the code before partitioning: plain INSERTs here.
        sent = [v2.llm(at=t) for t in times for _ in range(50)]
        for n, raw in enumerate(sent):
            Event.objects.create(
                id=raw["id"], session_id=session_id, project=project, event_type="llms",
                init_timestamp=datetime.fromisoformat(raw["init_timestamp"]), model=f"m{n}",
                prompt_tokens=n, payload={"n": n},
            )  # fmt: skip
        before = sorted(Event.objects.values_list("id", "init_timestamp", "model", "payload"))
    finally:
        call_command("migrate", "events", verbosity=0)
    with connection.cursor() as cursor:
        assert partitions.is_partitioned(cursor)
    after = sorted(Event.objects.values_list("id", "init_timestamp", "model", "payload"))
    assert after == before and len(after) == 200
    assert _where(sent[0]["id"]) == [
        partitions.partition_name((this_month - timedelta(days=400)).date())
    ]
    assert _where(sent[-1]["id"]) == [partitions.DEFAULT_PARTITION]
    # The indexes and keys came along: a resend is still a duplicate, the plan uses the index.
    v2.send(client, jwt, sent[100:110])
    assert Event.objects.count() == 200


def _make_month(month) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        partitions.create_month(cursor, month)


def _exists(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)  # committed rows, as retention meets them
def test_retention_drops_whole_months_unless_a_kept_session_holds_one(pg, project, settings):
    settings.DATA_RETENTION_DAYS = 30
    now = timezone.now()
    old_month = partitions.month_start(now - timedelta(days=100))
    held_month = partitions.month_start(now - timedelta(days=70))
    for month in (old_month, held_month):
        _make_month(month)
    t_old = datetime(old_month.year, old_month.month, 5, tzinfo=UTC)
    t_held = datetime(held_month.year, held_month.month, 5, tzinfo=UTC)
    old = make_session(project, start=t_old, last_seen=t_old)
    for n in range(3):
        make_event(old, at=t_old + timedelta(seconds=n), model="m")
    old_in_held = make_session(project, start=t_held, last_seen=t_held)
    make_event(old_in_held, at=t_held, model="m")
    # A long-running agent across the boundary: still sending, so kept whole.
    long_running = make_session(project, start=t_held, last_seen=now)
    make_event(long_running, at=t_held, model="m")
    make_event(long_running, at=now, model="m")
    DailyRollup.objects.create(project=project, day=t_old.date(), sessions_total=1)

    result = purge_old_data()

    # (Other tests' empty months may go too.)
    assert partitions.partition_name(old_month) in result.partitions
    assert partitions.partition_name(held_month) not in result.partitions
    assert not _exists(partitions.partition_name(old_month))
    assert partitions.drop_retired() == []  # detached, then dropped: nothing left behind
    assert _exists(partitions.partition_name(held_month))
    assert result.sessions == 2
    assert list(Session.objects.values_list("id", flat=True)) == [long_running.id]
    assert Event.objects.filter(session=long_running).count() == 2
    assert Event.objects.count() == 2
    assert DailyRollup.objects.filter(day=t_old.date()).exists()  # rollups stay

    # Once the long-running session is past retention too, its month goes whole.
    Session.objects.filter(id=long_running.id).update(last_seen_at=t_held)
    Event.objects.filter(session=long_running, init_timestamp__gte=now - timedelta(days=1)).delete()
    result = purge_old_data()
    assert partitions.partition_name(held_month) in result.partitions
    assert not Session.objects.exists() and not Event.objects.exists()


def test_retention_on_sqlite_deletes_rows(is_postgres, project, settings):
    if is_postgres:
        pytest.skip("SQLite only")
    settings.DATA_RETENTION_DAYS = 30
    t_old = timezone.now() - timedelta(days=100)
    old = make_session(project, start=t_old, last_seen=t_old)
    make_event(old, at=t_old, model="m")
    result = purge_old_data()
    assert (result.partitions, result.sessions, result.events) == ([], 1, 1)


def test_the_hourly_task_makes_the_months_due(db, is_postgres, settings):
    from analytics.tasks import maintain_partitions_task

    schedule = settings.CELERY_BEAT_SCHEDULE["maintain-partitions"]
    assert schedule["task"] == "analytics.maintain_partitions" and schedule["schedule"] <= 3600
    if is_postgres:
        last = partitions.due_months(timezone.now())[-1]
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {partitions.partition_name(last)}")
        assert maintain_partitions_task.apply().get() == [partitions.partition_name(last)]
    assert maintain_partitions_task.apply().get() == []
