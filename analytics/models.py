from decimal import Decimal

from django.db import models

from projects.models import Project
from sessions.models import MONEY


class DailyRollup(models.Model):
    """A project's totals for one UTC day, recomputed whole by analytics/rollups.py."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="daily_rollups")
    day = models.DateField()
    sessions_total = models.PositiveIntegerField(default=0)
    sessions_success = models.PositiveIntegerField(default=0)
    sessions_fail = models.PositiveIntegerField(default=0)
    sessions_indeterminate = models.PositiveIntegerField(default=0)
    sessions_running = models.PositiveIntegerField(default=0)
    events_llms = models.PositiveIntegerField(default=0)
    events_tools = models.PositiveIntegerField(default=0)
    events_actions = models.PositiveIntegerField(default=0)
    events_errors = models.PositiveIntegerField(default=0)
    events_apis = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(**MONEY, default=Decimal("0"))
    cost_unknown_events = models.PositiveIntegerField(default=0)
    duration_p50_seconds = models.FloatField(null=True, blank=True)
    duration_p95_seconds = models.FloatField(null=True, blank=True)
    # The "tail": what the events received at or after `tail_since` contributed to the totals
    # above, as event_groups rows (analytics.rollups.tail_rows). The overview re-reads that
    # slice live (received_at >= tail_since, a BRIN range scan), so totals - tail + live is
    # exact whatever arrived after this row was computed. NULL: a row from before the tail.
    tail_since = models.DateTimeField(null=True, blank=True)
    tail = models.JSONField(default=list, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "day"]
        constraints = [
            models.UniqueConstraint(fields=["project", "day"], name="dailyrollup_unique_day"),
            models.CheckConstraint(
                condition=models.Q(prompt_tokens__gte=0) & models.Q(completion_tokens__gte=0),
                name="dailyrollup_tokens_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} {self.day}"


class ModelDailyRollup(models.Model):
    """A project's LLM calls of one model on one UTC day."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_rollups")
    day = models.DateField()
    model = models.CharField(max_length=200)
    calls = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(**MONEY, default=Decimal("0"))
    cost_unknown_calls = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "day", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "day", "model"], name="modelrollup_unique_day_model"
            ),
            models.CheckConstraint(
                condition=models.Q(prompt_tokens__gte=0) & models.Q(completion_tokens__gte=0),
                name="modelrollup_tokens_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} {self.day} {self.model}"
