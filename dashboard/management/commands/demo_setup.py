from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from projects.demo import DEMO_PASSWORD, DEMO_USERNAME, ensure_demo


class Command(BaseCommand):
    help = (
        "Create the demo user and project if missing and print the login and API key (DEBUG only)."
    )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "demo_setup only runs with DJANGO_DEBUG=1: it creates a known password."
            )
        project, raw_key, _ = ensure_demo()
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
