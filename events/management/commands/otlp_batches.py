from datetime import timedelta

from django.core.management.base import BaseCommand

from events import otlp_queue
from events.models import OtlpBatch


class Command(BaseCommand):
    help = (
        "The queued OTLP write's backlog (events/otlp_queue.py): batches waiting for the worker, "
        "set aside after failing, and records of spans refused after acceptance. --retry queues "
        "the set-aside ones again; --write-now writes every waiting batch in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--retry", action="store_true", help="queue the failed batches again")
        parser.add_argument(
            "--write-now", action="store_true", help="write the waiting batches here, now"
        )

    def handle(self, *args, retry=False, write_now=False, **options):
        if retry:
            self.stdout.write(f"queued {otlp_queue.retry_failed()} failed batch(es) again")
        if write_now:
            written = otlp_queue.process_pending(older_than=timedelta(0))
            self.stdout.write(f"wrote {written} batch(es)")
        summary = otlp_queue.backlog()
        self.stdout.write(
            f"waiting: {summary.waiting} batch(es), {summary.waiting_spans} span(s)"
            + (
                f", oldest received {summary.oldest_waiting:%Y-%m-%d %H:%M:%S} UTC"
                if summary.oldest_waiting
                else ""
            )
        )
        self.stdout.write(f"failed: {summary.failed} batch(es)")
        failed = OtlpBatch.objects.filter(failed_at__isnull=False, done_at__isnull=True)
        for batch in failed.defer("body")[:20]:
            self.stdout.write(f"  {batch.pk} ({batch.span_count} spans): {batch.last_error}")
        self.stdout.write(f"refused after acceptance: {summary.refused_spans} span(s)")
