from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from newsletter.models import (
    ConsentRecord,
    ConsentText,
    Delivery,
    Issue,
    IssueItem,
    Newsletter,
    Subscriber,
    Suppression,
    TrackingEvent,
)


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


@admin.register(ConsentText)
class ConsentTextAdmin(admin.ModelAdmin):
    list_display = ["newsletter", "version", "created_at"]
    list_filter = ["newsletter"]
    readonly_fields = ["created_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        # A consent text is what readers agreed to; a change is a new version.
        return obj is None and super().has_change_permission(request, obj)


class ConsentRecordInline(admin.TabularInline):
    model = ConsentRecord
    extra = 0
    can_delete = False
    fields = ["at", "action", "method", "form", "consent_text", "ip", "user_agent", "note"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "name",
        "organisation",
        "country",
        "status",
        "newsletter",
        "created_at",
        "confirmed_at",
    ]
    list_filter = ["status", "newsletter", "country", "categories"]
    search_fields = ["email", "name", "organisation"]
    date_hierarchy = "created_at"
    filter_horizontal = ["categories"]
    readonly_fields = [
        "created_at",
        "updated_at",
        "confirmed_at",
        "unsubscribed_at",
        "soft_bounce_count",
    ]
    inlines = [ConsentRecordInline]


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


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "issue",
        "subscriber",
        "status",
        "attempts",
        "sent_at",
        "esp_message_id",
        "open_count",
        "click_count",
    ]
    list_filter = ["status", "issue"]
    search_fields = ["subscriber__email", "esp_message_id"]
    list_select_related = ["issue__newsletter", "subscriber"]
    raw_id_fields = ["issue", "subscriber"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # rows come only from sending: the ledger is not edited by hand


@admin.register(TrackingEvent)
class TrackingEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "esp", "event_type", "message_id", "delivery"]
    list_filter = ["esp", "event_type"]
    search_fields = ["message_id", "esp_event_id"]
    raw_id_fields = ["delivery"]
    readonly_fields = [f.name for f in TrackingEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["email_hash", "reason", "newsletter", "created_at"]
    list_filter = ["reason", "newsletter"]
    readonly_fields = ["email_hash", "reason", "newsletter", "created_at"]

    @admin.display(description=_("hash"))
    def short_hash(self, obj: Suppression) -> str:
        return obj.email_hash[:12]
