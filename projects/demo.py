"""The demo user and project that `make run` sets up on a development machine."""

import hashlib
import hmac
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model

from projects.keys import hash_key
from projects.models import ApiKey, Membership, Project

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "agentops-demo"
DEMO_PROJECT = "Demo project"
DEMO_KEY_LABEL = "demo key (make run)"


def demo_raw_key(project: Project) -> str:
    """A UUID4-shaped key derived from SECRET_KEY, so the demo key is stable across restarts
    without its raw value being stored anywhere."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"demo-key:{project.id}".encode(), hashlib.sha256
    ).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def ensure_demo() -> tuple[Project, str, bool]:
    """The demo project, its raw key, and whether the demo user was created just now."""
    user_model = get_user_model()
    user, user_created = user_model.objects.get_or_create(
        username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
    )
    if user_created:
        user.set_password(DEMO_PASSWORD)
        user.save()
    project, _ = Project.objects.get_or_create(name=DEMO_PROJECT)
    Membership.objects.get_or_create(
        project=project, user=user, defaults={"role": Membership.Role.OWNER}
    )
    raw = demo_raw_key(project)
    ApiKey.objects.get_or_create(
        key_hash=hash_key(raw),
        defaults={
            "project": project,
            "label": DEMO_KEY_LABEL,
            "prefix": raw[:8],
            "created_by": user,
        },
    )
    return project, raw, user_created
