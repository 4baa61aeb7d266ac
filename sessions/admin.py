from django.contrib import admin

from sessions.models import Agent, Session, Tag


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "project"]
    list_filter = ["project"]
    search_fields = ["name"]


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "init_timestamp",
        "end_state",
        "llm_count",
        "error_count",
        "cost",
    ]
    list_filter = ["end_state", "project"]
    search_fields = ["id", "end_state_reason"]
    date_hierarchy = "init_timestamp"
    readonly_fields = [f.name for f in Session._meta.concrete_fields]
    show_full_result_count = False


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "session"]
    search_fields = ["id", "name"]
    raw_id_fields = ["session"]
