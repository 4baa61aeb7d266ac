"""Only the waiting OTLP batches are indexed by reception: the probe every /v1/traces request makes
(events/otlp_queue.py `queued`) skips the kept records of refused spans."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0009_otlp_batch"),
        ("projects", "0003_unique_project_names_per_owner"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="otlpbatch",
            name="otlp_batch_received",
        ),
        migrations.AddIndex(
            model_name="otlpbatch",
            index=models.Index(
                condition=models.Q(("done_at__isnull", True), ("failed_at__isnull", True)),
                fields=["received_at"],
                name="otlp_batch_waiting",
            ),
        ),
    ]
