from django.contrib import admin

from events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "event_type", "name", "model", "init_timestamp", "cost", "cost_source"]
    list_filter = ["event_type", "cost_source"]
    search_fields = ["id", "name", "model"]
    raw_id_fields = ["session", "project"]
    readonly_fields = [f.name for f in Event._meta.concrete_fields]
    show_full_result_count = False
