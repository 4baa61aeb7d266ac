from django.db import models
from django.db.models import Q

from projects.models import Project
from sessions.models import MONEY, Session


class EventType(models.TextChoices):
    LLM = "llms", "LLM call"
    TOOL = "tools", "Tool call"
    ACTION = "actions", "Action"
    ERROR = "errors", "Error"
    API = "apis", "API call"


class CostSource(models.TextChoices):
    SDK = "sdk", "Sent by the SDK"
    PRICE_TABLE = "price_table", "Priced from the model price table"
    UNKNOWN = "unknown", "Unknown"


class Event(models.Model):
    """One recorded event. `id` is chosen by the SDK and is the idempotency key.

    Columns that pages filter or sum are promoted; the rest of the payload (params,
    returns, prompt, completion, logs, details ...) stays whole in `payload`.
    """

    id = models.UUIDField(primary_key=True, editable=False)
    # No single-column indexes on the two foreign keys: event_session_time and
    # event_project_time lead with them and serve their joins and cascades, and every index
    # costs each ingested row (bench/ingest.py).
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    event_type = models.CharField(max_length=10, choices=EventType.choices)
    init_timestamp = models.DateTimeField()
    end_timestamp = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    agent_id = models.UUIDField(null=True, blank=True)
    # action_type, tool name or error_type, depending on event_type.
    name = models.CharField(max_length=200, blank=True, default="")
    model = models.CharField(max_length=200, blank=True, default="")
    prompt_tokens = models.IntegerField(null=True, blank=True)
    completion_tokens = models.IntegerField(null=True, blank=True)
    cost = models.DecimalField(**MONEY, null=True, blank=True)
    cost_source = models.CharField(
        max_length=11, choices=CostSource.choices, default=CostSource.UNKNOWN
    )
    trigger_event_id = models.UUIDField(null=True, blank=True)
    # OTLP spans only (events/spans.py): 16 hex digits each, so a session's events can be drawn
    # as a tree. NULL for v2 events and for root spans' parents: NULL means "none", not "".
    # No index: a session's events are read whole (event_session_time) and linked in memory.
    span_id = models.CharField(max_length=16, null=True, blank=True)
    parent_span_id = models.CharField(max_length=16, null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    # What text search matches (events/search.py): a bounded, lower-cased extract of the name,
    # model and text fields, written at ingest. Postgres: pg_trgm GIN index event_search_trgm
    # (migration 0006). db_default: rows loaded by COPY without it (bench/) are valid.
    search_text = models.TextField(blank=True, default="", db_default="")

    class Meta:
        ordering = ["init_timestamp"]
        indexes = [
            # Drill-down timeline and export: one session's events in time order.
            models.Index(fields=["session", "init_timestamp"], name="event_session_time"),
            # Overview and rollups: a project's events in a time range.
            models.Index(fields=["project", "init_timestamp"], name="event_project_time"),
            # Per-type charts and error views.
            models.Index(
                fields=["project", "event_type", "init_timestamp"], name="event_project_type_time"
            ),
            # The session list's model filter: "has this session an LLM call of model X".
            models.Index(
                fields=["session", "model"],
                name="event_session_llm_model",
                condition=Q(event_type="llms"),
            ),
            # Not listed, Postgres only: the trigram index event_search_trgm on search_text
            # (migration 0006_event_search_text) for the session list's search.
            # Not listed, Postgres only: a BRIN index on received_at (migration
            # 0003_event_received_brin) for the overview's "events received since today's
            # rollup" (dashboard/overview.py). No B-tree on received_at: each costs ingest.
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(event_type__in=EventType.values), name="event_type_valid"
            ),
            models.CheckConstraint(
                condition=(Q(prompt_tokens__isnull=True) | Q(prompt_tokens__gte=0))
                & (Q(completion_tokens__isnull=True) | Q(completion_tokens__gte=0)),
                name="event_tokens_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(cost__isnull=True) | Q(cost__gte=0), name="event_cost_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(cost_source__in=CostSource.values), name="event_cost_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id}"
