from django.contrib import admin

from analytics.models import DailyRollup, ModelDailyRollup


@admin.register(DailyRollup)
class DailyRollupAdmin(admin.ModelAdmin):
    list_display = ["project", "day", "sessions_total", "events_llms", "events_errors", "cost"]
    list_filter = ["project"]
    date_hierarchy = "day"


@admin.register(ModelDailyRollup)
class ModelDailyRollupAdmin(admin.ModelAdmin):
    list_display = [
        "project",
        "day",
        "model",
        "calls",
        "prompt_tokens",
        "completion_tokens",
        "cost",
    ]
    list_filter = ["project", "model"]
    date_hierarchy = "day"
