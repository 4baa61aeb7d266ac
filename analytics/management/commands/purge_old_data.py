from django.conf import settings
from django.core.management.base import BaseCommand

from analytics.retention import purge_old_data


class Command(BaseCommand):
    help = "Delete sessions (and their events) older than DATA_RETENTION_DAYS; 0 keeps all."

    def handle(self, *args, **options):
        if settings.DATA_RETENTION_DAYS <= 0:
            self.stdout.write("DATA_RETENTION_DAYS is 0: everything is kept.")
            return
        result = purge_old_data()
        self.stdout.write(f"Deleted {result.sessions} session(s) and {result.events} event(s).")
