"""events_event becomes a table partitioned by month of init_timestamp, Postgres only.

The existing rows move into it inside this migration's transaction (see
events.storage.partitions.convert_to_partitioned: why init_timestamp, why (id, init_timestamp)
is the primary key, how long it takes per million rows). The model is unchanged: Django still
addresses events by id, which stays unique per partition and is checked across partitions at
ingest. SQLite stays one table.

Going back turns it into one plain table again (same rows, primary key on id).
"""

from django.db import migrations


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from events.storage.partitions import convert_to_partitioned

    with schema_editor.connection.cursor() as cursor:
        convert_to_partitioned(cursor)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from events.storage.partitions import convert_to_plain

    with schema_editor.connection.cursor() as cursor:
        convert_to_plain(cursor)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0005_event_span_ids"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
