"""The text search index (events/search.py): SearchChunk rows and the indexer's cursor, and on
Postgres a pg_trgm GIN index on the chunks' text.

New tables only: events_event is not altered (nothing is added to the ingest path). The trigram
index is not in SearchChunk's Meta: SQLite has neither pg_trgm nor GIN. Events stored before
this migration are indexed by the indexer's first runs (or at once by
`manage.py index_search`).
"""

import django.db.models.deletion
from django.db import migrations, models


INDEX = "search_chunk_text_trgm"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON events_searchchunk USING gin (text gin_trgm_ops)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("agent_sessions", "0002_otlp_traces"),
        ("events", "0006_partition_events"),
        ("projects", "0002_key_token_and_span_use"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchCursor",
            fields=[
                ("name", models.CharField(max_length=20, primary_key=True, serialize=False)),
                ("received_at", models.DateTimeField()),
                ("event_id", models.UUIDField()),
            ],
        ),
        migrations.CreateModel(
            name="SearchChunk",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("text", models.TextField()),
                (
                    "project",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="projects.project",
                    ),
                ),
                (
                    "session",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="agent_sessions.session",
                    ),
                ),
            ],
        ),
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
