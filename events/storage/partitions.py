"""Monthly partitions of events_event on Postgres: creating them ahead, converting an existing
table, dropping whole months for retention.

The partition key is the event's own `init_timestamp` as validation left it, and the primary key
is (id, init_timestamp): Postgres enforces a partitioned table's unique keys only when they
contain the partition key. Exactly-once still holds because init_timestamp is a pure function of
the event's own payload, so every re-send of an id carries the same key and meets the same
partition's unique index:
- v2 `create_events` re-sends the same JSON body (the SDK keeps the event and retries it);
- a missing or unreadable init_timestamp is repaired to the event's end_timestamp (also from the
  body), never to the time of arrival (events/validation.py `_times`);
- OTLP span ids are derived from (trace id, span id) and the time is the span's
  start_time_unix_nano, both fixed in a re-sent export (events/spans.py);
- two processes inserting the same (id, init_timestamp) at once: the second INSERT ... ON
  CONFLICT waits on the first's unique-index entry and does nothing.
The one case the key does not cover, an id re-sent with a *different* time (a client rebuilding
the event), is caught by the ingest statement's NOT EXISTS on the id in the partitions within a
month of the new time (events/storage/postgres.py, bounded to keep ingest's cost flat as months
accumulate); two such sends racing, or a time moved by more than a month, could store two rows.

Months rather than days or weeks: a month of 1M-10M events is a few GB, a year is 12 tables to
plan over, and retention (DATA_RETENTION_DAYS, usually 30-400) needs no finer grain because the
boundary month is trimmed row by row. Anything outside the created months (clocks in 2001 or
2090, validation accepts 2000-2100) lands in the DEFAULT partition; creating a month moves its
rows out of the default first.

Plain DDL, not a library: django-postgres-extra 3.0.1 (Django<6, so it would install) manages
partitions only for models that subclass its PostgresPartitionedModel and only through its own
database engine (psqlextra.backend), which SQLite, our embedded default, cannot use; it cannot
convert an existing table nor move rows out of a default partition. pg_partman is not packaged
for this Postgres (no extension in /usr/share/postgresql/15/extension), and an extension we
cannot test here would be the one unexercised part of the write path.
"""

import logging
import re
from datetime import UTC, date, datetime

from django.db import OperationalError, connection, transaction

logger = logging.getLogger(__name__)

TABLE = "events_event"
DEFAULT_PARTITION = f"{TABLE}_default"
MONTHS_AHEAD = 3
_NAME = re.compile(rf"^{TABLE}_p(\d{{4}})_(\d{{2}})$")
# DDL on the parent waits for queries that hold it; never queue ingest behind that for long.
LOCK_TIMEOUT = "5s"


def month_start(when: datetime | date) -> date:
    return date(when.year, when.month, 1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def partition_name(month: date) -> str:
    """events_event_pYYYY_MM for the month starting on `month`."""
    return f"{TABLE}_p{month.year:04d}_{month.month:02d}"


def _bounds(month: date) -> tuple[str, str]:
    return f"{month.isoformat()} 00:00:00+00", f"{next_month(month).isoformat()} 00:00:00+00"


def is_partitioned(cursor) -> bool:
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
    row = cursor.fetchone()
    return row is not None and row[0] == "p"


def monthly_partitions(cursor) -> dict[date, str]:
    """{first day of the month: table name} of the existing monthly partitions."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s)",
        [TABLE],
    )
    found = {}
    for (name,) in cursor.fetchall():
        match = _NAME.match(name)
        if match:
            found[date(int(match[1]), int(match[2]), 1)] = name
    return found


def create_month(cursor, month: date) -> str:
    """Create the month's partition, first moving its rows out of the default partition (a new
    partition may not overlap rows the default holds). Call inside a transaction."""
    name = partition_name(month)
    low, high = _bounds(month)
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    cursor.execute(
        f"CREATE TEMP TABLE moving_events (LIKE {TABLE}) ON COMMIT DROP;"
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
        "  WHERE init_timestamp >= %s AND init_timestamp < %s RETURNING *) "
        "INSERT INTO moving_events SELECT * FROM moved",
        [low, high],
    )
    cursor.execute(
        f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)", [low, high]
    )
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM moving_events; DROP TABLE moving_events")
    return name


def due_months(now: datetime) -> list[date]:
    """The months that must have a partition now: the previous one (late deliveries: an SDK
    retrying for hours, a backfill), this one and MONTHS_AHEAD ahead."""
    month = _months_before(month_start(now), 1)
    months = []
    for _ in range(MONTHS_AHEAD + 2):
        months.append(month)
        month = next_month(month)
    return months


def ensure_partitions(now: datetime | None = None) -> list[str]:
    """Create the partitions of due_months(now) that are missing; the names created.

    Each in its own short transaction, so a busy table (lock_timeout) costs only the months
    not yet made, which the next run makes. Called hourly by the periodic task
    (analytics.maintain_partitions); no-op on an unpartitioned table."""
    now = now or datetime.now(UTC)
    created = []
    with connection.cursor() as cursor:
        if not is_partitioned(cursor):
            return []
        existing = monthly_partitions(cursor)
    for month in due_months(now):
        if month not in existing:
            with transaction.atomic(), connection.cursor() as cursor:
                created.append(create_month(cursor, month))
    if created:
        logger.info("event partitions created: %s", ", ".join(created))
    return created


def droppable_months(cursor, cutoff: datetime) -> list[date]:
    """Months whose partition lies wholly before `cutoff`, oldest first."""
    limit = month_start(cutoff)
    return sorted(m for m in monthly_partitions(cursor) if next_month(m) <= limit)


# A partition goes whole only if no kept session has events in it (kept: the rule of
# analytics/retention.py, its start or its last activity at or after the cutoff). Looked up
# from the sessions' side: the kept sessions that started before the month ended (a session's
# events are not older than its start: OTLP sessions start at their earliest span, v2 events
# come from the clock that started the session), each one index probe into the partition; a
# scan of the partition's million rows would cost seconds. Such a session (a long-running agent
# spanning the boundary, still sending) holds its month back: the old sessions' rows in it are
# then deleted row by row with their sessions, and a later run drops it once that session is
# old too.
_HELD_BY_KEPT_SESSION = """
SELECT EXISTS (
    SELECT 1 FROM agent_sessions_session AS s
    WHERE s.init_timestamp < %(month_end)s AND s.last_seen_at >= %(cutoff)s
      AND EXISTS (SELECT 1 FROM {partition} AS e WHERE e.session_id = s.id)
)
"""


RETIRED_PREFIX = f"{TABLE}_retired_"


def drop_month(month: date, cutoff: datetime) -> int | None:
    """retire_month, then drop_retired: the month's estimated rows, or None if kept."""
    rows = retire_month(month, cutoff)
    if rows is not None:
        drop_retired()
    return rows


def retire_month(month: date, cutoff: datetime) -> int | None:
    """Take the month's partition out of events_event if no kept session has events in it: its
    estimated row count (pg_class.reltuples), or None when it is held back or the table was too
    busy to lock. The partition is locked before the check: no event is written into it between
    check and detach.

    Retention drops a month in two steps, so that nothing waits on the file removal: the
    partition is detached and renamed (metadata only; the one moment the parent is locked,
    which ingest and pages wait for), then the detached table is dropped on its own, with no
    lock on events_event. Deleting a table's files costs seconds per GB on a filesystem
    mounted with online discard (this machine's); a DROP of the partition itself would hold
    the parent's lock that long. (DETACH ...
    CONCURRENTLY would avoid even the short lock, but Postgres refuses it when the table has a
    default partition.) A retired table left by an interrupted run is dropped by the next."""
    name = partition_name(month)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
            cursor.execute(
                _HELD_BY_KEPT_SESSION.format(partition=name),
                {"cutoff": cutoff, "month_end": _bounds(month)[1]},
            )
            if cursor.fetchone()[0]:
                return None
            # Postgres's estimate (kept by ANALYZE and autovacuum): counting would read it all.
            cursor.execute(
                "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass",
                [name],
            )
            rows = cursor.fetchone()[0]
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
            cursor.execute(f"ALTER TABLE {name} RENAME TO {RETIRED_PREFIX}{name[len(TABLE) + 1 :]}")
    except OperationalError as exc:  # lock_timeout: left to the next run
        logger.warning("event partition %s not dropped now (%s)", name, exc)
        return None
    return rows


def drop_retired() -> list[str]:
    """Drop the tables detached by drop_month; their names."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE %s "
            "AND relnamespace = 'public'::regnamespace",
            [RETIRED_PREFIX.replace("_", r"\_") + "%"],
        )
        names = [name for (name,) in cursor.fetchall()]
        for name in names:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
    return names


# --- Converting an existing table (events/migrations/0006_partition_events.py) ---------------

OLD_TABLE = f"{TABLE}_unpartitioned"
# Months with data this far back get their own partition; older rows go to the default.
CONVERT_MONTHS_BACK = 60


def convert_to_partitioned(cursor, now: datetime | None = None) -> int:
    """Replace the plain events_event by a partitioned one holding the same rows; the rows
    moved. Run inside the migration's transaction: it either happens whole or not at all, and
    ingest waits on the table's lock meanwhile (nothing is refused, nothing lost).

    Rows are copied before the indexes, the primary key and the foreign keys are built (one
    sort per index instead of a B-tree insert per row). The indexes are recreated from the old
    table's own definitions, so an index another migration added before this one moves too.
    Measured: 108.6 s per million rows on 2 vCPUs at load 12 (bench/partitions.py,
    BENCHMARKS.md §6).
    """
    now = now or datetime.now(UTC)
    if is_partitioned(cursor):
        return 0
    indexes = _secondary_indexes(cursor)
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f'",
        [TABLE],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
        [TABLE],
    )
    (primary_key,) = cursor.fetchone()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    for name, _ in foreign_keys:
        cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
    cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{primary_key}"')
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD_TABLE}")
    cursor.execute(
        f"CREATE TABLE {TABLE} (LIKE {OLD_TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (init_timestamp)"
    )
    cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
    cursor.execute(
        f"SELECT DISTINCT date_trunc('month', init_timestamp AT TIME ZONE 'UTC')::date "
        f"FROM {OLD_TABLE} WHERE init_timestamp >= %s",
        [_months_before(month_start(now), CONVERT_MONTHS_BACK)],
    )
    months = {m for (m,) in cursor.fetchall()} | set(due_months(now))
    for month in sorted(months):
        low, high = _bounds(month)
        cursor.execute(
            f"CREATE TABLE {partition_name(month)} PARTITION OF {TABLE} "
            "FOR VALUES FROM (%s) TO (%s)",
            [low, high],
        )
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD_TABLE}")
    moved = cursor.rowcount
    cursor.execute(
        f'ALTER TABLE {TABLE} ADD CONSTRAINT "{primary_key}" PRIMARY KEY (id, init_timestamp)'
    )
    for _, definition in indexes:
        # "CREATE INDEX name ON public.events_event USING ..." as it was defined.
        cursor.execute(definition)
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
    cursor.execute(f"DROP TABLE {OLD_TABLE}")
    cursor.execute(f"ANALYZE {TABLE}")
    return moved


def _secondary_indexes(cursor) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the events table's indexes but its primary key."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary",
        [TABLE],
    )
    return cursor.fetchall()


def _months_before(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def convert_to_plain(cursor) -> int:
    """The migration's reverse: one plain table with the same rows and its primary key on id
    (fails, changing nothing, if an id was stored twice in two partitions)."""
    if not is_partitioned(cursor):
        return 0
    indexes = _secondary_indexes(cursor)
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('f', 'p')",
        [TABLE],
    )
    constraints = cursor.fetchall()
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD_TABLE}")
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    for name, _, _ in constraints:
        cursor.execute(f'ALTER TABLE {OLD_TABLE} DROP CONSTRAINT "{name}"')
    cursor.execute(
        f"CREATE TABLE {TABLE} (LIKE {OLD_TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE INCLUDING COMMENTS)"
    )
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD_TABLE}")
    moved = cursor.rowcount
    for name, definition, kind in constraints:
        if kind == "p":
            cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" PRIMARY KEY (id)')
        else:
            cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
    for _, definition in indexes:
        cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
    cursor.execute(f"DROP TABLE {OLD_TABLE}")
    return moved
