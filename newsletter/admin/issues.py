"""Admin for editors: newsletters and issues."""

from django.contrib import admin

from newsletter.models import Issue, IssueItem, Newsletter


@admin.register(Newsletter)
class NewsletterAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "from_email",
        "send_weekday",
        "send_time",
        "timezone",
        "approval_policy",
        "is_active",
    ]
    list_filter = ["is_active", "approval_policy"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["categories"]


class IssueItemInline(admin.TabularInline):
    model = IssueItem
    extra = 0
    fields = ["position", "section", "article", "pinned", "removed", "abstract_override"]
    autocomplete_fields = ["article"]
    ordering = ["position", "id"]


@admin.register(Issue)
class IssueAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "title",
        "newsletter",
        "week",
        "status",
        "scheduled_at",
        "recipients_count",
        "sent_count",
        "failed_count",
        "skipped_count",
    ]
    list_filter = ["status", "newsletter"]
    search_fields = ["title", "week"]
    readonly_fields = [
        "status",
        "window_start",
        "window_end",
        "send_started_at",
        "sent_at",
        "recipients_count",
        "sent_count",
        "failed_count",
        "skipped_count",
        "created_at",
        "updated_at",
    ]
    inlines = [IssueItemInline]
