from django.core.management.base import BaseCommand

from sessions.services import expire_silent_sessions


class Command(BaseCommand):
    help = "End running sessions silent for SESSION_INACTIVITY_TIMEOUT seconds as Indeterminate."

    def handle(self, *args, **options):
        ended = expire_silent_sessions()
        self.stdout.write(f"Ended {ended} silent session(s) as Indeterminate.")
