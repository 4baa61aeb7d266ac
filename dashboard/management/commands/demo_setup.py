from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dashboard.demo_data import load_demo_dataset
from projects.demo import DEMO_PASSWORD, DEMO_USERNAME, ensure_demo


class Command(BaseCommand):
    help = (
        "Create the demo user and project if missing, load the demo dataset through the v2 "
        "ingestion endpoints while the project is empty, and print the login and API key "
        "(DEBUG only)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-data", action="store_true", help="Only the user, project and key."
        )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "demo_setup only runs with DJANGO_DEBUG=1: it creates a known password."
            )
        project, raw_key, _ = ensure_demo()
        if not options["no_data"]:
            result = load_demo_dataset(project=project, api_key=raw_key)
            if result.skipped:
                self.stdout.write("  Demo data:  already loaded (the project has sessions)")
            else:
                self.stdout.write(
                    f"  Demo data:  {result.sessions} sessions, {result.events} events sent "
                    "through /v2/create_session, /v2/create_events, /v2/update_session"
                )
        url = settings.PUBLIC_URL
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"  Dashboard:  {url}/   (sign in as {DEMO_USERNAME} / {DEMO_PASSWORD})",
                    f"  Project:    {project.name}",
                    f"  API key:    {raw_key}",
                    f'  SDK:        agentops.init(api_key="{raw_key}", endpoint="{url}")',
                    "",
                ]
            )
        )
