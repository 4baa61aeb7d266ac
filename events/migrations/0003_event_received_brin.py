"""A BRIN index on events_event (received_at), Postgres only.

Used by the dashboard overview (dashboard/overview.py, live_totals with received_since): today is
read from its rollup plus the events received since the rollup's cut-off, so that query must
read only the recently written blocks. received_at grows with insertion order, so a block range's
min/max summary prunes everything older; ranges not summarized yet (the newest) are always read,
which are exactly the recent ones. A BRIN index costs the ingest path next to nothing (a B-tree
would cost every insert), and with 32 pages per range (~160 events) it stays a few dozen pages.

Not in Event.Meta.indexes: SQLite has no BRIN, and a table remake there would try to create it.
Built CONCURRENTLY so that ingestion is not blocked while it builds on a large table.
"""

from django.db import migrations

INDEX = "event_received_brin"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON events_event "
        "USING brin (received_at) WITH (pages_per_range = 32, autosummarize = on)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("events", "0002_llm_model_index"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
