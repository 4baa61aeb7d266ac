"""events_event.search_text (events/search.py) and, on Postgres, its pg_trgm GIN index.

The session list's search is `search_text LIKE '%phrase%'` on lower-cased text; a trigram GIN
index answers that for any phrase of three characters or more. Not in Event.Meta.indexes:
SQLite has neither pg_trgm nor GIN (it scans, the embedded default's scale). Built CONCURRENTLY
so ingestion is not blocked while it builds on a large table (on a partitioned events table,
CONCURRENTLY is not allowed: build it per partition, then on the parent). Its cost to ingest is
in BENCHMARKS.md (§1, search_text). Existing events keep "" (not searchable by content) until
`manage.py fill_search_text` fills them.
"""

from django.db import migrations, models

INDEX = "event_search_trgm"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON events_event "
        "USING gin (search_text gin_trgm_ops)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("events", "0005_event_span_ids"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="search_text",
            field=models.TextField(blank=True, db_default="", default=""),
        ),
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
