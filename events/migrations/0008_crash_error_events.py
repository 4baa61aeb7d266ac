"""Repair: sessions that ended Fail by an uncaught exception before the server counted crashes
get their crash error event (events/crashes.py), and their error_count counts it.

Idempotent like the live rule: the event id is derived from the session id, so running this
again (or the SDK re-sending the end afterwards) adds nothing. Rollups of the days touched are
not recomputed here (no broker at migrate time): run `manage.py rollup` after migrating to
bring the overview's error counts up to date. Reversing deletes those events and uncounts them.
"""

from django.db import migrations
from django.db.models import F

CHUNK = 500


def add_crash_events(apps, schema_editor):
    from events.crashes import TRACEBACK_MARK, crash_event, crash_event_id

    Session = apps.get_model("agent_sessions", "Session")
    Event = apps.get_model("events", "Event")
    crashed = (
        Session.objects.filter(
            end_state="Fail",
            end_timestamp__isnull=False,
            end_state_reason__contains=TRACEBACK_MARK,
        )
        .order_by("pk")
        .values_list("pk", "project_id", "end_state_reason", "end_timestamp")
    )
    repaired = 0
    for sid, project_id, reason, ended in crashed.iterator(chunk_size=CHUNK):
        if Event.objects.filter(pk=crash_event_id(sid)).exists():
            continue
        raw = crash_event(session_id=sid, end_state="Fail", reason=reason, ended_at=ended)
        payload = {k: raw[k] for k in ("error_type", "code", "details", "logs")}
        Event.objects.create(
            id=crash_event_id(sid),
            session_id=sid,
            project_id=project_id,
            event_type="errors",
            init_timestamp=ended,
            end_timestamp=ended,
            name=raw["error_type"][:200],
            payload=payload,
        )
        Session.objects.filter(pk=sid).update(error_count=F("error_count") + 1)
        repaired += 1
    if repaired:
        print(f"\n  counted the crash of {repaired} session(s) as an error event")


def remove_crash_events(apps, schema_editor):
    from events.crashes import crash_event_id

    Session = apps.get_model("agent_sessions", "Session")
    Event = apps.get_model("events", "Event")
    for sid in Session.objects.filter(end_state="Fail").values_list("pk", flat=True).iterator():
        if Event.objects.filter(pk=crash_event_id(sid)).delete()[0]:
            Session.objects.filter(pk=sid).update(error_count=F("error_count") - 1)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0007_search_index"),
        ("agent_sessions", "0002_otlp_traces"),
    ]

    operations = [
        migrations.RunPython(add_crash_events, remove_crash_events, elidable=False),
    ]
