from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from projects.services import create_project_with_key


class Command(BaseCommand):
    help = "Create a project if it does not exist and issue it a new API key (printed last, alone)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner", help="username made owner of the project")
        parser.add_argument("--label", default="created by manage.py createproject")

    def handle(self, *args, name, owner, label, **options):
        user = None
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(
                    f"No user named {owner!r}: create it first (manage.py createsuperuser)."
                )
        try:
            project, created, issued = create_project_with_key(name=name, owner=user, label=label)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        verb = "Created" if created else "Found"
        self.stdout.write(
            f"{verb} project {project.name!r} (slug {project.slug}, id {project.id})."
        )
        self.stdout.write("New API key (shown once, store it now):")
        self.stdout.write(issued.raw)
