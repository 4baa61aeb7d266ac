from django.core.management.base import BaseCommand

from events.search import index_all_events


class Command(BaseCommand):
    help = (
        "Bring the text search index up to date now (Postgres; the Celery rollups do it "
        "seconds after each batch). Use after migrating a database whose events predate it."
    )

    def handle(self, *args, **options):
        read = index_all_events()
        self.stdout.write(f"indexed {read} event(s)")
