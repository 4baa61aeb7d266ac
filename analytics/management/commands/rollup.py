import uuid
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from analytics import rollups
from projects.models import Project


class Command(BaseCommand):
    help = "Recompute daily rollups now, in this process (the same code the Celery task runs)."

    def add_arguments(self, parser):
        parser.add_argument("--project", help="a project's id or slug (default: every project)")
        parser.add_argument("--since", help="first UTC day to recompute, YYYY-MM-DD (default: all)")

    def handle(self, *args, project=None, since=None, **options):
        project_id = None
        if project:
            found = Project.objects.filter(slug=project).first()
            if found is None:
                try:
                    found = Project.objects.filter(id=uuid.UUID(project)).first()
                except ValueError:
                    found = None
            if found is None:
                raise CommandError(f"No project has the id or slug {project!r}.")
            project_id = found.id
        since_day = None
        if since:
            try:
                since_day = date.fromisoformat(since)
            except ValueError:
                raise CommandError(f"--since {since!r} is not a date like 2026-01-31.") from None
        total = 0
        for pid, days in sorted(rollups.all_days(project_id, since_day).items(), key=str):
            done = rollups.rollup_days(pid, days)
            total += len(done)
        self.stdout.write(f"Recomputed {total} project-day(s).")
