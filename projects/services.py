from django.db import transaction

from projects.keys import IssuedKey, issue_key
from projects.models import Membership, Project


@transaction.atomic
def create_project_with_key(
    *, name: str, owner=None, label: str = ""
) -> tuple[Project, bool, IssuedKey]:
    """The project named `name` (created if missing), with `owner` as owner and a new key."""
    name = name.strip()
    if not name:
        raise ValueError("A project needs a name.")
    project = Project.objects.filter(name=name).first()
    created = project is None
    if created:
        project = Project.objects.create(name=name)
    if owner is not None:
        Membership.objects.update_or_create(
            project=project, user=owner, defaults={"role": Membership.Role.OWNER}
        )
    return project, created, issue_key(project=project, label=label, created_by=owner)
