from django.core.management.base import BaseCommand, CommandError

from projects.models import Project
from sessions.totals import recompute_totals


class Command(BaseCommand):
    help = (
        "Prove every session's cached totals (event counts, tokens, cost, unknown-cost calls) "
        "equal its events, and repair any that do not. Exits 1 with --check when some differ."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", help="only this project (its slug)")
        parser.add_argument(
            "--check", action="store_true", help="report differences without repairing them"
        )

    def handle(self, *args, project=None, check=False, **options):
        project_id = None
        if project:
            project_id = Project.objects.filter(slug=project).values_list("id", flat=True).first()
            if project_id is None:
                raise CommandError(f"No project with the slug {project!r}.")
        checked, mismatches = recompute_totals(project_id=project_id, fix=not check)
        for m in mismatches[:20]:
            differ = {k: (m.cached[k], m.actual[k]) for k in m.cached if m.cached[k] != m.actual[k]}
            self.stdout.write(f"session {m.session_id}: (cached, events) {differ}")
        verb = "differed" if check else "repaired"
        self.stdout.write(f"{checked} session(s) checked, {len(mismatches)} {verb}.")
        if check and mismatches:
            raise SystemExit(1)
