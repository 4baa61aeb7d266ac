from django.contrib import admin, messages

from projects.keys import hash_key, new_raw_key
from projects.models import ApiKey, Membership, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role"]
    autocomplete_fields = ["project", "user"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Shows the prefix, never the hash; the raw value of a new key appears once, on creation."""

    list_display = [
        "prefix",
        "label",
        "project",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["project"]
    search_fields = ["prefix", "label", "project__name"]
    fields = [
        "project",
        "label",
        "prefix",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at"]
    autocomplete_fields = ["project"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "project"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        raw = new_raw_key()
        obj.prefix = raw[:8]
        obj.key_hash = hash_key(raw)
        obj.created_by = request.user
        super().save_model(request, obj, form, change)
        messages.warning(
            request,
            f"New API key for {obj.project}: {raw} "
            "(copy it now: it is not stored and will not be shown again).",
        )
