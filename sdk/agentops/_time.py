"""Timestamps as AgentOps sends them: ISO 8601, timezone-aware UTC."""

from datetime import datetime, timezone


def get_ISO_time() -> str:
    return datetime.now(timezone.utc).isoformat()


def iso_from_epoch(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def parse_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
