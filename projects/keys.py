"""API keys: issued as UUID4 strings (the official SDK refuses other shapes), stored as SHA-256."""

import hashlib
import uuid
from dataclasses import dataclass

from django.utils import timezone

from projects.models import ApiKey, Project


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    raw: str


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_raw_key(raw: str | None) -> str | None:
    """The canonical form of a well-formed key, or None: malformed keys never reach the database."""
    if not raw or len(raw) > 64:
        return None
    try:
        parsed = uuid.UUID(raw.strip())
    except ValueError:
        return None
    return str(parsed)


def new_raw_key() -> str:
    return str(uuid.uuid4())


def issue_key(*, project: Project, label: str = "", created_by=None) -> IssuedKey:
    raw = new_raw_key()
    api_key = ApiKey.objects.create(
        project=project,
        label=label,
        prefix=raw[:8],
        key_hash=hash_key(raw),
        created_by=created_by,
    )
    return IssuedKey(api_key=api_key, raw=raw)


def revoke_key(api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


def find_active_key(raw: str | None) -> ApiKey | None:
    """The active key whose hash matches, with its project; None for anything else.

    The lookup is by hash through a unique index, so the comparison that decides is the
    database's equality on a SHA-256 digest: an attacker learns nothing from timing about
    the raw key's characters.
    """
    canonical = parse_raw_key(raw)
    if canonical is None:
        return None
    return (
        ApiKey.objects.select_related("project")
        .filter(key_hash=hash_key(canonical), revoked_at__isnull=True)
        .first()
    )
