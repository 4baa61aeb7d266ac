"""The queued OTLP write's durable copy of each accepted request (events/otlp_queue.py).

On Postgres the body is stored uncompressed (STORAGE EXTERNAL): it is written once and read once,
and pglz on a ~0.5 MB protobuf costs the request more CPU than the disk it saves.
"""

import django.db.models.deletion
from django.db import migrations, models


def store_body_uncompressed(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE events_otlp_batch ALTER COLUMN body SET STORAGE EXTERNAL"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0008_crash_error_events"),
        ("projects", "0003_unique_project_names_per_owner"),
    ]

    operations = [
        migrations.CreateModel(
            name="OtlpBatch",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("key_id", models.UUIDField()),
                ("received_at", models.DateTimeField()),
                ("encoding", models.CharField(max_length=8)),
                ("body", models.BinaryField()),
                ("span_count", models.PositiveIntegerField()),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("last_error", models.TextField(blank=True)),
                ("failed_at", models.DateTimeField(blank=True, null=True)),
                ("done_at", models.DateTimeField(blank=True, null=True)),
                ("refused_spans", models.PositiveIntegerField(default=0)),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="projects.project",
                    ),
                ),
            ],
            options={
                "db_table": "events_otlp_batch",
                "indexes": [models.Index(fields=["received_at"], name="otlp_batch_received")],
            },
        ),
        migrations.RunPython(store_body_uncompressed, migrations.RunPython.noop),
    ]
