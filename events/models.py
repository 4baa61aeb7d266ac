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


class SearchChunk(models.Model):
    """A piece of a session's text-search document (Postgres only; events/search.py).

    Written off the ingest path by index_new_events (after each rollup), insert-only: each run
    adds one chunk per session with new events, holding their search extracts deduplicated. A
    pg_trgm GIN index on `text` (migration 0006, not listed here: SQLite has none) answers the
    session list's LIKE '%phrase%'.
    """

    id = models.BigAutoField(primary_key=True)
    # The session's index serves the cascade when a session is deleted (retention, project
    # delete); the list's search goes through the trigram index, then to sessions by id.
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    text = models.TextField()

    def __str__(self) -> str:
        return f"search chunk {self.pk} of {self.session_id}"


class SearchCursor(models.Model):
    """How far index_new_events has read the events, in (received_at, id) order: one row."""

    name = models.CharField(max_length=20, primary_key=True)
    received_at = models.DateTimeField()
    event_id = models.UUIDField()

    def __str__(self) -> str:
        return f"{self.name} indexed through {self.received_at.isoformat()}"


class OtlpBatch(models.Model):
    """A `POST /v1/traces` request accepted but not yet stored as events (events/otlp_queue.py).

    The queued write answers a request once its inflated body is here, committed, and a worker
    maps and writes it later: the row is the durable copy that makes the 200 a promise. It is
    deleted in the transaction that writes its events, unless some of its spans were refused
    then (a trace another project took meanwhile, an event that failed validation): it stays,
    body emptied, as the record the project page shows (`done_at`, `refused_spans`,
    `last_error`). One that keeps failing stays whole, with its error, for
    `manage.py otlp_batches --retry`.
    """

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    key_id = models.UUIDField()
    received_at = models.DateTimeField()
    encoding = models.CharField(max_length=8)  # "protobuf" | "json", as decode_export_request
    body = models.BinaryField()  # inflated
    span_count = models.PositiveIntegerField()  # spans accepted when it was received
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)  # set when retries gave up
    done_at = models.DateTimeField(null=True, blank=True)  # written, some spans refused
    refused_spans = models.PositiveIntegerField(default=0)  # refused by the worker's write

    class Meta:
        db_table = "events_otlp_batch"
        # Only the waiting batches: every /v1/traces request reads the oldest of them
        # (otlp_queue.queued), and the kept records of refusals must not lengthen that probe.
        indexes = [
            models.Index(
                fields=["received_at"],
                name="otlp_batch_waiting",
                condition=Q(done_at__isnull=True, failed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"OTLP batch {self.pk} ({self.span_count} spans)"
