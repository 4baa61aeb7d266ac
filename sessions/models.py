import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q

from projects.models import Project

MONEY = {"max_digits": 20, "decimal_places": 10}


# Bounds of a session's client-given fields, for every protocol that sets them.
MAX_TAGS = 100
MAX_TAG_LENGTH = 200  # Tag.name's max_length
MAX_REASON = 10_000
MAX_HOST_ENV_KEYS = 2_000


class EndState(models.TextChoices):
    SUCCESS = "Success", "Success"
    FAIL = "Fail", "Fail"
    INDETERMINATE = "Indeterminate", "Indeterminate"


class Tag(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=MAX_TAG_LENGTH)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="tag_unique_name_per_project")
        ]

    def __str__(self) -> str:
        return self.name


class Protocol(models.TextChoices):
    V2 = "v2", "AgentOps v2 (REST)"
    OTLP = "otlp", "OpenTelemetry (OTLP)"


class Session(models.Model):
    """One run of an agent program. `id` is chosen by the SDK.

    The counters below are a cache of what the session's events say; events/ingest.py keeps
    them equal by updating them in the same transaction that inserts the events, counting
    only rows that were actually inserted.
    """

    id = models.UUIDField(primary_key=True, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sessions")
    init_timestamp = models.DateTimeField()
    end_timestamp = models.DateTimeField(null=True, blank=True)
    end_state = models.CharField(max_length=13, choices=EndState.choices, null=True, blank=True)
    end_state_reason = models.TextField(blank=True, default="")
    tags = models.ManyToManyField(Tag, through="SessionTag", related_name="sessions", blank=True)
    host_env = models.JSONField(null=True, blank=True)
    video = models.URLField(max_length=2000, blank=True, default="")
    sdk_version = models.CharField(max_length=50, blank=True, default="")
    # How the session arrived. An OTLP session is a trace (id = the trace id): it ends when its
    # root span arrives, and the reaper's reason for one whose root never came says so.
    protocol = models.CharField(max_length=4, choices=Protocol.choices, default=Protocol.V2)
    # OTLP only, set by the trace's root span (events/otlp_ingest.py): its metadata
    # (trace.metadata.*, agentops.legacy.*, dict tags, OpenInference session/user ids), and the
    # root span whole (events.spans.span_document's shape), so a mapping found wrong later can
    # be redone. An AgentOps session root is the session itself, not an event (§9), so this is
    # its only home; any other root is also an event, which holds it, and root_span stays null.
    # metadata is null until the root arrives (a root sets it, {} at least): "no root span yet".
    metadata = models.JSONField(null=True, blank=True)
    root_span = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    llm_count = models.PositiveIntegerField(default=0)
    tool_count = models.PositiveIntegerField(default=0)
    action_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    api_count = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(**MONEY, default=Decimal("0"))
    cost_unknown_events = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-init_timestamp"]
        indexes = [
            # Session list and overview: a project's sessions by start time.
            models.Index(fields=["project", "-init_timestamp"], name="session_project_start"),
            # The reaper: running sessions by last activity.
            models.Index(
                fields=["last_seen_at"],
                name="session_running_last_seen",
                condition=Q(end_state=None),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_state__isnull=True) | Q(end_state__in=EndState.values),
                name="session_end_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(prompt_tokens__gte=0) & Q(completion_tokens__gte=0),
                name="session_tokens_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return str(self.id)

    @property
    def duration_seconds(self) -> float | None:
        if self.end_timestamp is None:
            return None
        return max((self.end_timestamp - self.init_timestamp).total_seconds(), 0.0)


class SessionTag(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "tag"], name="sessiontag_unique")]
        # Tag search goes from tag to sessions.
        indexes = [models.Index(fields=["tag", "session"], name="sessiontag_tag_session")]

    def __str__(self) -> str:
        return f"{self.session_id} {self.tag_id}"


class Agent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name or str(self.id)


class TraceLog(models.Model):
    """A `POST /v4/logs/upload/` body: the agent's printed output for one trace.

    Keyed by project and trace (the session id a trace becomes), not by a foreign key: the SDK
    uploads it inside the root span's end(), before that span is exported, so it usually
    arrives before the session exists (shared/protocols/agentops-otlp.md §5). The session page
    joins on (project, trace_id) whenever it is read.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="trace_logs")
    trace_id = models.UUIDField()
    body = models.TextField()
    size = models.PositiveIntegerField()  # bytes of the body as received
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_at"]
        indexes = [
            # The session page: a trace's logs.
            models.Index(fields=["project", "trace_id"], name="tracelog_project_trace"),
        ]

    def __str__(self) -> str:
        return f"log of {self.trace_id}"


class UploadedObject(models.Model):
    """A `POST /v4/objects/upload/` body (OpenAI Agents SDK audio data), served back to its
    project at the URL the upload answers."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="uploaded_objects")
    body = models.TextField()
    size = models.PositiveIntegerField()
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.id)
